"""Principals and their tokens: add, list, issue, authenticate."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from placet.domain.errors import Conflict, InputError, NotFound, Unauthenticated
from placet.domain.ids import new_id
from placet.domain.principals import Principal, PrincipalKind
from placet.service import tokens
from placet.service.clock import rfc3339
from placet.service.context import Context
from placet.store.tables import principals
from placet.store.tables import tokens as tokens_table

_BY_TOKEN = (
    select(principals, tokens_table.c.token_hash)
    .join(tokens_table, tokens_table.c.principal_id == principals.c.id)
    .where(tokens_table.c.token_hash == bindparam("b_hash"), tokens_table.c.revoked_at.is_(None))
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


def _row_to_principal(row: Any) -> Principal:
    return Principal(
        id=row.id,
        name=row.name,
        kind=PrincipalKind(row.kind),
        owner=row.owner,
        teams=tuple(row.teams or ()),
        roles=tuple(row.roles or ()),
    )


class PrincipalService:
    """Registers humans, agents and runners and checks their tokens."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def add(
        self,
        name: str,
        kind: str,
        owner: str | None = None,
        teams: tuple[str, ...] = (),
        roles: tuple[str, ...] = (),
    ) -> tuple[Principal, str]:
        """Create a principal and its first token; the token is returned once, never stored."""
        if not _NAME.match(name):
            raise InputError("name", "use letters, digits, '.', '_', '@' or '-' (at most 128)")
        try:
            principal_kind = PrincipalKind(kind)
        except ValueError:
            raise InputError("kind", f"must be human, agent or runner, not {kind!r}") from None
        for team in (*teams, *roles):
            if not _NAME.match(team):
                raise InputError("team/role", f"{team!r} is not a valid name")
        with self.ctx.write() as conn:
            if conn.execute(select(principals.c.id).where(principals.c.name == name)).first():
                raise Conflict(f"a principal named {name!r} already exists")
            if principal_kind is not PrincipalKind.HUMAN:
                if not owner:
                    raise InputError(
                        "owner",
                        f"{principal_kind.article} needs an owner: the human answerable for it",
                    )
                found = conn.execute(
                    select(principals.c.kind).where(principals.c.name == owner)
                ).first()
                if found is None or found.kind != PrincipalKind.HUMAN.value:
                    raise InputError("owner", f"{owner!r} is not a registered human principal")
            principal = Principal(new_id(), name, principal_kind, owner, teams, roles)
            conn.execute(
                principals.insert().values(
                    id=principal.id,
                    name=name,
                    kind=principal_kind.value,
                    owner=owner,
                    teams=list(teams),
                    roles=list(roles),
                    created_at=rfc3339(self.ctx.clock()),
                )
            )
            token = self._issue(conn, principal.id)
        return principal, token

    def _issue(self, conn: Connection, principal_id: str) -> str:
        token = tokens.new_token()
        conn.execute(
            tokens_table.insert().values(
                id=new_id(),
                principal_id=principal_id,
                token_hash=tokens.token_hash(token),
                created_at=rfc3339(self.ctx.clock()),
            )
        )
        return token

    def issue_token(self, name: str) -> tuple[Principal, str]:
        """Revoke the principal's tokens and issue a new one (shown once)."""
        with self.ctx.write() as conn:
            row = conn.execute(select(principals).where(principals.c.name == name)).first()
            if row is None:
                raise NotFound("principal", name)
            conn.execute(
                update(tokens_table)
                .where(tokens_table.c.principal_id == row.id, tokens_table.c.revoked_at.is_(None))
                .values(revoked_at=rfc3339(self.ctx.clock()))
            )
            return _row_to_principal(row), self._issue(conn, row.id)

    def list(self) -> list[Principal]:
        with self.ctx.read() as conn:
            rows = conn.execute(select(principals).order_by(principals.c.id)).all()
        return [_row_to_principal(r) for r in rows]

    def get(self, conn: Connection, principal_id: str) -> Principal:
        row = conn.execute(select(principals).where(principals.c.id == principal_id)).first()
        if row is None:
            raise NotFound("principal", principal_id)
        return _row_to_principal(row)

    def by_name(self, name: str) -> Principal:
        with self.ctx.read() as conn:
            row = conn.execute(select(principals).where(principals.c.name == name)).first()
        if row is None:
            raise NotFound("principal", name)
        return _row_to_principal(row)

    def authenticate(self, token: str | None) -> Principal:
        """The principal holding ``token``, or Unauthenticated."""
        if not token:
            raise Unauthenticated("an API token is required (Authorization: Bearer ...)")
        digest = tokens.token_hash(token)
        with self.ctx.read() as conn:
            row = conn.execute(_BY_TOKEN, {"b_hash": digest}).first()
        if row is None or not tokens.matches(token, row.token_hash):
            raise Unauthenticated("the token matches no principal (revoked or mistyped?)")
        return _row_to_principal(row)
