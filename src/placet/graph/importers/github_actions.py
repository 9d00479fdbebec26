"""GitHub Actions workflows -> ``pipeline`` nodes and ``deploys`` edges to what they ship.

One node per workflow file: ``node_id(PIPELINE, <file stem>)`` (``pipeline:ci-main``),
named by the workflow's ``name``. Attributes: ``triggers`` (each ``on`` event with its
filters), ``trigger_paths`` / ``trigger_paths_ignore`` (the ``paths`` / ``paths-ignore``
of push and pull_request events) and ``jobs`` (per job: needs, environment, what it builds,
deploys and which ``src/<service>`` directories it touches).

``deploys`` edges (pipeline -> ``node_id(SERVICE, name)``; the service nodes come from other
sources) are inferred conservatively from ``run`` commands, after expanding
``${{ matrix.X }}`` with the job's matrix values and ``$VAR`` with the words of a shell
``for VAR in ...`` loop:

- direct: ``docker|podman [buildx] build`` naming ``src/<svc>`` (else the ``-t`` image's
  last path segment), ``docker/build-push-action`` with a ``src/<svc>`` context/file,
  ``skaffold run|deploy|build|dev -m <svc>[,<svc>]``, ``kubectl set image|rollout restart
  deployment/<svc>``, ``gcloud run deploy <svc>``;
- whole-application: ``skaffold`` without ``-m``, ``kubectl apply|create -f|-k <path>``
  (not ``-f -``), ``helm upgrade|install``. What these ship is in files this import does not
  read, so the targets are inferred from the same job's ``deployment/<name>`` (statefulset,
  daemonset) references (e.g. ``kubectl wait``) and from ``src/<svc>`` trigger paths;
  such edges carry ``inferred: true`` and a warning says what was inferred from what.
  When nothing names a target, a warning says so and no edge is made.

Paths under ``src/<svc>/`` in test commands are recorded (``jobs.*.source_dirs``) but are
not deploys.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from placet.graph.errors import GraphInputError
from placet.graph.importers.yamllines import MarkedList, MarkedMap, load_documents, plain
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

NAME = "github_actions"

_DETECT_ON = re.compile(r"^(?:on|\"on\"|'on'|true)\s*:", re.MULTILINE)
_DETECT_JOBS = re.compile(r"^jobs\s*:", re.MULTILINE)
_SRC = re.compile(r"(?<![\w./$-])(?:\./)?src/([A-Za-z0-9][\w.-]*)")
_DOCKER_BUILD = re.compile(r"\b(?:docker|podman)\s+(?:buildx\s+)?build\b")
_TAG = re.compile(r"(?:-t|--tag)[=\s]+['\"]?([^\s'\"]+)")
_SKAFFOLD = re.compile(r"\bskaffold\s+(run|deploy|build|dev|apply)\b(.*)")
_MODULE = re.compile(r"(?:-m|--module)[=\s]+['\"]?([\w.,-]+)")
_KUBECTL_DIRECT = re.compile(
    r"\bkubectl\b.*\b(?:set\s+image|rollout\s+restart)\s+"
    r"(?:deployment|deploy|statefulset|sts|daemonset|ds)[/\s]+([a-z0-9][a-z0-9.-]*)"
)
_KUBECTL_APPLY = re.compile(r"\bkubectl\s+(?:apply|create|replace)\b(.*)")
_FILES = re.compile(r"(?:-f|--filename|-k|--kustomize)[=\s]")
_STDIN = re.compile(r"(?:-f|--filename)[=\s]+-(?:\s|$)")
_HELM = re.compile(r"\bhelm\s+(?:upgrade|install)\b")
_CLOUD_RUN = re.compile(r"\bgcloud\s+run\s+deploy\s+([a-z0-9][a-z0-9-]*)")
_WORKLOAD_REF = re.compile(
    r"\b(?:deployment|deploy|statefulset|sts|daemonset|ds)/([a-z0-9][a-z0-9.-]*)"
)
_MATRIX = re.compile(r"\$\{\{\s*matrix\.([\w-]+)\s*\}\}")
_FOR = re.compile(r"\bfor\s+(\w+)\s+in\s+([^;\n]+?)\s*(?:;|\n)\s*do\b")
_PUSH_EVENTS = ("push", "pull_request", "pull_request_target")


def detect(path: Path, text: str) -> bool:
    """A top-level ``on:`` key and a top-level ``jobs:`` key."""
    return _DETECT_ON.search(text) is not None and _DETECT_JOBS.search(text) is not None


def parse(files: Sequence[Path], source: str) -> ImportResult:
    """One pipeline node per workflow file, with its (inferred) deploys edges."""
    nodes: list[NodeFact] = []
    edges: list[EdgeFact] = []
    warnings: list[ImportWarning] = []
    for file in files:
        workflow = _Workflow(file, source)
        nodes.append(workflow.read())
        edges.extend(workflow.edges())
        warnings.extend(workflow.warnings)
    return ImportResult(
        importer=NAME,
        nodes=tuple(nodes),
        edges=tuple(edges),
        warnings=tuple(warnings),
        files=tuple(map(str, files)),
    )


@dataclass(slots=True)
class _Target:
    """What one workflow ships to one service, and the evidence."""

    line: int
    jobs: list[str] = field(default_factory=list)
    how: list[str] = field(default_factory=list)
    inferred: bool = True
    environments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Workflow:
    file: Path
    source: str
    id: str = ""
    targets: dict[str, _Target] = field(default_factory=dict)
    warnings: list[ImportWarning] = field(default_factory=list)

    def read(self) -> NodeFact:
        documents = [d for d in load_documents(self.file) if d[0] is not None]
        if len(documents) != 1 or not isinstance(documents[0][0], MarkedMap):
            raise GraphInputError(str(self.file), "a workflow must be one YAML mapping")
        doc, line = documents[0]
        jobs = doc.get("jobs")
        if not isinstance(jobs, MarkedMap):
            raise GraphInputError(str(self.file), "workflow has no jobs mapping", line)
        self.id = node_id(NodeKind.PIPELINE, self.file.stem)
        name = doc.get("name")
        triggers = _triggers(doc.get("on", doc.get(True)))
        trigger_paths = _collect(triggers, "paths")
        job_attributes = {
            str(job_id): self._job(str(job_id), job, jobs.line_of(job_id), trigger_paths)
            for job_id, job in jobs.items()
        }
        parts = self.file.parts
        source_paths: tuple[str, ...] = ()
        if ".github" in parts:
            source_paths = ("/".join(parts[parts.index(".github") :]),)
        return NodeFact(
            id=self.id,
            kind=NodeKind.PIPELINE,
            provenance=Provenance(self.source, NAME, str(self.file), line),
            name=name if isinstance(name, str) else self.file.stem,
            source_paths=source_paths,
            attributes={
                "workflow": name if isinstance(name, str) else None,
                "file": self.file.name,
                "triggers": triggers,
                "trigger_paths": trigger_paths,
                "trigger_paths_ignore": _collect(triggers, "paths-ignore"),
                "jobs": job_attributes,
            },
        )

    def edges(self) -> Iterator[EdgeFact]:
        for service, target in self.targets.items():
            attributes = {
                "jobs": target.jobs,
                "how": target.how,
                "inferred": target.inferred,
                "environments": target.environments,
            }
            prov = Provenance(self.source, NAME, str(self.file), target.line)
            yield EdgeFact(self.id, service, EdgeKind.DEPLOYS, prov, attributes)

    def _job(self, job_id: str, job: Any, line: int, trigger_paths: list[str]) -> dict[str, Any]:
        if not isinstance(job, MarkedMap):
            raise GraphInputError(str(self.file), f"job {job_id} is not a mapping", line)
        if isinstance(job.get("uses"), str):
            message = f"job {job_id} calls workflow {job['uses']}; not followed"
            self.warnings.append(ImportWarning(str(self.file), job.line_of("uses"), message))
        environment = job.get("environment")
        if isinstance(environment, dict):
            environment = environment.get("name")
        env = [str(environment)] if environment else []
        direct: dict[str, tuple[int, str]] = {}
        whole: list[tuple[int, str]] = []
        refs: dict[str, int] = {}
        source_dirs: set[str] = set()
        for command, at in _commands(job):
            source_dirs.update(_SRC.findall(command))
            for name in _WORKLOAD_REF.findall(command) if "kubectl" in command else ():
                refs.setdefault(name, at)
            found, everything = _shipped(command)
            for service in found:
                direct.setdefault(service, (at, command.strip()))
            if everything:
                whole.append((at, everything))
        for service, (at, command) in direct.items():
            self._add(service, at, job_id, command, False, env)
        if whole:
            self._infer(job_id, whole, refs, trigger_paths, env)
        needs = job.get("needs", [])
        return {
            "name": job.get("name") if isinstance(job.get("name"), str) else None,
            "needs": [needs] if isinstance(needs, str) else plain(needs),
            "environment": env[0] if env else None,
            "deploys": sorted(s for s, t in self.targets.items() if job_id in t.jobs),
            "source_dirs": sorted(source_dirs),
        }

    def _infer(
        self,
        job_id: str,
        whole: list[tuple[int, str]],
        refs: dict[str, int],
        trigger_paths: list[str],
        env: list[str],
    ) -> None:
        at, what = whole[0]
        from_paths = {m for p in trigger_paths for m in _SRC.findall(p)}
        inferred = dict.fromkeys(sorted(refs)) | dict.fromkeys(sorted(from_paths - set(refs)))
        where = f"job {job_id}: {what} (line {at}) deploys what files this import does not read"
        if not inferred:
            message = f"{where} list; no deployment/<name> reference or src/ trigger path names "
            self.warnings.append(ImportWarning(str(self.file), at, message + "it: no edge"))
            return
        basis = []
        if refs:
            basis.append(f"{len(refs)} deployment/<name> references in the job")
        if from_paths:
            basis.append(f"src/<service> trigger paths ({', '.join(sorted(from_paths))})")
        message = f"{where} list; targets inferred from {' and '.join(basis)}: "
        self.warnings.append(ImportWarning(str(self.file), at, message + ", ".join(inferred)))
        for service in inferred:
            named = f"deployment/{service} (line {refs[service]})" if service in refs else ""
            named = named or f"trigger path src/{service}"
            self._add(
                service, at, job_id, f"inferred: {what} (line {at}), named by {named}", True, env
            )

    def _add(
        self, service: str, at: int, job_id: str, how: str, inferred: bool, env: list[str]
    ) -> None:
        target = self.targets.setdefault(node_id(NodeKind.SERVICE, service), _Target(at))
        if job_id not in target.jobs:
            target.jobs.append(job_id)
        if how not in target.how:
            target.how.append(how)
        target.inferred = target.inferred and inferred
        target.environments.extend(e for e in env if e not in target.environments)


def _shipped(command: str) -> tuple[list[str], str]:
    """Services a command builds/deploys by name, and what it ships wholesale (or "")."""
    found: list[str] = []
    if _DOCKER_BUILD.search(command):
        named = _SRC.findall(command)
        tag = _TAG.search(command)
        if not named and tag and "$" not in tag[1]:
            named = [tag[1].rsplit("/", 1)[-1].split(":")[0].split("@")[0]]
        found.extend(named)
    if match := _SKAFFOLD.search(command):
        modules = _MODULE.search(match[2])
        if modules is None:
            return found, f"skaffold {match[1]} without --module"
        found.extend(m for m in modules[1].split(",") if m)
    if match := _KUBECTL_DIRECT.search(command):
        found.append(match[1])
    if match := _CLOUD_RUN.search(command):
        found.append(match[1])
    match = _KUBECTL_APPLY.search(command)
    if match and _FILES.search(match[1]) and not _STDIN.search(match[1] + " "):
        return found, "kubectl " + command.split("kubectl", 1)[1].strip()
    if _HELM.search(command):
        return found, "helm " + command.split("helm", 1)[1].strip()
    return found, ""


def _commands(job: MarkedMap) -> Iterator[tuple[str, int]]:
    """Each command line of the job's steps (expanded), with its line in the file."""
    matrix = _matrix(job.get("strategy"))
    steps = job.get("steps")
    for step in steps if isinstance(steps, MarkedList) else ():
        if not isinstance(step, MarkedMap):
            continue
        run = step.get("run")
        if isinstance(run, str):
            loops = {var: _words(words) for var, words in _FOR.findall(run)}
            first = step.line_of("run") + (1 if "\n" in run.rstrip("\n") else 0)
            for offset, text in enumerate(run.splitlines()):
                for variant in _expand(text, matrix, loops):
                    yield variant, first + offset
        uses, with_ = step.get("uses"), step.get("with")
        if isinstance(uses, str) and "build-push-action" in uses and isinstance(with_, dict):
            text = " ".join(str(with_.get(k, "")) for k in ("context", "file"))
            for variant in _expand(text, matrix, {}):
                if _SRC.search(variant):
                    yield f"docker build {variant}", step.line_of("uses")


def _expand(text: str, matrix: dict[str, list[str]], loops: dict[str, list[str]]) -> list[str]:
    """``text`` once per combination of the matrix / loop values it mentions."""
    keys = sorted(set(_MATRIX.findall(text)) & set(matrix))
    variables = [v for v in loops if re.search(rf"\$\{{?{v}\b", text)]
    if not keys and not variables:
        return [text]
    variants = []
    choices = [matrix[k] for k in keys] + [loops[v] for v in variables]
    for combo in itertools.islice(itertools.product(*choices), 256):
        expanded = text
        for key, value in zip(keys, combo, strict=False):
            expanded = re.sub(rf"\$\{{\{{\s*matrix\.{key}\s*\}}\}}", value, expanded)
        for var, value in zip(variables, combo[len(keys) :], strict=True):
            expanded = re.sub(rf"\$\{{?{var}\b\}}?", value, expanded)
        variants.append(expanded)
    return variants


def _matrix(strategy: Any) -> dict[str, list[str]]:
    matrix = strategy.get("matrix") if isinstance(strategy, dict) else None
    values: dict[str, list[str]] = {}
    if not isinstance(matrix, dict):
        return values
    for key, items in matrix.items():
        if isinstance(items, list) and key not in ("include", "exclude"):
            values[str(key)] = [str(i) for i in items if isinstance(i, str | int)]
    for extra in matrix.get("include") or ():
        for key, item in extra.items() if isinstance(extra, dict) else ():
            if isinstance(item, str | int) and str(item) not in values.setdefault(str(key), []):
                values[str(key)].append(str(item))
    return values


def _words(words: str) -> list[str]:
    return [w.strip("\"'") for w in words.split() if w.strip("\"'")]


def _triggers(on: Any) -> dict[str, Any]:
    if isinstance(on, str):
        return {on: {}}
    if isinstance(on, list):
        return {str(event): {} for event in on}
    if isinstance(on, dict):
        return {str(event): plain(config) or {} for event, config in on.items()}
    return {}


def _collect(triggers: dict[str, Any], key: str) -> list[str]:
    found: dict[str, None] = {}
    for event in _PUSH_EVENTS:
        config = triggers.get(event)
        values = config.get(key) if isinstance(config, dict) else None
        found.update(dict.fromkeys(str(v) for v in values or ()))
    return list(found)
