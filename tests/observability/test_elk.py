"""deploy/elk: the Logstash pipeline, the index template and the Kibana objects are well formed
and name only fields PixWave's log lines really carry.

The emitted fields are not a hand list: every structlog call in ``src/pixwave`` is found in the
source, replayed with its own event name and keyword names through the real ECS formatter,
together with a request's and a job's context, an exception and a library's line.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import structlog
from taskiq import TaskiqMessage

from pixwave.config import Settings
from pixwave.observability.context import JobLogContext, RequestContext
from pixwave.observability.logging import configure_logging

ROOT = Path(__file__).resolve().parents[2]
ELK = ROOT / "deploy" / "elk"
SOURCE = ROOT / "src" / "pixwave"
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}


# --- what PixWave emits -----------------------------------------------------------------------


def _log_calls() -> list[tuple[str | None, list[str]]]:
    """(event name or None for an f-string, keyword names) of every `log.<level>(...)` and
    `getattr(log, level)(...)` in the source."""
    calls: list[tuple[str | None, list[str]]] = []
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            direct = (
                isinstance(func, ast.Attribute)
                and func.attr in LEVELS
                and isinstance(func.value, ast.Name)
                and func.value.id == "log"
            )
            dynamic = (
                isinstance(func, ast.Call)
                and isinstance(func.func, ast.Name)
                and func.func.id == "getattr"
                and isinstance(func.args[0], ast.Name)
                and func.args[0].id == "log"
            )
            if not (direct or dynamic):
                continue
            first = node.args[0]
            event = first.value if isinstance(first, ast.Constant) else None
            keywords = [k.arg for k in node.keywords if k.arg and k.arg != "exc_info"]
            calls.append((event if isinstance(event, str) else None, keywords))
    return calls


def _paths(value: Any, prefix: str = "") -> set[str]:
    """Field paths of a JSON line as Elasticsearch sees them (dotted keys are paths too)."""
    if not isinstance(value, dict):
        return {prefix}
    paths: set[str] = set()
    for key, item in value.items():
        paths |= _paths(item, f"{prefix}.{key}" if prefix else key)
    return paths


@pytest.fixture(scope="module")
def emitted() -> tuple[set[str], set[str]]:
    """(field paths, event names) of lines rendered from the source's own log calls."""
    import io
    import sys

    calls = _log_calls()
    assert len(calls) > 40  # the scan found the code's log calls
    buffer = io.StringIO()
    stdout, sys.stdout = sys.stdout, buffer
    try:
        configure_logging("debug", json=True, settings=Settings(_env_file=None), role="api")
        log = structlog.get_logger("pixwave.scan")
        job = JobLogContext()
        job.pre_execute(
            TaskiqMessage(
                task_id="task-1",
                task_name="payments.advance",
                labels={"request_id": "req-1"},
                args=["txn_01JC7Z8X9Y0ABCDEFGHJKMNPQR"],
                kwargs={},
            )
        )
        for event, keywords in calls:
            log.info(event or "scan.dynamic", **dict.fromkeys(keywords, "x"))
        try:
            raise RuntimeError("scan")
        except RuntimeError:
            log.exception("scan.exception")
        logging.getLogger("uvicorn.error").warning("a library line")
        structlog.contextvars.clear_contextvars()
    finally:
        sys.stdout = stdout
    fields: set[str] = set()
    for line in buffer.getvalue().splitlines():
        fields |= _paths(json.loads(line))
    events = {event for event, _ in calls if event}
    events |= {"payments.attempt", "gateway.call"}  # sanity: both are in the source
    return fields, events


def test_the_request_middleware_binds_the_key_the_formatter_maps() -> None:
    """`RequestContext` binds `request_id`, which the ECS renderer writes as http.request.id."""
    import inspect

    assert "bind_contextvars(request_id=" in inspect.getsource(RequestContext)


# --- Logstash pipeline ---------------------------------------------------------------------------


def _block(text: str, name: str) -> str:
    """The body of the first ``name { … }`` block in ``text`` (braces matched, strings and
    comments skipped)."""
    clean = re.sub(r"#[^\n]*", "", text)
    match = re.search(rf"(?<![\w\[]){name}\s*\{{", clean)
    assert match, f"no {name} block"
    depth, start = 0, match.end() - 1
    quote: str | None = None
    for index in range(start, len(clean)):
        char = clean[index]
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return clean[start + 1 : index]
    raise AssertionError(f"unbalanced {name} block")


def _setting(block: str, name: str) -> str:
    match = re.search(rf"\b{name}\s*=>\s*(\"[^\"]*\"|\[[^\]]*\]|[\w.-]+)", block)
    assert match, f"no {name} setting"
    return match.group(1).strip('"')


class TestPipeline:
    text = (ELK / "logstash" / "pipeline" / "pixwave.conf").read_text()

    def test_tcp_input_with_json_lines_on_the_settings_port(self) -> None:
        tcp = _block(_block(self.text, "input"), "tcp")
        assert int(_setting(tcp, "port")) == Settings.model_fields["logstash_port"].default
        assert _setting(tcp, "codec") == "json_lines"

    def test_output_to_the_index_the_template_covers(self) -> None:
        output = _block(self.text, "output")
        elasticsearch = _block(output, "elasticsearch")
        index = _setting(elasticsearch, "index")
        today = re.sub(r"%\{\+[^}]+\}", "2025.01.31", index)
        patterns = _template()["index_patterns"]
        assert any(fnmatch.fnmatch(today, pattern) for pattern in patterns), (index, patterns)
        assert _setting(elasticsearch, "template_api") == "composable"
        assert _setting(elasticsearch, "ilm_enabled") == "false"

    def test_fields_it_names_are_emitted(self, emitted: tuple[set[str], set[str]]) -> None:
        named = {
            ".".join(re.findall(r"\[([^\]]+)\]", ref))
            for ref in re.findall(r"((?:\[[\w@.]+\])+)", _block(self.text, "filter"))
        }
        assert named
        assert named <= emitted[0], named - emitted[0]


# --- index template ------------------------------------------------------------------------------


def _template() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ELK / "elasticsearch" / "index-template.json").read_text())
    return data


def _mapped(properties: dict[str, Any], prefix: str = "") -> set[str]:
    fields: set[str] = set()
    for name, spec in properties.items():
        path = f"{prefix}.{name}" if prefix else name
        if "properties" in spec:
            fields |= _mapped(spec["properties"], path)
        else:
            assert "type" in spec, path
            fields.add(path)
    return fields


class TestIndexTemplate:
    def test_is_a_composable_template(self) -> None:
        template = _template()
        assert template["index_patterns"]
        assert "mappings" in template["template"]

    def test_maps_the_core_ecs_fields(self) -> None:
        mapped = _mapped(_template()["template"]["mappings"]["properties"])
        core = {
            "@timestamp",
            "log.level",
            "log.logger",
            "message",
            "ecs.version",
            "http.request.id",
            "service.name",
            "process.pid",
            "error.type",
            "error.message",
            "error.stack_trace",
            "pixwave.transaction_id",
            "pixwave.gateway",
            "pixwave.job",
        }
        assert core <= mapped, core - mapped

    def test_every_mapped_field_is_emitted(self, emitted: tuple[set[str], set[str]]) -> None:
        mapped = _mapped(_template()["template"]["mappings"]["properties"])
        assert mapped <= emitted[0], mapped - emitted[0]

    def test_our_ids_are_keywords(self) -> None:
        pixwave = _template()["template"]["mappings"]["properties"]["pixwave"]["properties"]
        for name in ("transaction_id", "gateway", "job", "task_id"):
            assert pixwave[name]["type"] == "keyword"


# --- Kibana saved objects ------------------------------------------------------------------------


def _objects() -> list[dict[str, Any]]:
    lines = (ELK / "kibana" / "saved-objects.ndjson").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


_KQL_FIELD = re.compile(r"(?<![\w.\"])([@A-Za-z_][\w.]*)\s*:")
_KQL_ACTION = re.compile(r"event\.action\s*:\s*(?:\(([^)]*)\)|\"([^\"]+)\")")


def _queries(obj: dict[str, Any]) -> list[str]:
    attributes = obj["attributes"]
    meta = attributes.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON")
    return [json.loads(meta)["query"]["query"]] if meta else []


def _fields(obj: dict[str, Any]) -> set[str]:
    """Every field an object names: data view time field, columns, sort, agg fields, KQL."""
    attributes = obj["attributes"]
    fields: set[str] = set()
    if obj["type"] == "index-pattern":
        fields.add(attributes["timeFieldName"])
    fields |= set(attributes.get("columns", []))
    fields |= {sort[0] for sort in attributes.get("sort", [])}
    if "visState" in attributes:
        for agg in json.loads(attributes["visState"])["aggs"]:
            if "field" in agg["params"]:
                fields.add(agg["params"]["field"])
    for query in _queries(obj):
        fields |= set(_KQL_FIELD.findall(query))
    return fields


class TestSavedObjects:
    def test_every_object_is_well_formed(self) -> None:
        objects = _objects()
        assert {o["type"] for o in objects} >= {
            "index-pattern",
            "search",
            "visualization",
            "dashboard",
        }
        ids = [(o["type"], o["id"]) for o in objects]
        assert len(ids) == len(set(ids))
        for obj in objects:
            assert obj["type"], obj
            assert obj["id"], obj
            assert isinstance(obj["attributes"], dict), obj
            assert obj["attributes"].get("title"), obj["id"]

    def test_every_reference_resolves(self) -> None:
        objects = _objects()
        known = {(o["type"], o["id"]) for o in objects}
        for obj in objects:
            names = {ref["name"] for ref in obj.get("references", [])}
            for ref in obj.get("references", []):
                assert (ref["type"], ref["id"]) in known, (obj["id"], ref)
            meta = obj["attributes"].get("kibanaSavedObjectMeta", {}).get("searchSourceJSON")
            if meta and "indexRefName" in json.loads(meta):
                assert json.loads(meta)["indexRefName"] in names, obj["id"]

    def test_dashboard_panels_resolve(self) -> None:
        [dashboard] = [o for o in _objects() if o["type"] == "dashboard"]
        panels = json.loads(dashboard["attributes"]["panelsJSON"])
        references = {ref["name"]: ref for ref in dashboard["references"]}
        assert len(panels) >= 6
        for panel in panels:
            ref = references[panel["panelRefName"]]
            assert ref["type"] == panel["type"]

    def test_the_data_view_covers_the_pipelines_index(self) -> None:
        [view] = [o for o in _objects() if o["type"] == "index-pattern"]
        assert view["attributes"]["title"] in _template()["index_patterns"]

    def test_every_field_named_is_emitted(self, emitted: tuple[set[str], set[str]]) -> None:
        fields, _ = emitted
        for obj in _objects():
            named = _fields(obj)
            assert named <= fields, (obj["id"], named - fields)

    def test_every_event_named_is_logged_by_the_code(
        self, emitted: tuple[set[str], set[str]]
    ) -> None:
        """A dashboard filtering on an event nobody logs would stay empty, silently."""
        _, events = emitted
        for obj in _objects():
            for query in _queries(obj):
                for group, single in _KQL_ACTION.findall(query):
                    named = set(re.findall(r'"([^"]+)"', group)) | ({single} if single else set())
                    assert named <= events, (obj["id"], named - events)

    def test_the_gateway_latency_field_is_the_one_gateway_calls_log(self) -> None:
        """`gateway.call` logs `latency_ms`: the latency chart averages that field."""
        [latency] = [o for o in _objects() if o["id"] == "pixwave-gateway-latency"]
        aggs = json.loads(latency["attributes"]["visState"])["aggs"]
        assert {a["params"].get("field") for a in aggs} >= {"pixwave.latency_ms"}
        calls = [keywords for event, keywords in _log_calls() if event == "gateway.call"]
        assert calls
        assert all("latency_ms" in keywords for keywords in calls)
