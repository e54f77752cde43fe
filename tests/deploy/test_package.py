"""The wheel the image installs carries every file PixWave reads at run time, not only code:
the migrations and the Lua scripts of the gateway health store."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.deploy.tools import ROOT


def test_the_wheel_carries_the_runtime_data(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("pixwave-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    lua = {Path(n).name for n in names if n.startswith("pixwave/gateways/health/lua/")}
    assert lua == {p.name for p in (ROOT / "src/pixwave/gateways/health/lua").glob("*.lua")}
    migrations = {Path(n).name for n in names if n.startswith("pixwave/migrations/versions/")}
    expected = {p.name for p in (ROOT / "src/pixwave/migrations/versions").glob("*.py")}
    assert expected <= migrations
    assert "pixwave/py.typed" in names
