"""Runner labels and selectors: which runner may receive which capsule. Pure; no I/O.

A runner's labels are a set of ``key=value`` pairs (a key may carry several values, e.g. a
runner serving ``env=staging`` and ``env=production``), stored as ``{key: [values]}``. A
selector ``{key: value}`` matches a runner when every pair is among its labels; an empty
selector or a runner without labels matches nothing (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from placet.domain.errors import InputError

Labels = dict[str, list[str]]
Selector = dict[str, str]

_KEY = re.compile(r"^[a-z0-9]([a-z0-9._/-]{0,62})$")
_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/@:-]{0,126})$")
SELECTOR_PARAMETER = "runner_selector"


def _pair(key: Any, value: Any, field: str) -> tuple[str, str]:
    if not isinstance(key, str) or not _KEY.match(key):
        raise InputError(field, f"label key {key!r}: use lowercase letters, digits, . _ / -")
    if not isinstance(value, str) or not _VALUE.match(value):
        raise InputError(
            field, f"label {key}={value!r}: the value must be letters, digits, . _ / @ : -"
        )
    return key, value


def parse_label_text(text: str, field: str = "labels") -> Labels:
    """Labels from ``"env=prod,region=eu"`` (a key may repeat: ``env=a,env=b``)."""
    pairs: list[tuple[str, str]] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(field, f"{item!r} is not key=value")
        pairs.append(_pair(key.strip(), value.strip(), field))
    return _collect(pairs)


def check_labels(value: Any, field: str = "labels") -> Labels:
    """Labels from JSON: ``{key: value}`` or ``{key: [values]}``; normalised and sorted."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(field, "must be an object of key: value (or key: [values])")
    pairs: list[tuple[str, str]] = []
    for key, values in value.items():
        for item in values if isinstance(values, list) else [values]:
            pairs.append(_pair(key, item, field))
    return _collect(pairs)


def _collect(pairs: list[tuple[str, str]]) -> Labels:
    out: dict[str, set[str]] = {}
    for key, value in pairs:
        out.setdefault(key, set()).add(value)
    return {key: sorted(out[key]) for key in sorted(out)}


def check_selector(value: Any, field: str = SELECTOR_PARAMETER) -> Selector:
    """A selector ``{key: value}`` (non-empty, one value per key), or InputError."""
    if not isinstance(value, Mapping) or not value:
        raise InputError(field, "must be a non-empty object of label key: value")
    return dict(sorted(_pair(k, v, field) for k, v in value.items()))


def selector_for(environment: str, parameters: Mapping[str, Any]) -> Selector:
    """The selector a proposal's capsule goes by: ``runner_selector`` or env=<environment>."""
    if SELECTOR_PARAMETER in parameters:
        return check_selector(parameters[SELECTOR_PARAMETER])
    return {"env": environment}


def matches(selector: Mapping[str, str], labels: Mapping[str, Any]) -> bool:
    """Whether every pair of ``selector`` is among ``labels``; empty either side: no."""
    if not selector or not labels:
        return False
    for key, value in selector.items():
        have = labels.get(key)
        values = have if isinstance(have, list) else [have]
        if value not in values:
            return False
    return True


def label_text(labels: Mapping[str, list[str]]) -> str:
    """``env=prod,region=eu``: labels as the CLI takes and shows them."""
    return ",".join(f"{k}={v}" for k in sorted(labels) for v in labels[k])
