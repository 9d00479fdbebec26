"""Policy bundles: a directory of ``.rego`` files, its digest, compiled once at load.

The bundle digest is the SHA-256 (hex) of the RFC 8785 canonical JSON of
``{relative posix path: sha256 hex of the file's bytes}``; every decision records it, so
an auditor can tell exactly which policy said allow, require_approval or deny. Files named
``*_test.rego`` hold the bundle's unit tests (see :mod:`placet.policy.testing`): they are
not part of what decides, so they are neither compiled for decisions nor in the digest.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from placet.domain.canonical import digest_of, sha256_hex
from placet.domain.lifecycle import Decision
from placet.policy.engine import DEFAULT_TIMEOUT_SECONDS, Engine, decision_from
from placet.policy.errors import PolicyError
from placet.policy.input import sample_input
from placet.policy.memo import DecisionMemo, remembers
from placet.policy.references import Paths
from placet.policy.regocpp import Answer, Module

POLICY_DIR_ENV = "PLACET_POLICY_DIR"
DEFAULT_BUNDLE_NAME = "default"
SUFFIX = ".rego"
TEST_SUFFIX = "_test.rego"


def bundle_digest(files: Mapping[str, bytes]) -> str:
    """The digest of a bundle whose files are ``{relative posix path: bytes}``."""
    return digest_of({path: sha256_hex(data) for path, data in files.items()})


def is_test_file(name: str) -> bool:
    """Whether a bundle file holds unit tests (``*_test.rego``) rather than policy."""
    return name.endswith(TEST_SUFFIX)


def _read_tree(root: Traversable, prefix: str, found: dict[str, bytes], tests: bool) -> None:
    for entry in root.iterdir():
        relative = f"{prefix}{entry.name}"
        if entry.is_dir():
            _read_tree(entry, f"{relative}/", found, tests)
        elif (
            entry.name.endswith(SUFFIX)
            and entry.is_file()
            and (tests or not is_test_file(entry.name))
        ):
            found[relative] = entry.read_bytes()


def read_rego_files(root: Traversable, origin: str, *, tests: bool = False) -> dict[str, bytes]:
    """Every ``.rego`` file under ``root`` (recursively), sorted by relative posix path;
    ``*_test.rego`` files only when ``tests`` is true."""
    if not root.is_dir():
        problem = "is not a directory" if root.is_file() else "does not exist"
        raise PolicyError(f"policy bundle directory {origin} {problem}")
    found: dict[str, bytes] = {}
    try:
        _read_tree(root, "", found, tests)
    except OSError as exc:
        raise PolicyError(f"policy bundle directory {origin} cannot be read: {exc}") from None
    if not found:
        raise PolicyError(f"policy bundle directory {origin} has no {SUFFIX} files")
    return dict(sorted(found.items()))


class PolicyBundle:
    """A loaded, compiled bundle: its name, digest and files, and ``evaluate``.

    Build one with :meth:`load` (a directory), :meth:`from_files` (in-memory sources) or
    :func:`default_bundle`. Safe to share between threads. ``timeout`` bounds each
    evaluation in seconds (None: no limit); past it, evaluation raises PolicyError.
    """

    def __init__(
        self,
        name: str,
        files: Mapping[str, bytes],
        origin: str,
        timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.name = name
        self.origin = origin
        self.digest = bundle_digest(files)
        self.files: Mapping[str, str] = MappingProxyType(
            {path: sha256_hex(data) for path, data in files.items()}
        )
        self._label = f"policy bundle {name!r}"
        modules = []
        for path, data in files.items():
            where = f"{origin}/{path}"
            try:
                source = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise PolicyError(f"{where}: not UTF-8 text ({exc.reason})") from None
            modules.append(Module(name=path, source=source, origin=where))
        self._engine = Engine(modules, self._label, timeout)
        self._smoke_test()
        paths = self._engine.input_paths
        self._memo = DecisionMemo() if remembers(paths, self._engine.sources) else None

    @classmethod
    def load(
        cls,
        directory: Path,
        name: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    ) -> PolicyBundle:
        """Read and compile every ``.rego`` file under ``directory`` but the tests; ``name``
        defaults to the directory's name. Raises PolicyError naming the file and problem."""
        path = Path(directory)
        files = read_rego_files(path, str(path))
        return cls(name or path.resolve().name, files, str(path), timeout)

    @classmethod
    def from_files(
        cls,
        files: Mapping[str, str | bytes],
        name: str,
        origin: str = "<memory>",
        timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    ) -> PolicyBundle:
        """A bundle from ``{relative posix path: source}``, e.g. for tests and tools
        (``*_test.rego`` entries are left out, as when loading a directory)."""
        files = {path: text for path, text in files.items() if not is_test_file(path)}
        if not files:
            raise PolicyError(f"policy bundle {name!r} has no {SUFFIX} files")
        data = {
            path: text.encode() if isinstance(text, str) else bytes(text)
            for path, text in sorted(files.items())
        }
        return cls(name, data, origin, timeout)

    def _smoke_test(self) -> None:
        # rego-cpp reports some mistakes (an unknown function, recursion) only when a rule
        # runs. Evaluating a representative proposal once at load surfaces them now,
        # instead of on the first real proposal. An undefined or odd decision for the
        # sample is not an error here: the sample may simply not be what the policy expects.
        try:
            self._engine.query(sample_input())
        except PolicyError as exc:
            raise PolicyError(f"{exc} (found by evaluating a sample proposal at load)") from None

    @property
    def timeout(self) -> float | None:
        """The time limit of one evaluation in seconds (None: no limit)."""
        return self._engine.timeout

    @property
    def sessions(self) -> int:
        """How many compiled engine sessions exist (one per concurrently evaluating thread)."""
        return self._engine.sessions

    @property
    def input_paths(self) -> Paths | None:
        """The input subtrees this bundle's code mentions (only those reach the engine);
        None when it mentions ``input`` as a whole."""
        return self._engine.input_paths

    @property
    def remembers_decisions(self) -> bool:
        """Whether decisions are remembered per readable input (see :mod:`placet.policy.memo`)."""
        return self._memo is not None

    def query(self, input_document: Mapping[str, Any]) -> Answer:
        """The raw value of ``data.placet.decision`` for ``input_document``, unchecked."""
        return self._query_pruned(self._engine.prune(input_document))

    def _query_pruned(self, pruned: Mapping[str, Any]) -> Answer:
        try:
            return self._engine.query_pruned(pruned)
        except PolicyError:
            raise
        except Exception as exc:  # fail closed on anything the engine binding raises
            raise PolicyError(f"{self._label}: the policy engine failed: {exc!r}") from exc

    def decide(self, answer: Answer) -> Decision:
        """The Decision an answer of this bundle stands for (PolicyError when malformed)."""
        return decision_from(answer, self.digest, self._label)

    def evaluate(self, input_document: Mapping[str, Any]) -> Decision:
        """Decide on ``input_document`` (see :func:`placet.policy.input.build_input`).

        Returns a Decision carrying this bundle's digest; raises PolicyError on any engine
        error or malformed decision, so the caller fails closed.
        """
        pruned = self._engine.prune(input_document)
        memo = self._memo
        key = memo.key(pruned) if memo is not None else None
        if memo is not None and key is not None:
            remembered = memo.get(key)
            if remembered is not None:
                return remembered
        decision = decision_from(self._query_pruned(pruned), self.digest, self._label)
        if memo is not None and key is not None:
            memo.put(key, decision)
        return decision

    def __repr__(self) -> str:
        return f"PolicyBundle(name={self.name!r}, digest={self.digest!r}, files={len(self.files)})"


def default_bundle_files() -> Traversable:
    """Where the packaged default bundle lives (works from a wheel or a source checkout)."""
    return resources.files("placet.policy").joinpath("policies", DEFAULT_BUNDLE_NAME)


@functools.cache
def default_bundle() -> PolicyBundle:
    """The packaged default bundle, loaded and compiled once per process."""
    root = default_bundle_files()
    files = read_rego_files(root, str(root))
    return PolicyBundle(DEFAULT_BUNDLE_NAME, files, str(root))


def configured_bundle(
    directory: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> PolicyBundle:
    """The bundle a server should use: ``directory`` if given (``placet serve --policy``),
    else ``$PLACET_POLICY_DIR`` if set and non-empty, else the packaged default."""
    if directory is None:
        directory = (os.environ if environ is None else environ).get(POLICY_DIR_ENV) or None
    if directory is None:
        return default_bundle()
    return PolicyBundle.load(Path(directory))
