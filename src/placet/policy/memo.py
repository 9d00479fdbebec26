"""Remembered decisions: a policy gives the same decision for the same input, so ask once.

A bundle's decision depends only on the parts of the input it reads (see
:mod:`placet.policy.references`), so proposals that agree on those parts, say the same
kind in the same environment, share a decision. Nothing is remembered for a bundle that
reads a part unique to each proposal (``now``, ``proposal.id``, ``proposal.digest``), or
that calls a builtin whose answer changes between calls (the time, randomness, the
network, the process environment). Errors are never remembered.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from placet.domain.lifecycle import Decision
from placet.policy.references import Paths, code_only

UNIQUE_FIELDS: tuple[tuple[str, ...], ...] = (("now",), ("proposal", "id"), ("proposal", "digest"))
_VOLATILE = re.compile(
    r"(?<![A-Za-z0-9_.])"
    r"(time\.now_ns|rand\.intn|uuid\.rfc4122|http\.send|opa\.runtime|net\.lookup_ip_addr)"
    r"(?![A-Za-z0-9_])"
)
DEFAULT_SIZE = 1024


def remembers(paths: Paths | None, sources: Iterable[str]) -> bool:
    """Whether a bundle reading ``paths`` with these sources gives repeatable decisions."""
    if paths is None:
        return False
    for path in paths:
        for unique in UNIQUE_FIELDS:
            if unique[: len(path)] == path:
                return False
    return not any(_VOLATILE.search(code_only(source)) for source in sources)


class _Unkeyable(Exception):
    """A value that has no exact key (the engine will report it)."""


def _freeze(value: Any) -> Any:
    # An exact, hashable image of a JSON value: types are tagged so True, 1 and 1.0 differ.
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int):
        return ("i", value)
    if isinstance(value, float):
        return ("f", value)
    if value is None:
        return ("n",)
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Unkeyable
            items.append((key, _freeze(item)))
        return ("o", tuple(sorted(items)))
    if isinstance(value, list | tuple):
        return ("a", tuple(_freeze(item) for item in value))
    raise _Unkeyable


class DecisionMemo:
    """The most recently used decisions of one bundle, by the input they were made for."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._decisions: OrderedDict[Any, Decision] = OrderedDict()

    def __len__(self) -> int:
        return len(self._decisions)

    def key(self, pruned: Mapping[str, Any]) -> Any | None:
        """The key for a pruned input document, or None when it cannot have one."""
        try:
            return _freeze(pruned)
        except _Unkeyable:
            return None

    def get(self, key: Any) -> Decision | None:
        """The decision remembered for ``key``, if any."""
        with self._lock:
            decision = self._decisions.get(key)
            if decision is not None:
                self._decisions.move_to_end(key)
            return decision

    def put(self, key: Any, decision: Decision) -> None:
        """Remember ``decision`` for ``key``, forgetting the least recently used beyond size."""
        with self._lock:
            self._decisions[key] = decision
            self._decisions.move_to_end(key)
            while len(self._decisions) > self.size:
                self._decisions.popitem(last=False)
