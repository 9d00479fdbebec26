"""Redaction of secrets in the output excerpts a runner signs into its evidence.

Patterns are regular expressions; when a pattern has a group named ``secret`` only that
group is replaced (so ``password=`` stays readable), otherwise the whole match is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

REDACTED = "[REDACTED]"
EXCERPT_BYTES = 4096
_MARGIN = 1024  # redact a little more than the excerpt, so a secret cut at its edge still goes

DEFAULT_PATTERNS: tuple[str, ...] = (
    # key=value / key: value for names that usually hold secrets
    r"(?i)(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|client[_-]?secret|auth)[\"']?\s*[:=]\s*[\"']?(?P<secret>[^\s\"'&,;]+)",
    r"(?i)\b(?:bearer|basic)\s+(?P<secret>[A-Za-z0-9._~+/=-]{8,})",
    r"://[^/\s:@]+:(?P<secret>[^/\s@]+)@",  # credentials in a URL
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
    r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})",
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}",  # Slack
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWT
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
)


@dataclass(frozen=True, slots=True)
class Redactor:
    """Replaces every match of its patterns; build with :func:`redactor`."""

    patterns: tuple[re.Pattern[str], ...]

    def redact(self, text: str) -> str:
        """``text`` with every secret the patterns find replaced by ``[REDACTED]``."""
        for pattern in self.patterns:
            text = pattern.sub(_replace, text)
        return text

    def excerpt(self, data: bytes, limit: int = EXCERPT_BYTES) -> str:
        """The last ``limit`` bytes of ``data`` as text, redacted (decoding errors replaced)."""
        window = data[-(limit + _MARGIN) :] if len(data) > limit + _MARGIN else data
        text = self.redact(window.decode("utf-8", "replace"))
        encoded = text.encode("utf-8")
        if len(encoded) <= limit:
            return text
        return encoded[-limit:].decode("utf-8", "ignore")


def _replace(match: re.Match[str]) -> str:
    if "secret" in match.re.groupindex and match.group("secret") is not None:
        start, end = match.span("secret")
        whole = match.group(0)
        offset = match.start(0)
        return whole[: start - offset] + REDACTED + whole[end - offset :]
    return REDACTED


def redactor(extra: Iterable[str] = (), *, defaults: bool = True) -> Redactor:
    """A Redactor for the default patterns plus ``extra``; ValueError names a bad pattern."""
    sources = [*(DEFAULT_PATTERNS if defaults else ()), *extra]
    compiled: list[re.Pattern[str]] = []
    for source in sources:
        try:
            compiled.append(re.compile(source))
        except re.error as exc:
            raise ValueError(f"redaction pattern {source!r} is not a valid regex: {exc}") from None
    return Redactor(tuple(compiled))


DEFAULT = redactor()
