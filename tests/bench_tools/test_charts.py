"""bench/charts.py: figures read from a benchmark's output, and a chart drawn from them."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _charts() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_charts", ROOT / "bench" / "charts.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_charts"] = module
    spec.loader.exec_module(module)
    return module


charts = _charts()


def _output(path: Path, figures: dict[str, object]) -> Path:
    path.write_text("setup: …\nratio: http/floor = 0.42\n" + json.dumps(figures) + "\n")
    return path


def test_the_last_json_line_is_the_figures(tmp_path: Path) -> None:
    out = tmp_path / "run.txt"
    out.write_text('{"first": 1}\nnoise\n{"benchmark": "transfers", "http_tps": 900.5}\nbye\n')
    assert charts.last_figures(out) == {"benchmark": "transfers", "http_tps": 900.5}


def test_output_without_figures_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run.txt"
    out.write_text("crashed before the end\n")
    with pytest.raises(ValueError, match="no line of JSON figures"):
        charts.last_figures(out)


def test_a_comparison_chart_is_drawn_with_every_shared_metric(tmp_path: Path) -> None:
    before = _output(tmp_path / "a.txt", {"benchmark": "transfers", "http_tps": 1000, "p99": 9.5,
                                          "workers": 2, "audit_ok": True})  # fmt: skip
    after = _output(tmp_path / "b.txt", {"benchmark": "transfers", "http_tps": 950, "p99": 9.9,
                                         "workers": 2, "audit_ok": True})  # fmt: skip
    png = tmp_path / "chart.png"
    assert charts.main([str(png), f"before={before}", f"after={after}", f"after={after}"]) == 0
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.width > 400
    # Set-up figures and booleans are not results.
    assert charts.draw([("x", {"http_tps": 1, "workers": 2, "ok": True})], png) == ["http_tps"]


def test_an_unknown_metric_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no run has nope"):
        charts.draw([("x", {"http_tps": 1})], tmp_path / "c.png", metrics=["nope"])
