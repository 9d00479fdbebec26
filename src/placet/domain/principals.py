"""Principals: who acts. Humans approve; agents propose; runners execute."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class PrincipalKind(enum.StrEnum):
    """The three kinds of principal; the kind fixes what a principal may do."""

    HUMAN = "human"
    AGENT = "agent"
    RUNNER = "runner"

    @property
    def article(self) -> str:
        """The kind with its indefinite article, for messages: "an agent", "a runner"."""
        return f"{'an' if self.value[0] in 'aeiou' else 'a'} {self.value}"


@dataclass(frozen=True, slots=True)
class Principal:
    """A named actor with an owner; ``owner`` names the human or team answerable for it."""

    id: str
    name: str
    kind: PrincipalKind
    owner: str | None = None
    teams: tuple[str, ...] = field(default_factory=tuple)
    roles: tuple[str, ...] = field(default_factory=tuple)

    def ref(self) -> dict[str, str]:
        """The principal as it appears in statements and API bodies."""
        ref = {"id": self.id, "name": self.name, "kind": self.kind.value}
        if self.owner:
            ref["owner"] = self.owner
        return ref
