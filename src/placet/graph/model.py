"""The System Graph's vocabulary: node and edge kinds, facts with provenance, import results.

Importers turn files into *facts*; each fact says which source, importer, file and line
it came from. Facts from every source are merged into a graph by node id (see
``graph/merge.py``); nothing a source says is dropped silently.

Node ids: services, datastores, queues and externals use their lowercase name
(``cartservice``); other kinds carry their kind as a prefix (``api:cart``,
``team:checkout``, ``pipeline:ci-main``, ``environment:production``), so the same name
can be a service and a team without colliding. :func:`node_id` builds them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class NodeKind(enum.StrEnum):
    SERVICE = "service"
    API = "api"
    DATASTORE = "datastore"
    QUEUE = "queue"
    PIPELINE = "pipeline"
    TEAM = "team"
    ENVIRONMENT = "environment"
    EXTERNAL = "external"


class EdgeKind(enum.StrEnum):
    DEPENDS_ON = "depends_on"
    CALLS = "calls"
    PROVIDES_API = "provides_api"
    CONSUMES_API = "consumes_api"
    READS = "reads"
    WRITES = "writes"
    DEPLOYS = "deploys"
    OWNED_BY = "owned_by"
    PART_OF = "part_of"


# Kinds whose ids are their bare name; the others are prefixed with "<kind>:".
BARE_KINDS = frozenset({NodeKind.SERVICE, NodeKind.DATASTORE, NodeKind.QUEUE, NodeKind.EXTERNAL})

# Well-known tags. Free tags are allowed too.
REVENUE_PATH = "revenue-path"
INTERNET_FACING = "internet-facing"
REGULATED_PREFIX = "regulated-data:"
DATA_CLASSES = frozenset({"pii", "pci", "phi"})

_ID_CHARS = re.compile(r"[^a-z0-9._:/-]+")


def normalise_name(name: str) -> str:
    """Lowercase, trimmed, with runs of other characters turned into '-'."""
    return _ID_CHARS.sub("-", name.strip().lower()).strip("-")


def node_id(kind: NodeKind, name: str) -> str:
    """The id of a node of ``kind`` called ``name`` (see the module docstring)."""
    base = normalise_name(name)
    return base if kind in BARE_KINDS else f"{kind.value}:{base}"


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a fact came from: the source it was imported as, the importer, file and line."""

    source: str
    importer: str
    file: str
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "importer": self.importer,
            "file": self.file,
            "line": self.line,
        }


@dataclass(frozen=True, slots=True)
class NodeFact:
    """One source's statement that a node exists, with what it knows about it."""

    id: str
    kind: NodeKind
    provenance: Provenance
    name: str = ""
    owner: str | None = None
    tier: str | None = None
    tags: tuple[str, ...] = ()
    source_paths: tuple[str, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EdgeFact:
    """One source's statement that ``source`` relates to ``target`` by ``kind``."""

    source: str
    target: str
    kind: EdgeKind
    provenance: Provenance
    attributes: Mapping[str, Any] = field(default_factory=dict)


class Direction(enum.StrEnum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"


@dataclass(frozen=True, slots=True)
class Coverage:
    """A claim that a source lists ALL edges of ``kind`` in ``direction`` of node ``node``.

    Two sources that both cover the same node/kind/direction and list different edges
    disagree: that is a conflict (``placet graph conflicts``), never an overwrite.
    E.g. a Deployment's env vars cover its outgoing ``calls``; a NetworkPolicy covers
    its pods' incoming ``calls``.
    """

    node: str
    kind: EdgeKind
    direction: Direction
    provenance: Provenance


@dataclass(frozen=True, slots=True)
class ImportWarning:
    """Something an importer could not take as given (a dangling reference, an odd kind)."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class OwnershipRule:
    """One CODEOWNERS-style rule: paths matching ``pattern`` are owned by ``owners``.

    Rules are kept in file order; the LAST matching rule wins, and a rule with no owners
    means "no owners" for the paths it matches. Owners are ids: ``team:<org/team>`` or
    ``user:<name-or-email>``.
    """

    pattern: str
    owners: tuple[str, ...]
    provenance: Provenance


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Everything one importer read from its files."""

    importer: str
    nodes: tuple[NodeFact, ...] = ()
    edges: tuple[EdgeFact, ...] = ()
    coverage: tuple[Coverage, ...] = ()
    warnings: tuple[ImportWarning, ...] = ()
    files: tuple[str, ...] = ()
    ownership: tuple[OwnershipRule, ...] = ()
