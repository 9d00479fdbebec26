"""Importing a large Backstage catalog: the importer, merge + digest + index, and the CLI.

Generates a synthetic but realistic Backstage catalog (default 10,000 entities) in a
temporary directory: Domains, Systems, Groups (a tree of departments and teams), Users
(``memberOf`` their teams), APIs (openapi / grpc / asyncapi / graphql, with an inline
definition), Resources (databases, buckets, topics, caches, queues) and Components (services,
websites, libraries, a few databases) with ``dependsOn``, ``providesApis``, ``consumesApis``,
``owner``, ``system``, tags, links and annotations (source location, tier, placet tags).
Dependencies and consumed APIs are heavy-tailed (a few popular services and APIs collect most
of them), mostly inside a system. Refs come in every form (``name``, ``kind:name``,
``kind:namespace/name``, a capitalised kind now and then); a tenth of the systems live in a
second namespace, so refs across namespaces must name it; 0.3% of ``dependsOn`` and
``consumesApis`` refs name an entity the catalog lacks (each becomes a placeholder node and a
warning). Of 10,000 entities: 5,190 Components, 1,800 APIs, 1,200 Resources, 100 Systems, 10
Domains, 200 Groups, 1,500 Users. Two layouts of the same entities:

- ``grouped``: a root Location (``catalog-info.yaml``) listing one file per System (the
  System, its Components, APIs and Resources) and the organisation in files of 100 Domains,
  Groups and Users (119 files for 10,000 entities, the root included);
- ``per-entity``: one file per entity; the root Location lists one Location per System
  directory, which lists its entity files, and an organisation Location whose targets are
  globs (``./groups/*.yaml``, ``./users/*.yaml``) (10,102 files for 10,000 entities).

Then, per layout, it times:

(a) the importer alone: ``backstage.parse([root])`` (reads the root and every file its
    Locations reach), in process; also ``registry.walk`` + ``registry.plan`` of the whole
    directory (every file read and its format detected from content);
(b) ``merge([result])``, the version's digest (``graph.digest``) and ``GraphIndex(graph)``;
(c) the whole ``placet graph import PATH --source bench --data-dir D --json`` process, into
    a data dir made fresh by ``placet init`` (untimed) for each run: import, merge, digest
    and storing the source and the version in SQLite. Run with PATH the root Location file
    and with PATH the catalog's directory (every file detected from content, then the same
    import). For reference, ``GraphService.import_paths`` of the directory in process.

It also times, in process, the steps ``GraphService`` takes after the importer (facts to
JSON, their digest, the JSON column written and read back, decoding, merge, the version's
digest, its document built again and serialised), so the end-to-end time can be accounted
for; what remains is SQLite and SQLAlchemy.

Each figure is printed with its ratio to the 10 s target of issue 3 (a 10,000-entity
Backstage catalog imports in <= 10 s): the median wall-clock time divided by 10 s, so <= 1
meets it. Every figure is the median (and minimum) of ``--repeat`` runs, in wall-clock and
in CPU seconds (of this process, or of the ``placet`` child process); on a shared machine
the CPU time is the steadier of the two. The importer's entity-ref cache is cleared before
each in-process run. The CLI's node and edge counts are checked against (b)'s graph.

With ``--profile`` (or when the CLI median of a layout misses the target), one more CLI run
of that layout (the directory as PATH) runs under cProfile, and the functions with the most
own time, and placet's functions with the most cumulative time, are printed.

Usage (from the repository root)::

    .venv/bin/python bench/graph_import.py                      # 10,000 entities, both layouts
    .venv/bin/python bench/graph_import.py --entities 2000 --repeat 1 --json
    .venv/bin/python bench/graph_import.py --layouts per-entity --profile --top 30
    .venv/bin/python bench/graph_import.py --keep /tmp/catalog  # keep the generated files
"""

from __future__ import annotations

import argparse
import bisect
import gc
import io
import itertools
import json
import os
import pstats
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from placet.domain.canonical import digest_of
from placet.graph.codec import result_from_json, result_to_json
from placet.graph.importers import backstage, backstage_catalog, registry
from placet.graph.merge import merge
from placet.graph.model import ImportResult
from placet.graph.queries import GraphIndex
from placet.service.config import load_settings
from placet.service.control_plane import ControlPlane, initialise

TARGET_S = 10.0
# What a `placet graph import` process imports before it reads a file.
STARTUP = "import placet.cli.main, placet.service.control_plane"
# `python -m placet ARGS` with the cyclic garbage collector disabled first.
GC_OFF = (
    "import gc, runpy, sys; gc.disable(); sys.argv[0] = 'placet'; "
    "runpy.run_module('placet', run_name='__main__', alter_sys=True)"
)
LAYOUTS = ("grouped", "per-entity")
API_VERSION = "backstage.io/v1alpha1"
SECOND_NAMESPACE = "platform"
DANGLING_SHARE = 0.003
ORG_PER_FILE = 100


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Share of the entities per kind; Components take the rest.
MIX = {
    "Domain": 0.001,
    "System": 0.01,
    "Group": 0.02,
    "User": 0.15,
    "API": 0.18,
    "Resource": 0.12,
}
WORDS = _words(
    "cart checkout payment ledger invoice pricing search catalog inventory shipping order "
    "fraud identity auth session profile review rating recommend ads email notify sms "
    "push billing tax refund coupon loyalty wallet fx quote booking schedule report audit "
    "metrics gateway edge media image video upload export import sync stream feed graph "
    "score"
)
FIRST = _words("ana ben chen dara eli fatima gus hana ivan jun kim lena mo nora omar pia")
LAST = _words("silva okafor novak tanaka murphy garcia kowalski haddad lindqvist rossi")
LANGS = ("java", "go", "python", "typescript", "kotlin", "rust", "csharp")
COMPONENT_TYPES = (("service", 0.75), ("website", 0.1), ("library", 0.1), ("database", 0.05))
RESOURCE_TYPES = (
    ("database", 0.4),
    ("s3-bucket", 0.2),
    ("kafka-topic", 0.2),
    ("cache", 0.1),
    ("queue", 0.1),
)
API_TYPES = (("openapi", 0.5), ("grpc", 0.3), ("asyncapi", 0.15), ("graphql", 0.05))
_PLAIN = re.compile(r"[A-Za-z_][\w./:@+-]*")
_RESERVED = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n"})

T = TypeVar("T")


# ---- a small YAML writer (fast, and the exact styles wanted) ---------------------------------


class Flow(list[Any]):
    """A list written in flow style: ``[a, b]``."""


class Block(str):
    """A string written as a literal block: ``|``."""

    __slots__ = ()


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def _emit(mapping: dict[str, Any], indent: int, out: list[str]) -> None:
    pad = "  " * indent
    for key, value in mapping.items():
        if isinstance(value, Block):
            out.append(f"{pad}{key}: |")
            out.extend(f"{pad}  {line}" for line in value.splitlines())
        elif isinstance(value, dict):
            if not value:
                out.append(f"{pad}{key}: {{}}")
                continue
            out.append(f"{pad}{key}:")
            _emit(value, indent + 1, out)
        elif isinstance(value, Flow) or (isinstance(value, list) and not value):
            out.append(f"{pad}{key}: [{', '.join(_scalar(v) for v in value)}]")
        elif isinstance(value, list):
            out.append(f"{pad}{key}:")
            for item in value:
                if isinstance(item, dict):
                    inner: list[str] = []
                    _emit(item, indent + 2, inner)
                    out.append(f"{pad}  - {inner[0].lstrip()}")
                    out.extend(inner[1:])
                else:
                    out.append(f"{pad}  - {_scalar(item)}")
        else:
            out.append(f"{pad}{key}: {_scalar(value)}")


def to_yaml(documents: Sequence[dict[str, Any]]) -> str:
    """Documents as one multi-document YAML text."""
    texts = []
    for doc in documents:
        out: list[str] = []
        _emit(doc, 0, out)
        texts.append("\n".join(out) + "\n")
    return "---\n".join(texts)


# ---- the synthetic catalog ---------------------------------------------------------------


@dataclass
class Ent:
    """One entity to write: kind as Backstage spells it, name, namespace, its system."""

    kind: str
    name: str
    namespace: str = "default"
    system: int | None = None
    doc: dict[str, Any] = field(default_factory=dict)

    @property
    def ref_kind(self) -> str:
        return self.kind.lower()


@dataclass
class Catalog:
    """The generated catalog: the root Location, every file, and what it holds."""

    root: Path
    directory: Path
    files: int
    counts: dict[str, int]
    refs: dict[str, int]
    bytes: int


def _pick(rng: random.Random, table: Sequence[tuple[T, float]]) -> T:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _count(rng: random.Random, weights: Sequence[float]) -> int:
    """A small count with the given weights for 0, 1, 2, ..."""
    return rng.choices(range(len(weights)), weights=weights)[0]


class _Weighted:
    """Draws from a population with fixed weights (cumulative, for bisect)."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        self.items: list[Any] = list(items)
        self.cum = list(itertools.accumulate(weights))

    def draw(self, rng: random.Random) -> Any:
        return self.items[bisect.bisect(self.cum, rng.random() * self.cum[-1])]


class _Builder:
    """Builds the entities and their documents (deterministic for a seed)."""

    def __init__(self, n: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.counts = {kind: max(1, round(n * share)) for kind, share in MIX.items()}
        self.counts["Component"] = n - sum(self.counts.values())
        if self.counts["Component"] < 5:
            raise SystemExit(f"--entities {n} is too few (at least 50)")
        self.refs = {"plain": 0, "kind:name": 0, "kind:ns/name": 0, "ns/name": 0, "dangling": 0}
        self.dangling = 0

    def name(self, prefix: str, index: int) -> str:
        words = self.rng.sample(WORDS, 2)
        return f"{prefix}{words[0]}-{words[1]}-{index}" if prefix else f"{words[0]}-{index}"

    def ref(self, target: Ent, default_kind: str, source: Ent) -> str:
        """A ref to ``target`` from ``source``, in a random form that resolves to it."""
        kind = target.ref_kind
        forms: list[tuple[str, str]] = []
        if target.namespace == source.namespace:
            if kind == default_kind:
                forms.append(("plain", target.name))
            forms.append(("kind:name", f"{kind}:{target.name}"))
        elif kind == default_kind:
            forms.append(("ns/name", f"{target.namespace}/{target.name}"))
        forms.append(("kind:ns/name", f"{kind}:{target.namespace}/{target.name}"))
        form, text = self.rng.choice(forms)
        self.refs[form] += 1
        if ":" in text and self.rng.random() < 0.05:
            text = text[0].upper() + text[1:]  # kinds compare case-insensitively
        return text

    def missing(self, kind: str) -> str:
        """A ref to an entity the catalog lacks."""
        self.dangling += 1
        self.refs["dangling"] += 1
        return f"{kind}:retired-{self.rng.choice(WORDS)}-{self.dangling}"

    def build(self) -> tuple[list[Ent], list[Ent]]:
        """(organisation entities, system entities), documents filled in."""
        rng, c = self.rng, self.counts
        domains = [Ent("Domain", f"{WORDS[i % len(WORDS)]}-domain-{i}") for i in range(c["Domain"])]
        groups = [Ent("Group", self.name("team-", i)) for i in range(c["Group"])]
        users = [
            Ent("User", f"{rng.choice(FIRST)}.{rng.choice(LAST)}{i}") for i in range(c["User"])
        ]
        systems = [Ent("System", self.name("", i)) for i in range(c["System"])]
        for s in systems:
            if rng.random() < 0.1:
                s.namespace = SECOND_NAMESPACE
        size = _Weighted(range(len(systems)), [1 / (k + 1) ** 0.7 for k in range(len(systems))])
        apis = [
            Ent("API", self.name("", i) + "-api", system=size.draw(rng)) for i in range(c["API"])
        ]
        resources = [
            Ent("Resource", self.name("", i) + "-store", system=size.draw(rng))
            for i in range(c["Resource"])
        ]
        components = [
            Ent("Component", self.name("", i) + "-svc", system=size.draw(rng))
            for i in range(c["Component"])
        ]
        for e in (*apis, *resources, *components):
            assert e.system is not None
            e.namespace = systems[e.system].namespace

        departments = max(1, len(groups) // 20)
        parent = {i: rng.randrange(departments) for i in range(departments, len(groups))}
        children: dict[int, list[int]] = {}
        for child, p in parent.items():
            children.setdefault(p, []).append(child)
        teams = list(range(departments, len(groups))) or [0]
        team_of_system = [rng.choice(teams) for _ in systems]
        member_of = {u: rng.sample(teams, 1 + (rng.random() < 0.2)) for u in range(len(users))}

        for d in domains:
            d.doc = self.envelope(d, f"Business domain {d.name}")
            d.doc["spec"] = {"owner": self.ref(groups[rng.randrange(departments)], "group", d)}
        for i, g in enumerate(groups):
            g.doc = self.envelope(g, None)
            g.doc["spec"] = {
                "type": "department" if i < departments else "team",
                "profile": {"displayName": g.name.replace("-", " ").title()},
                **({"parent": self.ref(groups[parent[i]], "group", g)} if i in parent else {}),
                "children": [self.ref(groups[k], "group", g) for k in children.get(i, [])],
            }
        for u, user in enumerate(users):
            user.doc = self.envelope(user, None)
            first, last = user.name.split(".")
            user.doc["spec"] = {
                "profile": {
                    "displayName": f"{first.title()} {last.rstrip('0123456789').title()}",
                    "email": f"{user.name}@example.com",
                },
                "memberOf": Flow(self.ref(groups[g], "group", user) for g in member_of[u]),
            }
        for k, s in enumerate(systems):
            s.doc = self.envelope(s, f"The {s.name.split('-')[0]} system")
            s.doc["spec"] = {
                "owner": self.ref(groups[team_of_system[k]], "group", s),
                "domain": self.ref(rng.choice(domains), "domain", s),
            }

        by_system: dict[int, list[Ent]] = {}
        for comp in components:
            assert comp.system is not None
            by_system.setdefault(comp.system, []).append(comp)
        popular = [1 / (r + 1) ** 1.1 for r in range(len(components))]
        rng.shuffle(popular)
        any_component = _Weighted(components, popular)
        local_component = self._local(components, popular, by_system)
        api_weights = [1 / (r + 1) ** 0.9 for r in range(len(apis))]
        rng.shuffle(api_weights)
        any_api = _Weighted(apis, api_weights)
        resources_of: dict[int, list[Ent]] = {}
        for res in resources:
            assert res.system is not None
            resources_of.setdefault(res.system, []).append(res)
        provided: dict[int, list[Ent]] = {}
        for api in apis:
            assert api.system is not None
            owners = by_system.get(api.system) or components
            if rng.random() < 0.95:
                provided.setdefault(id(rng.choice(owners)), []).append(api)

        for api in apis:
            assert api.system is not None
            api.doc = self.envelope(api, f"{api.name} interface")
            kind = _pick(rng, API_TYPES)
            api.doc["spec"] = {
                "type": kind,
                "lifecycle": rng.choice(("production", "production", "experimental")),
                "owner": self.ref(groups[team_of_system[api.system]], "group", api),
                "system": self.ref(systems[api.system], "system", api),
                "definition": Block(_definition(kind, api.name)),
            }
        for res in resources:
            assert res.system is not None
            res.doc = self.envelope(res, f"{res.name} storage")
            res.doc["spec"] = {
                "type": _pick(rng, RESOURCE_TYPES),
                "owner": self.ref(groups[team_of_system[res.system]], "group", res),
                "system": self.ref(systems[res.system], "system", res),
            }
        for comp in components:
            assert comp.system is not None
            self.component(
                comp,
                systems,
                groups,
                users,
                team_of_system,
                any_component,
                local_component,
                any_api,
                resources_of,
                provided.get(id(comp), []),
            )
        return [*domains, *groups, *users], [*systems, *apis, *resources, *components]

    def _local(
        self,
        components: list[Ent],
        popular: list[float],
        by_system: dict[int, list[Ent]],
    ) -> dict[int, _Weighted]:
        weight = {id(c): w for c, w in zip(components, popular, strict=True)}
        return {
            s: _Weighted(members, [weight[id(m)] for m in members])
            for s, members in by_system.items()
        }

    def envelope(self, e: Ent, description: str | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": e.name}
        if e.namespace != "default":
            meta["namespace"] = e.namespace
        if description:
            meta["description"] = description
        return {"apiVersion": API_VERSION, "kind": e.kind, "metadata": meta}

    def component(
        self,
        comp: Ent,
        systems: list[Ent],
        groups: list[Ent],
        users: list[Ent],
        team_of_system: list[int],
        any_component: _Weighted,
        local_component: dict[int, _Weighted],
        any_api: _Weighted,
        resources_of: dict[int, list[Ent]],
        provides: list[Ent],
    ) -> None:
        """A Component's document: relations, owner, tags, links and annotations."""
        rng = self.rng
        assert comp.system is not None
        system = systems[comp.system]
        repo = f"acme/{system.name}"
        comp.doc = self.envelope(comp, f"Handles {comp.name.split('-')[0]} for {system.name}.")
        annotations: dict[str, Any] = {
            "github.com/project-slug": repo,
            "backstage.io/source-location": f"url:https://github.com/{repo}/tree/main/"
            f"services/{comp.name}/",
            "backstage.io/techdocs-ref": "dir:.",
        }
        if rng.random() < 0.3:
            annotations["placet.dev/tier"] = str(rng.choice((1, 1, 2, 3)))
        extra = [
            t for t, p in (("revenue-path", 0.05), ("regulated-data:pci", 0.02)) if rng.random() < p
        ]
        if rng.random() < 0.02:
            extra.append("regulated-data:pii")
        if extra:
            annotations["placet.dev/tags"] = ",".join(extra)
        comp.doc["metadata"].update(
            {
                "annotations": annotations,
                "tags": Flow(
                    rng.sample(LANGS, 1) + rng.sample(("grpc", "rest", "kafka", "web"), 1)
                ),
                "links": [
                    {
                        "url": f"https://grafana.example.com/d/{comp.name}",
                        "title": "Dashboard",
                        "icon": "dashboard",
                    }
                ],
            }
        )
        if rng.random() < 0.9:
            owner = self.ref(groups[team_of_system[comp.system]], "group", comp)
        elif rng.random() < 0.5:
            owner = self.ref(rng.choice(groups), "group", comp)
        else:
            owner = self.ref(rng.choice(users), "group", comp)  # owner: default kind group
        spec: dict[str, Any] = {
            "type": _pick(rng, COMPONENT_TYPES),
            "lifecycle": rng.choice(("production", "production", "production", "experimental")),
            "owner": owner,
            "system": self.ref(system, "system", comp),
        }
        depends: list[str] = []
        seen = {id(comp)}
        for _ in range(_count(rng, (0.2, 0.25, 0.2, 0.15, 0.1, 0.05, 0.03, 0.02))):
            if rng.random() < DANGLING_SHARE:
                depends.append(self.missing("component"))
                continue
            own_resources = resources_of.get(comp.system)
            if own_resources and rng.random() < 0.3:
                target: Ent = rng.choice(own_resources)
            else:
                pool = local_component[comp.system] if rng.random() < 0.75 else any_component
                target = pool.draw(rng)
            if id(target) in seen:
                continue
            seen.add(id(target))
            depends.append(self.ref(target, "component", comp))
        if depends or rng.random() < 0.5:
            spec["dependsOn"] = depends
        if provides:
            spec["providesApis"] = [self.ref(a, "api", comp) for a in provides]
        consumes: list[str] = []
        for _ in range(_count(rng, (0.3, 0.3, 0.2, 0.1, 0.05, 0.05))):
            if rng.random() < DANGLING_SHARE:
                consumes.append(self.missing("api"))
                continue
            api = any_api.draw(rng)
            if id(api) not in seen and api not in provides:
                seen.add(id(api))
                consumes.append(self.ref(api, "api", comp))
        if consumes:
            spec["consumesApis"] = Flow(consumes) if len(consumes) <= 2 else consumes
        comp.doc["spec"] = spec


def _definition(kind: str, name: str) -> str:
    if kind == "grpc":
        service = "".join(w.title() for w in name.split("-")[:2])
        return (
            'syntax = "proto3";\n'
            f"package acme.{name.split('-')[0]}.v1;\n"
            f"service {service} {{\n"
            f"  rpc Get(Get{service}Request) returns (Get{service}Response);\n"
            f"  rpc List(List{service}Request) returns (List{service}Response);\n"
            "}\n"
        )
    if kind == "graphql":
        return "type Query {\n  item(id: ID!): Item\n}\ntype Item {\n  id: ID!\n  name: String\n}\n"
    spec = "asyncapi: 2.6.0" if kind == "asyncapi" else "openapi: 3.0.3"
    return (
        f"{spec}\ninfo:\n  title: {name}\n  version: 1.4.0\npaths:\n"
        f"  /v1/{name.split('-')[0]}:\n    get:\n      summary: List\n"
        "      responses:\n        '200':\n          description: OK\n"
    )


def _location(name: str, targets: Sequence[str], description: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Location",
        "metadata": {"name": name, "description": description},
        "spec": {"targets": list(targets)},
    }


def generate(directory: Path, n: int, layout: str, seed: int) -> Catalog:
    """Write an ``n``-entity catalog in ``layout`` under ``directory``; its root Location."""
    builder = _Builder(n, seed)
    org, system_entities = builder.build()
    files: dict[Path, list[dict[str, Any]]] = {}
    root_targets: list[str] = []
    names = [e.name for e in system_entities if e.kind == "System"]
    by_system: dict[str, list[Ent]] = {}
    for e in system_entities:
        if e.kind == "System":
            by_system[e.name] = [e]
        else:
            assert e.system is not None
            by_system[names[e.system]].append(e)
    if layout == "grouped":
        for start in range(0, len(org), ORG_PER_FILE):
            path = f"org/org-{start // ORG_PER_FILE:03d}.yaml"
            files[directory / path] = [e.doc for e in org[start : start + ORG_PER_FILE]]
            root_targets.append(f"./{path}")
        for system, members in by_system.items():
            path = f"systems/{system}.yaml"
            files[directory / path] = [e.doc for e in members]
            root_targets.append(f"./{path}")
    elif layout == "per-entity":
        kinds = {"Domain": "domains", "Group": "groups", "User": "users"}
        for e in org:
            files[directory / "org" / kinds[e.kind] / f"{e.name}.yaml"] = [e.doc]
        files[directory / "org" / "catalog-info.yaml"] = [
            _location("org", [f"./{k}/*.yaml" for k in kinds.values()], "The organisation")
        ]
        root_targets.append("./org/catalog-info.yaml")
        for system, members in by_system.items():
            entity_files = [f"{e.ref_kind}-{e.name}.yaml" for e in members]
            for e, file in zip(members, entity_files, strict=True):
                files[directory / "systems" / system / file] = [e.doc]
            files[directory / "systems" / system / "catalog-info.yaml"] = [
                _location(system, [f"./{f}" for f in entity_files], f"System {system}")
            ]
            root_targets.append(f"./systems/{system}/catalog-info.yaml")
    else:
        raise SystemExit(f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    root = directory / "catalog-info.yaml"
    files[root] = [_location("acme-catalog", root_targets, "Every entity of Acme")]
    total = 0
    made: set[Path] = set()
    for written, docs in files.items():
        if written.parent not in made:
            written.parent.mkdir(parents=True, exist_ok=True)
            made.add(written.parent)
        text = to_yaml(docs)
        total += len(text)
        written.write_text(text, encoding="utf-8")
    counts = {kind: 0 for kind in ("Component", "API", "Resource", "System", "Domain")}
    counts |= {"Group": 0, "User": 0}
    for e in (*org, *system_entities):
        counts[e.kind] += 1
    return Catalog(root, directory, len(files), counts, dict(builder.refs), total)


# ---- measuring -----------------------------------------------------------------------------


# (wall-clock seconds, CPU seconds): on a shared machine the CPU time is the steadier figure.
Sample = tuple[float, float]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Callable[[], T], child: bool = False) -> tuple[Sample, T]:
    """Wall and CPU seconds taken by ``fn()`` (CPU of this process, or of the child
    processes it waited for when ``child``), and its value."""
    cpu = _children_cpu if child else time.process_time
    begin, begin_cpu = time.perf_counter(), cpu()
    value = fn()
    return (time.perf_counter() - begin, cpu() - begin_cpu), value


def repeated(
    fn: Callable[[], T], runs: int, before: Callable[[], None] | None = None
) -> tuple[list[Sample], T]:
    """``fn()`` ``runs`` times (``before()`` untimed ahead of each); the samples, last value."""
    samples: list[Sample] = []
    value: Any = None
    for _ in range(runs):
        if before is not None:
            before()
        gc.collect()
        sample, value = timed(fn)
        samples.append(sample)
    return samples, value


def figure(samples: Sequence[Sample]) -> dict[str, Any]:
    """Median, min and max wall seconds, median and min CPU seconds, and the wall median's
    ratio to the target."""
    wall = [w for w, _ in samples]
    cpu = [c for _, c in samples]
    median = statistics.median(wall)
    return {
        "median_s": round(median, 3),
        "min_s": round(min(wall), 3),
        "max_s": round(max(wall), 3),
        "cpu_median_s": round(statistics.median(cpu), 3),
        "cpu_min_s": round(min(cpu), 3),
        "runs": len(samples),
        "ratio": round(median / TARGET_S, 3),
    }


def _clear_ref_cache() -> None:
    # parse_ref keeps an LRU cache across calls in one process; a fresh import has none.
    backstage_catalog._parse_text_ref.cache_clear()


def in_process(catalog: Catalog, runs: int) -> tuple[dict[str, Any], tuple[int, int]]:
    """(a) the importer alone, and walk + detection; (b) merge, digest and GraphIndex."""
    parse_times, result = repeated(
        lambda: backstage.parse([catalog.root], "bench"), runs, _clear_ref_cache
    )
    plan_times, plan = repeated(lambda: registry.plan(registry.walk([catalog.directory])), runs)
    claimed = {name: len(files) for name, files in plan.by_importer.items()}
    every_times, _ = repeated(
        partial(backstage.parse, plan.by_importer.get(backstage.NAME, []), "bench"),
        runs,
        _clear_ref_cache,
    )
    merge_times: list[Sample] = []
    digest_times: list[Sample] = []
    index_times: list[Sample] = []
    graph: Any = None
    for _ in range(runs):
        gc.collect()
        sample, graph = timed(lambda: merge([result]))
        merge_times.append(sample)
        sample, _ = timed(partial(getattr, graph, "digest"))
        digest_times.append(sample)
        sample, _ = timed(partial(GraphIndex, graph))
        index_times.append(sample)
    totals = [
        (m[0] + d[0] + i[0], m[1] + d[1] + i[1])
        for m, d, i in zip(merge_times, digest_times, index_times, strict=True)
    ]
    out = {
        "importer": figure(parse_times)
        | {
            "nodes": len(result.nodes),
            "edges": len(result.edges),
            "warnings": len(result.warnings),
            "files_read": len(result.files),
        },
        "walk_and_detect": figure(plan_times)
        | {"claimed": claimed, "unclaimed": len(plan.unclaimed)},
        "importer_every_file": figure(every_times),
        "merge": figure(merge_times),
        "digest": figure(digest_times),
        "index": figure(index_times),
        "merge_digest_index": figure(totals)
        | {
            "nodes": len(graph.nodes),
            "edges": len(graph.edges),
            "conflicts": len(graph.conflicts),
            "warnings": len(graph.warnings),
        },
    }
    counts = len(graph.nodes), len(graph.edges)
    del graph, plan  # keep the heap (and so the GC's work) small from here on
    out["store_steps"] = store_steps(result, runs)
    return out, counts


def store_steps(result: ImportResult, runs: int) -> dict[str, dict[str, Any]]:
    """What ``GraphService`` does with an import result besides SQL, step by step: encode
    the facts, digest them, serialise them for the JSON column, read them back, decode,
    merge, digest the version, build its document again and serialise it for storage."""
    steps: dict[str, list[Sample]] = {}

    def step(name: str, fn: Callable[[], T]) -> T:
        sample, value = timed(fn)
        steps.setdefault(name, []).append(sample)
        return value

    for _ in range(runs):
        gc.collect()
        facts = step("result_to_json", lambda: [result_to_json(result)])
        step("digest_of(facts)", partial(digest_of, facts))
        text = step("json.dumps(facts)", partial(json.dumps, facts))
        back: list[dict[str, Any]] = step("json.loads(facts)", partial(json.loads, text))
        results = step("result_from_json", partial(_decode, back))
        graph = step("merge", partial(merge, results))
        step("graph.digest", partial(getattr, graph, "digest"))
        document = step("graph.as_document() again", graph.as_document)
        step("json.dumps(document)", partial(json.dumps, document))
    return {name: figure(times) for name, times in steps.items()}


def _decode(facts: list[dict[str, Any]]) -> list[ImportResult]:
    return [result_from_json(f) for f in facts]


class GcClock:
    """Time spent in CPython's cyclic garbage collector, per generation, while installed."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds[info["generation"]] += time.perf_counter() - self._began
            self.collections[info["generation"]] += 1

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self)


def service_import(catalog: Catalog, work: Path, runs: int, gc_on: bool) -> dict[str, Any]:
    """``GraphService.import_paths`` of the catalog directory, in process, fresh data dir;
    how long the cyclic GC ran meanwhile, or (``gc_on`` false) the import with it disabled."""
    samples = []
    clocks = []
    for run in range(runs):
        settings = load_settings(work / f"service-{int(gc_on)}-{run}")
        initialise(settings)
        plane = ControlPlane.open(settings)
        _clear_ref_cache()
        gc.collect()
        if not gc_on:
            gc.disable()
        try:
            with GcClock() as clock:
                sample, _ = timed(
                    partial(plane.graph.import_paths, [catalog.directory], source="bench")
                )
        finally:
            gc.enable()
        samples.append(sample)
        clocks.append(clock)
    out = figure(samples)
    if gc_on:
        out["gc_s"] = round(statistics.median(sum(c.seconds) for c in clocks), 3)
        out["gc_full_collections"] = statistics.median(c.collections[2] for c in clocks)
        out["gc_full_s"] = round(statistics.median(c.seconds[2] for c in clocks), 3)
    return out


def placet(*args: str) -> list[str]:
    """The command line of ``placet ARGS`` with this interpreter."""
    return [sys.executable, "-m", "placet", *args]


def run_cli(command: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def fresh_data_dir(work: Path, label: str) -> Path:
    """A data dir made by ``placet init`` (not timed)."""
    data_dir = work / label
    if data_dir.exists():
        shutil.rmtree(data_dir)
    run_cli(placet("init", "--data-dir", str(data_dir)))
    return data_dir


def cli_import(
    target: Path, work: Path, runs: int, counts: tuple[int, int], gc_on: bool = True
) -> dict[str, Any]:
    """(c) ``placet graph import TARGET`` as a process, each run into a fresh data dir; with
    ``gc_on`` false, the same process with the cyclic GC disabled before placet starts."""
    samples = []
    report: dict[str, Any] = {}
    for run in range(runs):
        data_dir = fresh_data_dir(work, f"cli-{run}")
        args = ["graph", "import", str(target), "--source", "bench"]
        args += ["--data-dir", str(data_dir), "--json"]
        command = placet(*args) if gc_on else [sys.executable, "-c", GC_OFF, *args]
        sample, done = timed(partial(run_cli, command), child=True)
        samples.append(sample)
        report = json.loads(done.stdout)
        if (report["nodes"], report["edges"]) != counts:
            raise RuntimeError(
                f"CLI imported {report['nodes']} nodes / {report['edges']} edges; "
                f"in process: {counts[0]} / {counts[1]}"
            )
        shutil.rmtree(data_dir)
    return figure(samples) | {
        "nodes": report["nodes"],
        "edges": report["edges"],
        "warnings": len(report["warnings"]),
        "files": report["files"],
        "version_created": report["version"]["created"],
    }


def startup(runs: int) -> dict[str, Any]:
    """A process that only imports what ``placet graph import`` imports before reading."""
    command = [sys.executable, "-c", STARTUP]
    return figure([timed(partial(run_cli, command), child=True)[0] for _ in range(runs)])


def profile_cli(target: Path, work: Path, out: Path, top: int) -> dict[str, Any]:
    """One CLI import under cProfile: the top functions by own time, and placet's functions
    by cumulative time (the entry point's wrappers left out)."""
    data_dir = fresh_data_dir(work, "profiled")
    command = [
        *(sys.executable, "-m", "cProfile", "-o", str(out), "-m", "placet"),
        *("graph", "import", str(target), "--source", "bench", "--data-dir", str(data_dir)),
        "--json",
    ]
    (seconds, cpu), _ = timed(lambda: run_cli(command), child=True)
    stats = pstats.Stats(str(out))
    total = stats.total_tt  # type: ignore[attr-defined]
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]

    def rows(column: int, placet_only: bool) -> list[dict[str, Any]]:
        items = [
            (func, values)
            for func, values in raw.items()
            if not placet_only or ("/placet/" in func[0] and not func[0].endswith(_WRAPPERS))
        ]
        ranked = sorted(items, key=lambda item: item[1][column], reverse=True)[:top]
        return [
            {
                "function": _where(func),
                "calls": values[1],
                "own_s": round(values[2], 3),
                "cumulative_s": round(values[3], 3),
            }
            for func, values in ranked
        ]

    return {
        "profiled_wall_s": round(seconds, 3),
        "profiled_process_cpu_s": round(cpu, 3),
        "profiled_cpu_s": round(total, 3),
        "by_own_time": rows(2, placet_only=False),
        "by_cumulative_time": rows(3, placet_only=True),
        "file": str(out),
    }


_WRAPPERS = ("placet/__main__.py", "placet/cli/main.py")


def _where(func: tuple[str, int, str]) -> str:
    file, line, name = func
    if file == "~":
        return name
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{file}:{line}({name})"


# ---- main --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entities", type=int, default=10_000, help="entities in the catalog")
    parser.add_argument(
        "--layouts", default=",".join(LAYOUTS), help=f"comma-separated, of {', '.join(LAYOUTS)}"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median kept)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="profile the CLI in any case")
    parser.add_argument("--no-profile", action="store_true", help="never profile")
    parser.add_argument("--top", type=int, default=25, help="functions listed per profile order")
    parser.add_argument("--keep", type=Path, help="write the catalogs here and keep them")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    say = (lambda _: None) if args.json else print
    layouts = [layout.strip() for layout in args.layouts.split(",") if layout.strip()]
    out: dict[str, Any] = {
        "entities": args.entities,
        "target_s": TARGET_S,
        "repeat": args.repeat,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_before": round(os.getloadavg()[0], 2),
        "layouts": {},
    }
    say(
        f"{args.entities} entities, layouts {', '.join(layouts)}, {args.repeat} runs per figure, "
        f"load {out['load_before']}"
    )
    with tempfile.TemporaryDirectory(prefix="placet-bench-import-") as tmp:
        base = args.keep or Path(tmp)
        for layout in layouts:
            directory = base / layout / "catalog"
            work = Path(tmp) / layout / "work"
            if directory.exists():
                shutil.rmtree(directory)
            work.mkdir(parents=True)
            (gen_s, _), catalog = timed(
                partial(generate, directory, args.entities, layout, args.seed)
            )
            result: dict[str, Any] = {
                "catalog": {
                    "files": catalog.files,
                    "bytes": catalog.bytes,
                    "entities": catalog.counts,
                    "refs": catalog.refs,
                    "generated_s": round(gen_s, 2),
                }
            }
            size = f"{catalog.files} files, {catalog.bytes / 1e6:.1f} MB"
            say(f"\n== {layout}: {size}, {catalog.counts}")
            say(f"   refs by form: {catalog.refs} (generated in {gen_s:.1f} s)")
            parts, counts = in_process(catalog, args.repeat)
            result |= parts
            result["service_import_dir"] = service_import(catalog, work, args.repeat, True)
            result["service_import_dir_gc_off"] = service_import(catalog, work, args.repeat, False)
            result["cli_root"] = cli_import(catalog.root, work, args.repeat, counts)
            result["cli_dir"] = cli_import(catalog.directory, work, args.repeat, counts)
            result["cli_dir_gc_off"] = cli_import(
                catalog.directory, work, args.repeat, counts, gc_on=False
            )
            result["cli_startup"] = startup(args.repeat)
            say(report(result))
            missed = max(result["cli_root"]["median_s"], result["cli_dir"]["median_s"]) > TARGET_S
            if args.profile or (missed and not args.no_profile):
                prof = profile_cli(catalog.directory, work, work / "import.prof", args.top)
                if args.keep:
                    kept = args.keep / f"{layout}.prof"
                    shutil.copy(prof["file"], kept)
                    prof["file"] = str(kept)
                result["profile"] = prof
                say(profile_text(prof))
            out["layouts"][layout] = result
    out["load_after"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"\nload after: {out['load_after']}")


def report(r: dict[str, Any]) -> str:
    """The figures of one layout as text, each with its ratio to the 10 s target."""
    imp, mdi = r["importer"], r["merge_digest_index"]
    head = f"   {'figure':<55} {'wall: median':>12} {'min':>7} {'CPU: median':>11} {'min':>7}"
    lines = [
        head + f" {'ratio':>6}",
        _row("(a) backstage.parse([root])", imp),
        f"       {imp['files_read']} files read, {imp['nodes']} nodes, {imp['edges']} edges, "
        f"{imp['warnings']} warnings",
        _row("    backstage.parse(every file of the directory)", r["importer_every_file"]),
        _row("    registry.walk + plan of the directory (detection)", r["walk_and_detect"]),
        _row("(b) merge + digest + GraphIndex", mdi),
        _row("      merge", r["merge"]),
        _row("      digest", r["digest"]),
        _row("      GraphIndex(graph)", r["index"]),
        f"       {mdi['nodes']} nodes, {mdi['edges']} edges, {mdi['conflicts']} conflicts, "
        f"{mdi['warnings']} warnings",
        _row("(c) placet graph import ROOT-LOCATION (process)", r["cli_root"]),
        _row("(c) placet graph import DIRECTORY (process)", r["cli_dir"]),
        _row("    the same with the GC disabled before placet starts", r["cli_dir_gc_off"]),
        _row("    process start + the CLI's imports alone", r["cli_startup"]),
        _row("    GraphService.import_paths(DIRECTORY), in process", r["service_import_dir"]),
        f"       of which in the cyclic GC: {r['service_import_dir']['gc_s']:.3f} s "
        f"({r['service_import_dir']['gc_full_collections']:g} full collections: "
        f"{r['service_import_dir']['gc_full_s']:.3f} s)",
        _row("    the same with the GC disabled (gc.disable())", r["service_import_dir_gc_off"]),
        "   GraphService.import_paths(DIRECTORY) step by step (in process, no SQL):",
        _row("      registry.walk + plan", r["walk_and_detect"]),
        _row("      backstage.parse(every file)", r["importer_every_file"]),
    ]
    lines.extend(_row(f"      {name}", f) for name, f in r["store_steps"].items())
    lines.append(f"       the rest (SQLite, SQLAlchemy), approximately: {other_s(r):.3f} s CPU")
    return "\n".join(lines)


def other_s(r: dict[str, Any]) -> float:
    """The in-process import's CPU median less its steps' CPU medians: SQLite, SQLAlchemy and
    what is not timed separately. Approximate: on a shared machine each median moves by 10 to
    20% from run to run, and this is a difference of sums."""
    steps = r["walk_and_detect"]["cpu_median_s"] + r["importer_every_file"]["cpu_median_s"]
    steps += sum(f["cpu_median_s"] for f in r["store_steps"].values())
    return float(r["service_import_dir"]["cpu_median_s"] - steps)


def _row(label: str, f: dict[str, Any]) -> str:
    return (
        f"   {label:<55} {f['median_s']:>11.3f}s {f['min_s']:>6.3f}s {f['cpu_median_s']:>10.3f}s "
        f"{f['cpu_min_s']:>6.3f}s {f['ratio']:>6.3f}"
    )


def profile_text(prof: dict[str, Any]) -> str:
    """The profile's top functions as text."""
    buf = io.StringIO()
    buf.write(
        f"\n   cProfile of one CLI import of the directory: {prof['profiled_wall_s']} s wall and "
        f"{prof['profiled_process_cpu_s']} s CPU under the profiler, {prof['profiled_cpu_s']} s "
        f"profiled ({prof['file']})\n"
    )
    titles = ("own time", "by_own_time"), ("cumulative time, placet", "by_cumulative_time")
    for title, key in titles:
        buf.write(f"   by {title} (own s, cumulative s, calls, function):\n")
        for row in prof[key]:
            buf.write(
                f"   {row['own_s']:>8.3f} {row['cumulative_s']:>8.3f} {row['calls']:>9} "
                f"{row['function']}\n"
            )
    return buf.getvalue()


if __name__ == "__main__":
    main()
