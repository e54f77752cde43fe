"""deploy/prometheus: the alerting rules load the way `promtool check rules` would have them,
every expression parses, and every series an alert reads is one PixWave exposes."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import pixwave.observability.metrics  # noqa: F401 - registers every PixWave metric

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DOC = ROOT / "docs" / "metrics.md"

#: Series Prometheus makes itself for every target; the only non-PixWave names rules may read.
SYNTHETIC = frozenset({"up"})

#: Sample names per metric type, as prometheus-client exposes them.
SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def _promql() -> Any:
    """promql-parser (the Prometheus grammar and type checks); required in CI."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        import promql_parser

        return promql_parser
    return pytest.importorskip("promql_parser", reason="pip install promql-parser")


def exposed() -> set[str]:
    """Every sample name PixWave's registry can produce, derived from the metrics themselves."""
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("pixwave_")
        for suffix in SUFFIXES[family.type]
    }


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def selectors(expr: str) -> list[str]:
    promql = _promql()
    names: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql.VectorSelector) and node.name:
            names.append(node.name)

    promql.walk(promql.parse(expr), visit)
    return names


class TestStructure:
    def test_groups_and_rules_have_the_shape_promtool_expects(self) -> None:
        """Named groups of rules; each alert has expr, labels and annotations and no unknown
        key; group and alert names are unique."""
        document = yaml.safe_load(RULES.read_text())
        assert set(document) == {"groups"}
        group_names = [group["name"] for group in document["groups"]]
        assert len(group_names) == len(set(group_names))
        alerts: list[str] = []
        for group in document["groups"]:
            assert set(group) <= {"name", "interval", "rules", "limit"}, group["name"]
            assert group["rules"], group["name"]
            for rule in group["rules"]:
                assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels",
                                     "annotations"}, rule  # fmt: skip
                assert re.fullmatch(r"PixWave[A-Z][A-Za-z0-9]+", rule["alert"]), rule["alert"]
                assert isinstance(rule["expr"], str)
                assert rule["expr"].strip()
                alerts.append(rule["alert"])
        assert len(alerts) == len(set(alerts)), "duplicate alert names"

    def test_durations_parse(self) -> None:
        """`for` is a Prometheus duration."""
        promql = _promql()
        for rule in rules():
            if "for" in rule:
                assert promql.parse_duration(rule["for"]).total_seconds() > 0, rule["alert"]

    def test_every_alert_has_a_severity_and_says_what_to_do(self) -> None:
        """severity is one routing value; summary, description and a runbook section that
        exists in docs/metrics.md."""
        anchors = {
            re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.+)$", DOC.read_text(), flags=re.MULTILINE)
        }
        for rule in rules():
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
            assert all(isinstance(v, str) for v in rule["labels"].values())
            notes = rule["annotations"]
            assert notes["summary"]
            assert notes["description"]
            doc, _, anchor = notes["runbook"].partition("#")
            assert doc == "docs/metrics.md"
            assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in {DOC.name}"


class TestExpressions:
    @pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
    def test_parses(self, rule: dict[str, Any]) -> None:
        """The expression is valid PromQL, types included (a range where a range is due)."""
        _promql().parse(rule["expr"])

    @pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
    def test_reads_only_series_pixwave_exposes(self, rule: dict[str, Any]) -> None:
        """A renamed metric would leave its alert silently empty forever."""
        names = selectors(rule["expr"])
        assert names, "an alert must read at least one series"
        unknown = set(names) - exposed() - SYNTHETIC
        assert not unknown, f"{rule['alert']} reads series PixWave does not expose: {unknown}"

    def test_the_check_catches_a_wrong_name(self) -> None:
        """The name check itself works: a misspelt series is found."""
        assert set(selectors("rate(pixwave_http_request_total[5m]) > 1")) - exposed() == {
            "pixwave_http_request_total"
        }

    def test_the_parser_refuses_a_broken_expression(self) -> None:
        """…and a broken expression does not pass as valid."""
        with pytest.raises(ValueError, match="matrix"):
            _promql().parse("rate(pixwave_http_requests_total) > 1")


class TestScrapeConfig:
    def test_scrapes_api_and_workers_with_the_token_and_loads_the_rules(self) -> None:
        """Both jobs send the bearer token; the rules file it names is the one checked here."""
        config = yaml.safe_load(CONFIG.read_text())
        assert [RULES.name] == config["rule_files"]
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        assert set(jobs) == {"pixwave-api", "pixwave-workers"}
        for job in jobs.values():
            assert job["metrics_path"] == "/metrics"
            assert job["authorization"]["type"] == "Bearer"
            assert job["authorization"]["credentials_file"]
        # The alert on scrape failures matches both job names.
        up = next(rule for rule in rules() if rule["alert"] == "PixWaveTargetDown")
        pattern = re.search(r'job=~"([^"]+)"', up["expr"])
        assert pattern is not None
        assert all(re.fullmatch(pattern.group(1), name) for name in jobs)
