"""Errors of the graph room; each names the file (and line) it is about."""

from __future__ import annotations

from placet.domain.errors import InputError


class GraphInputError(InputError):
    """A file an importer cannot read: names the file and, when known, the line."""

    def __init__(self, file: str, problem: str, line: int | None = None) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(where, problem)
        self.file = file
        self.line = line
