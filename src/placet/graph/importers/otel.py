"""OpenTelemetry: observed calls, from servicegraph metrics or from OTLP/JSON traces.

* **Servicegraph metrics** (Prometheus text, :mod:`prometheus_text`): the collector's
  servicegraph connector counts requests in
  ``traces_service_graph_request_total{client="a",server="b",...}`` and failures in
  ``traces_service_graph_request_failed_total`` (a namespace prefix such as
  ``otelcol_`` is allowed). Each ``a -> b`` is a ``calls`` edge with
  ``{"via": "servicegraph", "requests": n, "errors": m}``: different series of one pair
  (other ``connection_type``, ``instance``...) are summed; the same series written twice
  (two scrapes in one file) counts once, the latest timestamp winning. A server reached with
  ``connection_type="database"`` is a ``datastore``, ``"messaging_system"`` a ``queue``;
  a ``"virtual_node"`` peer (the connector's stand-in for an uninstrumented side: client
  ``user`` when the caller is missing, else the server) is ``external``. NaN, infinite
  or negative counts are warned about and skipped.
* **OTLP/JSON traces**: see :mod:`otel_traces`; edges carry ``{"via": "traces",
  "requests", "errors"}``, and a resource's ``deployment.environment[.name]`` gives a
  ``part_of`` edge to that environment.

Telemetry shows only the traffic that happened to be sampled, so no coverage is claimed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from placet.graph.errors import GraphInputError
from placet.graph.importers.otel_traces import Pair, TraceFacts, read_traces
from placet.graph.importers.prometheus_text import ExpositionError, Sample, parse_exposition
from placet.graph.model import (
    EdgeFact,
    EdgeKind,
    ImportResult,
    ImportWarning,
    NodeFact,
    NodeKind,
    Provenance,
    node_id,
)

NAME = "otel"
_METRIC = re.compile(
    r"^(?:[a-zA-Z_:][a-zA-Z0-9_:]*_)?traces_service_graph_request_(failed_)?total$"
)
_DETECT_METRIC = re.compile(
    r"(?m)^(?:[a-zA-Z_:][a-zA-Z0-9_:]*_)?traces_service_graph_request_(?:failed_)?total[{ \t]"
)
_DETECT_OTLP = re.compile(r'^\s*\{\s*"resourceSpans"\s*:')
_SERVER_KINDS = {
    "database": NodeKind.DATASTORE,
    "messaging_system": NodeKind.QUEUE,
    "virtual_node": NodeKind.EXTERNAL,
}


def detect(path: Path, text: str) -> bool:
    """OTLP/JSON (``{"resourceSpans": ...``) or exposition text with servicegraph counters."""
    return bool(_DETECT_OTLP.match(text) or _DETECT_METRIC.search(text))


def parse(files: Sequence[Path], source: str) -> ImportResult:
    """Import servicegraph metrics and OTLP/JSON traces (see the module docstring)."""
    texts: list[tuple[Path, str]] = []
    for file in files:
        try:
            texts.append((file, file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise GraphInputError(str(file), f"cannot read file: {exc}") from exc
    traces = [(f, t) for f, t in texts if t.lstrip().startswith("{")]
    metrics = [(f, t) for f, t in texts if not t.lstrip().startswith("{")]
    out = _Facts(source)
    for file, text in metrics:
        out.servicegraph(file, text)
    if traces:
        out.traces(read_traces(traces))
    return ImportResult(
        importer=NAME,
        nodes=tuple(out.nodes.values()),
        edges=tuple(out.edges),
        warnings=tuple(out.warnings),
        files=tuple(str(f) for f in files),
    )


class _Facts:
    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes: dict[str, NodeFact] = {}
        self.edges: list[EdgeFact] = []
        self.warnings: list[ImportWarning] = []

    def prov(self, file: str, line: int | None) -> Provenance:
        return Provenance(self.source, NAME, file, line)

    def node(
        self,
        name: str,
        kind: NodeKind,
        file: str,
        line: int | None,
        attributes: dict[str, Any] | None = None,
    ) -> str:
        nid = node_id(kind, name)
        known = self.nodes.get(nid)
        if known is None or (known.kind == NodeKind.SERVICE and kind != NodeKind.SERVICE):
            self.nodes[nid] = NodeFact(
                nid, kind, self.prov(file, line), name=name, attributes=attributes or {}
            )
        return nid

    def edge(self, client: str, server: str, pair: Pair, via: str) -> None:
        attrs = {"via": via, "requests": _number(pair.requests), "errors": _number(pair.errors)}
        attrs.update(pair.attributes)
        self.edges.append(
            EdgeFact(client, server, EdgeKind.CALLS, self.prov(pair.file, pair.line), attrs)
        )

    def servicegraph(self, file: Path, text: str) -> None:
        try:
            samples = parse_exposition(text)
        except ExpositionError as exc:
            raise GraphInputError(str(file), exc.problem, exc.line) from exc
        latest: dict[tuple[str, tuple[tuple[str, str], ...]], Sample] = {}
        for sample in samples:
            if not _METRIC.match(sample.name):
                continue
            key = (sample.name, tuple(sorted(sample.labels)))
            old = latest.get(key)
            if old is None or (sample.timestamp or 0) >= (old.timestamp or 0):
                latest[key] = sample
        pairs: dict[tuple[str, str], Pair] = {}
        kinds: dict[str, NodeKind] = {}
        for sample in sorted(latest.values(), key=lambda s: s.line):
            self._sample(str(file), sample, pairs, kinds)
        if not pairs:
            self.warnings.append(
                ImportWarning(
                    str(file),
                    None,
                    "no servicegraph request counters (traces_service_graph_request_total)",
                )
            )
        for (client, server), pair in pairs.items():
            c = self.node(client, kinds.get(client, NodeKind.SERVICE), pair.file, pair.line)
            s = self.node(server, kinds.get(server, NodeKind.SERVICE), pair.file, pair.line)
            self.edge(c, s, pair, "servicegraph")

    def _sample(
        self,
        file: str,
        sample: Sample,
        pairs: dict[tuple[str, str], Pair],
        kinds: dict[str, NodeKind],
    ) -> None:
        client, server = sample.label("client"), sample.label("server")
        if not client or not server:
            self.warnings.append(
                ImportWarning(
                    file,
                    sample.line,
                    (f"{sample.name} sample without client and server labels; skipped"),
                )
            )
            return
        if math.isnan(sample.value) or sample.value < 0 or math.isinf(sample.value):
            self.warnings.append(
                ImportWarning(
                    file,
                    sample.line,
                    (f"{sample.name} {client}->{server} has count {sample.value}; skipped"),
                )
            )
            return
        connection = sample.label("connection_type") or ""
        if connection == "virtual_node" and client == "user":
            kinds[client] = NodeKind.EXTERNAL  # the connector's stand-in for a missing client
        elif connection in _SERVER_KINDS:
            kinds[server] = _SERVER_KINDS[connection]
        pair = pairs.setdefault((client, server), Pair(file, sample.line))
        if "failed" in sample.name.rsplit("traces_service_graph_request", 1)[1]:
            pair.errors += sample.value
        else:
            pair.requests += sample.value
        if connection:
            types = pair.attributes.setdefault("connection_types", [])
            if connection not in types:
                types.append(connection)

    def traces(self, facts: TraceFacts) -> None:
        self.warnings.extend(facts.warnings)
        for name, service in facts.services.items():
            attrs: dict[str, Any] = dict(service.attributes)
            nid = self.node(name, NodeKind.SERVICE, service.file, service.line, attrs)
            if service.environment:
                env = self.node(
                    service.environment, NodeKind.ENVIRONMENT, service.file, service.line
                )
                self.edges.append(
                    EdgeFact(nid, env, EdgeKind.PART_OF, self.prov(service.file, service.line))
                )
        for (client, server), pair in facts.pairs.items():
            kind = facts.kinds.get(server, NodeKind.SERVICE)
            target = self.node(server, kind, pair.file, pair.line)
            self.edge(node_id(NodeKind.SERVICE, client), target, pair, "traces")


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
