"""OpenTelemetry importer: servicegraph metrics and OTLP/JSON traces (hand-written fixtures)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placet.graph.errors import GraphInputError
from placet.graph.importers import otel
from placet.graph.importers.prometheus_text import ExpositionError, parse_exposition
from placet.graph.model import EdgeFact, EdgeKind, ImportResult, NodeFact, NodeKind

FIXTURES = Path(__file__).resolve().parent / "fixtures"
METRICS = FIXTURES / "otel-servicegraph.prom"
TRACES = FIXTURES / "otel-traces.json"
TRACE_LINES = FIXTURES / "otel-traces.jsonl"


def _nodes(result: ImportResult) -> dict[str, NodeFact]:
    return {n.id: n for n in result.nodes}


def _calls(result: ImportResult) -> dict[tuple[str, str], EdgeFact]:
    return {(e.source, e.target): e for e in result.edges if e.kind is EdgeKind.CALLS}


def _counts(result: ImportResult) -> dict[tuple[str, str], tuple[int, int]]:
    return {
        k: (e.attributes["requests"], e.attributes["errors"]) for k, e in _calls(result).items()
    }


@pytest.fixture(scope="module")
def servicegraph() -> ImportResult:
    return otel.parse([METRICS], "servicegraph")


@pytest.fixture(scope="module")
def traces() -> ImportResult:
    return otel.parse([TRACES, TRACE_LINES], "traces")


def test_servicegraph_counts(servicegraph: ImportResult) -> None:
    assert _counts(servicegraph) == {
        ("frontend", "cart"): (2000, 3),  # two collector replicas: series summed
        ("frontend", "checkout"): (322, 0),  # one series scraped twice: the later value
        ("checkout", "payment"): (305, 17),
        ("checkout", "kafka"): (298, 0),
        ("product-catalog", "astronomy-db"): (2210, 0),
        ("user", "frontend-proxy"): (4100, 0),
    }
    assert servicegraph.warnings == ()
    assert servicegraph.coverage == ()
    edge = _calls(servicegraph)[("frontend", "cart")]
    assert edge.attributes["via"] == "servicegraph"
    assert (edge.provenance.file, edge.provenance.line) == (str(METRICS), 5)
    assert _calls(servicegraph)[("frontend", "checkout")].provenance.line == 30


def test_servicegraph_node_kinds(servicegraph: ImportResult) -> None:
    nodes = _nodes(servicegraph)
    assert nodes["kafka"].kind is NodeKind.QUEUE  # connection_type="messaging_system"
    assert nodes["astronomy-db"].kind is NodeKind.DATASTORE  # connection_type="database"
    assert nodes["user"].kind is NodeKind.EXTERNAL  # the connector's virtual client
    assert nodes["frontend-proxy"].kind is NodeKind.SERVICE
    assert "load-generator" not in nodes  # unpaired-span counters are not requests
    assert nodes["cart"].provenance.line == 5


def test_trace_calls_with_requests_and_errors(traces: ImportResult) -> None:
    assert _counts(traces) == {
        ("frontend", "cart"): (2, 0),  # one request in each file
        ("frontend", "checkout"): (1, 0),
        ("checkout", "payment"): (1, 1),  # status code 2 on both sides
        ("checkout", "accounting"): (1, 0),  # producer -> consumer, across files
        ("cart", "valkey-cart"): (1, 0),  # a redis client span with no server span
        ("payment", "api.stripe.com"): (1, 0),
    }
    calls = _calls(traces)
    assert calls[("cart", "valkey-cart")].attributes["unpaired"] is True
    assert "unpaired" not in calls[("frontend", "cart")].attributes
    assert calls[("frontend", "cart")].attributes["via"] == "traces"
    stripe = calls[("payment", "api.stripe.com")]
    assert (stripe.provenance.file, stripe.provenance.line) == (str(TRACE_LINES), 2)
    assert calls[("checkout", "accounting")].provenance.file == str(TRACES)


def test_trace_nodes_and_environments(traces: ImportResult) -> None:
    nodes = _nodes(traces)
    services = {i for i, n in nodes.items() if n.kind is NodeKind.SERVICE}
    assert services == {"frontend", "cart", "checkout", "payment", "accounting"}
    assert nodes["valkey-cart"].kind is NodeKind.DATASTORE  # db.system on the client span
    assert nodes["api.stripe.com"].kind is NodeKind.EXTERNAL
    assert nodes["frontend"].attributes == {
        "service.namespace": "opentelemetry-demo",
        "service.version": "2.1.3",
    }
    assert nodes["accounting"].provenance.line == 1  # JSON lines: the line is known
    part_of = {(e.source, e.target) for e in traces.edges if e.kind is EdgeKind.PART_OF}
    assert part_of == {("frontend", "environment:staging"), ("cart", "environment:staging")}


def test_trace_warnings(traces: ImportResult) -> None:
    assert [(w.file, w.line) for w in traces.warnings] == [
        (str(TRACE_LINES), 2),
        (str(TRACES), None),
    ]
    assert "payment calls 'api.stripe.com'" in traces.warnings[0].message
    assert "1 client/producer span(s) of checkout" in traces.warnings[1].message


def test_one_file_alone_leaves_the_consumer_unpaired() -> None:
    alone = otel.parse([TRACES], "traces")
    calls = _calls(alone)
    assert ("checkout", "accounting") not in calls
    assert calls[("checkout", "kafka")].attributes["unpaired"] is True
    assert _nodes(alone)["kafka"].kind is NodeKind.QUEUE  # messaging.system on the producer
    assert _counts(alone)[("frontend", "cart")] == (1, 0)


def test_detect() -> None:
    for path in (METRICS, TRACES, TRACE_LINES):
        assert otel.detect(path, path.read_text())
    assert not otel.detect(
        Path("m.prom"), "# TYPE http_requests_total counter\nhttp_requests_total 3\n"
    )
    assert not otel.detect(Path("x.json"), '{"spans": []}')


def test_bad_json_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "trace.json"
    bad.write_text('{\n  "resourceSpans": [\n    {"resource": }\n  ]\n}\n')
    with pytest.raises(GraphInputError) as caught:
        otel.parse([bad], "bad")
    assert (caught.value.file, caught.value.line) == (str(bad), 3)
    assert "malformed JSON" in str(caught.value)


def test_bad_json_line_names_the_line(tmp_path: Path) -> None:
    lines = TRACE_LINES.read_text().splitlines()
    bad = tmp_path / "traces.jsonl"
    bad.write_text("\n".join([lines[0], "", lines[1][:-7], lines[0]]) + "\n")
    with pytest.raises(GraphInputError) as caught:
        otel.parse([bad], "bad")
    assert (caught.value.file, caught.value.line) == (str(bad), 3)
    assert "malformed JSON line" in str(caught.value)


def test_wrong_shapes_are_errors(tmp_path: Path) -> None:
    cases = {
        '{"resourceSpans": {}}': "no resourceSpans",
        '{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "a"}]}]}]}': "traceId",
        '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "t", "spanId": "s", '
        '"kind": "SPAN_KIND_SIDEWAYS"}]}]}]}': "unknown value 'SPAN_KIND_SIDEWAYS'",
        '{"resourceSpans": [7]}': "resourceSpans[0] must be a JSON object",
    }
    for index, (text, problem) in enumerate(cases.items()):
        path = tmp_path / f"case{index}.json"
        path.write_text(text)
        with pytest.raises(GraphInputError) as caught:
            otel.parse([path], "bad")
        assert problem in str(caught.value)


def test_missing_service_name_is_warned(tmp_path: Path) -> None:
    path = tmp_path / "anon.json"
    path.write_text('{"resourceSpans": [{"resource": {}, "scopeSpans": []}]}')
    result = otel.parse([path], "anon")
    assert "unknown_service" in _nodes(result)
    assert "no service.name" in result.warnings[0].message


def test_bad_exposition_line_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "metrics.prom"
    text = METRICS.read_text().splitlines()
    text.insert(6, 'traces_service_graph_request_total{client="a",server="b} 1')
    bad.write_text("\n".join(text) + "\n")
    with pytest.raises(GraphInputError) as caught:
        otel.parse([bad], "bad")
    assert (caught.value.file, caught.value.line) == (str(bad), 7)
    assert "unterminated value of label 'server'" in str(caught.value)


def test_odd_servicegraph_samples_are_warned(tmp_path: Path) -> None:
    path = tmp_path / "odd.prom"
    path.write_text(
        'traces_service_graph_request_total{client="a"} 4\n'
        'traces_service_graph_request_total{client="a",server="b"} NaN\n'
        'otelcol_traces_service_graph_request_total{client="a",server="c"} 2.5\n'
    )
    result = otel.parse([path], "odd")
    assert [w.line for w in result.warnings] == [1, 2]
    assert _counts(result) == {("a", "c"): (2.5, 0)}  # a namespace prefix is allowed


def test_exposition_parser() -> None:
    samples = parse_exposition(
        "# HELP m Help with \\\\ and \\n escapes\n"
        "# TYPE m counter\n"
        "# just a comment\n"
        '\nm{a="x\\"y\\\\z\\nw",b="",} 1.5e3 1700000000000\n'
        'm 3 # {trace_id="abc"} 1\n'
        "n -Inf\n"
        "n NaN\n"
        "# EOF\n"
        "this is not read\n"
    )
    assert [(s.name, s.labels, s.line) for s in samples] == [
        ("m", (("a", 'x"y\\z\nw'), ("b", "")), 5),
        ("m", (), 6),
        ("n", (), 7),
        ("n", (), 8),
    ]
    assert samples[0].value == 1500 and samples[0].timestamp == 1700000000000
    assert samples[2].value == -math.inf and math.isnan(samples[3].value)
    for bad, problem in {
        'm{a="1",a="2"} 1': "appears twice",
        "m{a=1} 1": 'expected ="..."',
        "m 1 2 3": "optional timestamp",
        "m one": "not a number",
        "# TYPE m meter": "unknown type",
        'm{a="\\q"} 1': "invalid escape",
        "1m 1": "expected a metric name",
    }.items():
        with pytest.raises(ExpositionError) as caught:
            parse_exposition("ok 1\n" + bad)
        assert caught.value.line == 2 and problem in str(caught.value), bad


@given(
    values=st.lists(
        st.text(alphabet=st.characters(codec="utf-8"), max_size=20), min_size=1, max_size=4
    ),
    count=st.integers(min_value=0, max_value=10**12),
)
def test_label_values_round_trip(values: list[str], count: int) -> None:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    labels = ",".join(f'l{i}="{escape(v)}"' for i, v in enumerate(values))
    [sample] = parse_exposition(f"metric_total{{{labels}}} {count}\n")
    assert [v for _, v in sample.labels] == values
    assert sample.value == count
