"""OTLP/JSON trace exports -> which service calls which, with request and error counts.

A file holds one ``ExportTraceServiceRequest`` (``{"resourceSpans": [...]}``) or, as the
collector's file exporter writes, one per line (JSON lines). Each resource's
``service.name`` attribute names the service of its spans (``unknown_service`` and a
warning when absent). Enums are accepted as numbers or names (``2`` or
``"SPAN_KIND_SERVER"``), ``instrumentationLibrarySpans`` as the old name of ``scopeSpans``.

A CLIENT or PRODUCER span of service A whose child (by ``parentSpanId``, or by a link from a
CONSUMER span) is a SERVER or CONSUMER span of service B != A is one request A -> B; it is
an error when either span has status code 2 (ERROR). Spans of every file in the run are
matched together, since each service exports its own. A CLIENT/PRODUCER span with no such
child counts towards the peer it names (``peer.service``, ``server.address``,
``net.peer.name``): a ``datastore`` when it has ``db.system``, a ``queue`` when it has
``messaging.system``, a known service by name, else an ``external`` node and a warning.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from placet.graph.errors import GraphInputError
from placet.graph.model import ImportWarning, NodeKind

_KINDS = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5
ERROR = 2
_PEER_KEYS = ("peer.service", "server.address", "net.peer.name")
_ENV_KEYS = ("deployment.environment.name", "deployment.environment")


@dataclass(slots=True)
class Pair:
    """Requests and errors seen from one service to another, and where first seen."""

    file: str
    line: int | None
    requests: float = 0
    errors: float = 0
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Service:
    """A service named by a resource: where first seen and what its resource says."""

    file: str
    line: int | None
    environment: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class TraceFacts:
    """Services, call pairs, the kinds of non-service peers, and warnings."""

    services: dict[str, Service] = field(default_factory=dict)
    pairs: dict[tuple[str, str], Pair] = field(default_factory=dict)
    kinds: dict[str, NodeKind] = field(default_factory=dict)
    warnings: list[ImportWarning] = field(default_factory=list)


@dataclass(slots=True)
class _Span:
    service: str
    kind: int
    error: bool
    attributes: dict[str, Any]
    links: list[tuple[str, str]]
    parent: tuple[str, str] | None
    file: str
    line: int | None
    paired: bool = False


def documents(file: Path, text: str) -> Iterator[tuple[Any, int | None]]:
    """The JSON documents of ``file``: the whole text, or one per line (JSON lines)."""
    try:
        single_line = len([line for line in text.split("\n") if line.strip()]) == 1
        yield json.loads(text), 1 if single_line else None
        return
    except json.JSONDecodeError as whole:
        lines = text.split("\n")
        first = next((i for i, line in enumerate(lines) if line.strip()), None)
        if first is None or not _parses(lines[first]):
            raise GraphInputError(str(file), f"malformed JSON: {whole.msg}", whole.lineno) from None
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                yield json.loads(line), number
            except json.JSONDecodeError as exc:
                raise GraphInputError(
                    str(file), f"malformed JSON line: {exc.msg} (column {exc.colno})", number
                ) from None


def _parses(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def read_traces(files: Sequence[tuple[Path, str]]) -> TraceFacts:
    """Call pairs from the spans of every ``(file, text)`` (see the module docstring)."""
    facts = TraceFacts()
    spans: dict[tuple[str, str], _Span] = {}
    for file, text in files:
        for doc, line in documents(file, text):
            for span_id, span in _spans(file, doc, line, facts):
                spans[span_id] = span
    for span in spans.values():
        callers = [span.parent] if span.kind in (SERVER, CONSUMER) else []
        callers += span.links if span.kind == CONSUMER else []
        for ref in callers:
            caller = spans.get(ref) if ref else None
            if caller is None or caller.kind not in (CLIENT, PRODUCER):
                continue
            caller.paired = True
            if caller.service != span.service:
                _count(facts, caller, span.service, span.error or caller.error)
    _unpaired(facts, [s for s in spans.values() if s.kind in (CLIENT, PRODUCER) and not s.paired])
    return facts


def _count(facts: TraceFacts, caller: _Span, target: str, error: bool) -> None:
    pair = facts.pairs.setdefault((caller.service, target), Pair(caller.file, caller.line))
    pair.requests += 1
    pair.errors += int(error)


def _unpaired(facts: TraceFacts, spans: list[_Span]) -> None:
    nameless: dict[str, int] = {}
    for span in spans:
        peer = next((str(span.attributes[k]) for k in _PEER_KEYS if span.attributes.get(k)), None)
        if peer is None:
            nameless[span.service] = nameless.get(span.service, 0) + 1
            continue
        if peer == span.service:
            continue
        if "db.system" in span.attributes or "db.system.name" in span.attributes:
            facts.kinds.setdefault(peer, NodeKind.DATASTORE)
        elif "messaging.system" in span.attributes:
            facts.kinds.setdefault(peer, NodeKind.QUEUE)
        elif peer not in facts.services and peer not in facts.kinds:
            facts.kinds[peer] = NodeKind.EXTERNAL
            facts.warnings.append(
                ImportWarning(
                    span.file,
                    span.line,
                    (
                        f"{span.service} calls {peer!r}, which sent no spans in these files; "
                        f"kept as external node {peer!r}"
                    ),
                )
            )
        _count(facts, span, peer, span.error)
        facts.pairs[(span.service, peer)].attributes["unpaired"] = True
    for service, count in sorted(nameless.items()):
        where = facts.services[service]
        facts.warnings.append(
            ImportWarning(
                where.file,
                where.line,
                (
                    f"{count} client/producer span(s) of {service} have no server/consumer span in "
                    "these files and name no peer; not counted"
                ),
            )
        )


def _spans(
    file: Path, doc: Any, line: int | None, facts: TraceFacts
) -> Iterator[tuple[tuple[str, str], _Span]]:
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceSpans"), list):
        raise GraphInputError(str(file), "not an OTLP/JSON trace export (no resourceSpans)", line)
    for r, resource_spans in enumerate(doc["resourceSpans"]):
        where = f"resourceSpans[{r}]"
        resource = _object(resource_spans, where, file, line).get("resource") or {}
        resource = _object(resource, f"{where}.resource", file, line)
        attributes = _attributes(resource.get("attributes"), f"{where}.resource", file, line)
        service = str(attributes.get("service.name") or "unknown_service")
        if "service.name" not in attributes:
            facts.warnings.append(
                ImportWarning(
                    str(file),
                    line,
                    (f"{where} has no service.name; its spans are kept as 'unknown_service'"),
                )
            )
        known = facts.services.setdefault(service, Service(str(file), line))
        env = next((attributes[k] for k in _ENV_KEYS if attributes.get(k)), None)
        known.environment = known.environment or (str(env) if env else None)
        for key in ("service.namespace", "service.version"):
            if attributes.get(key):
                known.attributes.setdefault(key, str(attributes[key]))
        scopes = resource_spans.get("scopeSpans", resource_spans.get("instrumentationLibrarySpans"))
        for s, scope in enumerate(scopes or []):
            for i, span in enumerate(
                _object(scope, f"{where}.scopeSpans[{s}]", file, line).get("spans") or []
            ):
                yield _span(span, service, f"{where}.scopeSpans[{s}].spans[{i}]", file, line)


def _span(
    raw: Any, service: str, where: str, file: Path, line: int | None
) -> tuple[tuple[str, str], _Span]:
    span = _object(raw, where, file, line)
    trace, span_id = span.get("traceId"), span.get("spanId")
    if not isinstance(trace, str) or not trace or not isinstance(span_id, str) or not span_id:
        raise GraphInputError(str(file), f"{where}: traceId and spanId must be strings", line)
    kind = _enum(span.get("kind", 0), "SPAN_KIND_", _KINDS, f"{where}.kind", file, line)
    status = _object(span.get("status") or {}, f"{where}.status", file, line)
    code = _enum(
        status.get("code", 0),
        "STATUS_CODE_",
        {"UNSET": 0, "OK": 1, "ERROR": 2},
        f"{where}.status.code",
        file,
        line,
    )
    parent = span.get("parentSpanId")
    links = [
        (str(link.get("traceId") or trace), str(link.get("spanId")))
        for link in span.get("links") or []
        if isinstance(link, dict)
    ]
    attributes = _attributes(span.get("attributes"), where, file, line)
    parent_ref = (trace, parent) if isinstance(parent, str) and parent else None
    return (trace, span_id), _Span(
        service, kind, code == ERROR, attributes, links, parent_ref, str(file), line
    )


def _object(value: Any, where: str, file: Path, line: int | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GraphInputError(str(file), f"{where} must be a JSON object", line)
    return value


def _enum(
    value: Any, prefix: str, names: dict[str, int], where: str, file: Path, line: int | None
) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.removeprefix(prefix) in names:
        return names[value.removeprefix(prefix)]
    if isinstance(value, str) and value.removeprefix(prefix) in ("UNSPECIFIED",):
        return 0
    raise GraphInputError(str(file), f"{where}: unknown value {value!r}", line)


def _attributes(raw: Any, where: str, file: Path, line: int | None) -> dict[str, Any]:
    """OTLP ``[{"key": k, "value": {"stringValue": v}}]`` as ``{k: v}``."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise GraphInputError(str(file), f"{where}.attributes must be a list", line)
    found: dict[str, Any] = {}
    for item in raw:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            value = item.get("value") or {}
            found[item["key"]] = (
                next(iter(value.values()), None) if isinstance(value, dict) else None
            )
    return found
