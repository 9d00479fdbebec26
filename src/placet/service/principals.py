"""Principals, their roles and tokens, and the groups (teams) they belong to.

Humans hold roles from ``HUMAN_ROLES`` (viewer when none is given: least privilege);
agents and runners hold none, their kind fixes what they may do. A principal's group
memberships are its ``teams`` column; groups are rows of ``groups`` (kind team or group),
made by hand or imported from the System Graph's team nodes (Backstage Groups and Users).
"""

from __future__ import annotations

import builtins
import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, delete, select, update

from placet.domain.authority import HUMAN_ROLES, Role
from placet.domain.errors import Conflict, InputError, NotFound, Unauthenticated
from placet.domain.ids import new_id
from placet.domain.principals import Principal, PrincipalKind
from placet.service import tokens
from placet.service.clock import rfc3339
from placet.service.context import Context
from placet.store.tables import groups, principals
from placet.store.tables import tokens as tokens_table

if TYPE_CHECKING:
    from placet.service.graph import GraphService

_BY_TOKEN = (
    select(principals, tokens_table.c.token_hash)
    .join(tokens_table, tokens_table.c.principal_id == principals.c.id)
    .where(tokens_table.c.token_hash == bindparam("b_hash"), tokens_table.c.revoked_at.is_(None))
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@/-]{0,199}$")
GROUP_KINDS = ("team", "group")
DEFAULT_HUMAN_ROLES = (Role.VIEWER.value,)
MANUAL = "manual"
TEAM_PREFIX = "team:"
USER_PREFIX = "user:"
log = logging.getLogger("placet.principals")


def _row_to_principal(row: Any) -> Principal:
    return Principal(
        id=row.id,
        name=row.name,
        kind=PrincipalKind(row.kind),
        owner=row.owner,
        teams=tuple(row.teams or ()),
        roles=tuple(row.roles or ()),
    )


def check_roles(kind: PrincipalKind, roles: Iterable[str]) -> tuple[str, ...]:
    """The roles a principal of ``kind`` is given, validated; humans default to viewer."""
    given = tuple(dict.fromkeys(r.strip() for r in roles))
    if kind is not PrincipalKind.HUMAN:
        if given:
            raise InputError(
                "role",
                f"{kind.article} cannot hold roles ({', '.join(given)}): its kind fixes what it "
                "may do",
            )
        return ()
    allowed = sorted(r.value for r in HUMAN_ROLES)
    for role in given:
        if role not in allowed:
            raise InputError("role", f"{role!r} is not a role; humans hold {', '.join(allowed)}")
    return given or DEFAULT_HUMAN_ROLES


def check_group_name(name: str, field_name: str = "group") -> str:
    """``name`` if it is a valid group name, else InputError naming ``field_name``."""
    if not isinstance(name, str) or not _GROUP.match(name):
        raise InputError(
            field_name, f"{name!r}: use letters, digits, '.', '_', '@', '/' or '-' (at most 200)"
        )
    return name


def principal_view(principal: Principal, created_at: str | None = None) -> dict[str, Any]:
    """A principal as the API and ``--json`` show it (never a token or its hash)."""
    view: dict[str, Any] = {
        "id": principal.id,
        "name": principal.name,
        "kind": principal.kind.value,
        "owner": principal.owner,
        "teams": list(principal.teams),
        "roles": list(principal.roles),
    }
    if created_at is not None:
        view["created_at"] = created_at
    return view


class PrincipalService:
    """Registers humans, agents and runners, checks their tokens, and keeps groups."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # ---- principals ----------------------------------------------------------------

    def add(
        self,
        name: str,
        kind: str,
        owner: str | None = None,
        teams: tuple[str, ...] = (),
        roles: tuple[str, ...] = (),
        columns: Mapping[str, Any] | None = None,
    ) -> tuple[Principal, str]:
        """Create a principal and its first token; the token is returned once, never stored.

        Teams that do not exist yet are created as groups of kind team (so existing scripts
        that name teams on ``principal add`` keep working). ``columns`` are further values of
        the principal's row written in the same transaction (a runner's key and labels).
        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise InputError("name", "use letters, digits, '.', '_', '@' or '-' (at most 128)")
        try:
            principal_kind = PrincipalKind(kind)
        except ValueError:
            raise InputError("kind", f"must be human, agent or runner, not {kind!r}") from None
        checked_roles = check_roles(principal_kind, roles)
        teams = tuple(dict.fromkeys(check_group_name(t, "team") for t in teams))
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
            for team in teams:
                self._ensure_group(conn, team)
            principal = Principal(new_id(), name, principal_kind, owner, teams, checked_roles)
            conn.execute(
                principals.insert().values(
                    id=principal.id,
                    name=name,
                    kind=principal_kind.value,
                    owner=owner,
                    teams=list(teams),
                    roles=list(checked_roles),
                    created_at=rfc3339(self.ctx.clock()),
                    **dict(columns or {}),
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

    def set_roles(self, name: str, roles: Iterable[str], by: str) -> Principal:
        """Replace a human's roles (validated; none given means viewer); ``by`` is logged."""
        with self.ctx.write() as conn:
            row = conn.execute(select(principals).where(principals.c.name == name)).first()
            if row is None:
                raise NotFound("principal", name)
            kind = PrincipalKind(row.kind)
            if kind is not PrincipalKind.HUMAN:
                raise InputError(
                    "role", f"{name} is {kind.article}: its kind fixes what it may do, not roles"
                )
            checked = check_roles(kind, tuple(roles))
            conn.execute(
                update(principals).where(principals.c.id == row.id).values(roles=list(checked))
            )
        log.info("%s set the roles of %s to %s", by, name, ", ".join(checked))
        return self.get(name)

    def set_actions(self, name: str, kinds: Iterable[str], by: str) -> dict[str, Any]:
        """Declare the action kinds an agent is built to propose (its capabilities, which
        ``placet report permissions`` weighs against policy); ``by`` is logged."""
        from placet.domain import actions

        wanted = list(dict.fromkeys(kinds))
        known = set(actions.names())
        for index, kind in enumerate(wanted):
            if not isinstance(kind, str) or kind not in known:
                raise InputError(
                    f"actions[{index}]",
                    f"{kind!r} is not an action kind (known: {', '.join(sorted(known))})",
                )
        with self.ctx.write() as conn:
            row = conn.execute(select(principals).where(principals.c.name == name)).first()
            if row is None:
                raise NotFound("principal", name)
            if row.kind != PrincipalKind.AGENT.value:
                raise InputError("actions", f"{name} is not an agent: only agents declare actions")
            conn.execute(update(principals).where(principals.c.id == row.id).values(kinds=wanted))
        log.info("%s set the actions of %s to %s", by, name, ", ".join(wanted) or "(none)")
        return {**self.view(name), "actions": wanted}

    def actions_of(self, name: str) -> builtins.list[str]:
        """The action kinds declared for an agent (empty when none)."""
        with self.ctx.read() as conn:
            row = conn.execute(select(principals).where(principals.c.name == name)).first()
        if row is None:
            raise NotFound("principal", name)
        return list(row.kinds or []) if row.kind == PrincipalKind.AGENT.value else []

    def list(self) -> list[Principal]:
        """Every principal, oldest first."""
        with self.ctx.read() as conn:
            rows = conn.execute(select(principals).order_by(principals.c.id)).all()
        return [_row_to_principal(r) for r in rows]

    def views(self) -> builtins.list[dict[str, Any]]:
        """Every principal as :func:`principal_view` shows it, oldest first."""
        with self.ctx.read() as conn:
            rows = conn.execute(select(principals).order_by(principals.c.id)).all()
        return [principal_view(_row_to_principal(r), r.created_at) for r in rows]

    def view(self, name: str) -> dict[str, Any]:
        """One principal as :func:`principal_view` shows it, or NotFound."""
        with self.ctx.read() as conn:
            row = conn.execute(select(principals).where(principals.c.name == name)).first()
        if row is None:
            raise NotFound("principal", name)
        return principal_view(_row_to_principal(row), row.created_at)

    def get(self, name: str) -> Principal:
        """The principal called ``name``, or NotFound."""
        with self.ctx.read() as conn:
            row = conn.execute(select(principals).where(principals.c.name == name)).first()
        if row is None:
            raise NotFound("principal", name)
        return _row_to_principal(row)

    def by_name(self, name: str) -> Principal:
        """The principal called ``name`` (same as :meth:`get`)."""
        return self.get(name)

    def by_id(self, conn: Connection, principal_id: str) -> Principal:
        """The principal with id ``principal_id`` inside an open transaction, or NotFound."""
        row = conn.execute(select(principals).where(principals.c.id == principal_id)).first()
        if row is None:
            raise NotFound("principal", principal_id)
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

    # ---- groups --------------------------------------------------------------------

    def _ensure_group(self, conn: Connection, name: str) -> None:
        found = conn.execute(select(groups.c.name).where(groups.c.name == name)).first()
        if found is None:
            conn.execute(
                groups.insert().values(
                    name=name,
                    kind="team",
                    title=None,
                    parent=None,
                    source=MANUAL,
                    created_at=rfc3339(self.ctx.clock()),
                )
            )

    def add_group(
        self,
        name: str,
        kind: str = "team",
        title: str | None = None,
        parent: str | None = None,
    ) -> dict[str, Any]:
        """Create a group or team by hand; ``parent`` must be an existing group."""
        check_group_name(name, "name")
        if kind not in GROUP_KINDS:
            raise InputError("kind", f"must be team or group, not {kind!r}")
        if title is not None and (not isinstance(title, str) or len(title) > 500):
            raise InputError("title", "must be text of at most 500 characters")
        with self.ctx.write() as conn:
            if conn.execute(select(groups.c.name).where(groups.c.name == name)).first():
                raise Conflict(f"a group named {name!r} already exists")
            if parent is not None:
                check_group_name(parent, "parent")
                if parent == name:
                    raise InputError("parent", "a group cannot be its own parent")
                if not conn.execute(select(groups.c.name).where(groups.c.name == parent)).first():
                    raise NotFound("group", parent)
            conn.execute(
                groups.insert().values(
                    name=name,
                    kind=kind,
                    title=title,
                    parent=parent,
                    source=MANUAL,
                    created_at=rfc3339(self.ctx.clock()),
                )
            )
            return self._group_view(conn, name)

    def list_groups(self) -> builtins.list[dict[str, Any]]:
        """Every group with its member names, by name."""
        with self.ctx.read() as conn:
            rows = conn.execute(select(groups).order_by(groups.c.name)).all()
            members = _members_by_group(conn)
        return [_group_dict(r, members.get(r.name, [])) for r in rows]

    def get_group(self, name: str) -> dict[str, Any]:
        """One group with its member names, or NotFound."""
        with self.ctx.read() as conn:
            return self._group_view(conn, name)

    def _group_view(self, conn: Connection, name: str) -> dict[str, Any]:
        row = conn.execute(select(groups).where(groups.c.name == name)).first()
        if row is None:
            raise NotFound("group", name)
        return _group_dict(row, _members_by_group(conn).get(name, []))

    def remove_group(self, name: str) -> dict[str, Any]:
        """Delete a group, its memberships and its children's link to it."""
        with self.ctx.write() as conn:
            view = self._group_view(conn, name)
            for member in view["members"]:
                self._set_membership(conn, member, name, False)
            conn.execute(update(groups).where(groups.c.parent == name).values(parent=None))
            conn.execute(delete(groups).where(groups.c.name == name))
        return {"removed": name, "memberships_removed": view["members"]}

    def add_member(self, group: str, principal: str) -> dict[str, Any]:
        """Make ``principal`` a member of ``group`` (both must exist); idempotent."""
        with self.ctx.write() as conn:
            if not conn.execute(select(groups.c.name).where(groups.c.name == group)).first():
                raise NotFound("group", group)
            self._set_membership(conn, principal, group, True)
            return self._group_view(conn, group)

    def remove_member(self, group: str, principal: str) -> dict[str, Any]:
        """End ``principal``'s membership of ``group``; NotFound if it was not a member."""
        with self.ctx.write() as conn:
            if not conn.execute(select(groups.c.name).where(groups.c.name == group)).first():
                raise NotFound("group", group)
            if not self._set_membership(conn, principal, group, False):
                raise NotFound("membership", f"{principal} in {group}")
            return self._group_view(conn, group)

    def _set_membership(self, conn: Connection, name: str, group: str, member: bool) -> bool:
        """Add or drop ``group`` in ``name``'s teams; whether anything changed."""
        row = conn.execute(
            select(principals.c.id, principals.c.teams).where(principals.c.name == name)
        ).first()
        if row is None:
            raise NotFound("principal", name)
        teams = list(row.teams or ())
        if (group in teams) == member:
            return False
        teams = [*teams, group] if member else [t for t in teams if t != group]
        conn.execute(update(principals).where(principals.c.id == row.id).values(teams=teams))
        return True

    def import_groups_from_graph(self, graph: GraphService) -> dict[str, Any]:
        """Groups and memberships from the current graph's team nodes (Backstage Groups/Users).

        Every team node becomes a group of kind team (source ``graph:<version digest>``);
        each ``user:<name>`` member that is a registered human becomes a member. Additive:
        nothing is removed. Returns counts, the groups' names and the users placet does
        not know.
        """
        current = graph.current()
        if current is None:
            raise NotFound(
                "graph",
                "(nothing imported yet: import a Backstage catalog with `placet graph import` "
                "before importing its groups)",
            )
        source = f"graph:{current.digest}"
        teams = [n for n in current.graph.nodes.values() if n.kind.value == "team"]
        report: dict[str, Any] = {
            "graph_version": current.id,
            "groups_created": 0,
            "groups_updated": 0,
            "memberships_added": 0,
            "unknown_users": [],
            "groups": [],
        }
        unknown: set[str] = set()
        now = rfc3339(self.ctx.clock())
        with self.ctx.write() as conn:
            humans = {
                r.name
                for r in conn.execute(select(principals.c.name).where(principals.c.kind == "human"))
            }
            for node in sorted(teams, key=lambda n: n.id):
                name = node.id.removeprefix(TEAM_PREFIX)
                report["groups"].append(name)
                parent, members = _team_facts(node.attributes)
                title = node.name if node.name and node.name != name else None
                values = {"kind": "team", "title": title, "parent": parent, "source": source}
                row = conn.execute(select(groups).where(groups.c.name == name)).first()
                if row is None:
                    conn.execute(groups.insert().values(name=name, created_at=now, **values))
                    report["groups_created"] += 1
                elif any(getattr(row, k) != v for k, v in values.items()):
                    conn.execute(update(groups).where(groups.c.name == name).values(**values))
                    report["groups_updated"] += 1
                for member in members:
                    user = member.removeprefix(USER_PREFIX)
                    if user not in humans:
                        unknown.add(user)
                    elif self._set_membership(conn, user, name, True):
                        report["memberships_added"] += 1
        report["unknown_users"] = sorted(unknown)
        return report


def _team_facts(attributes: Any) -> tuple[str | None, list[str]]:
    """A team node's parent group and ``user:`` members, merged over its sources."""
    parent: str | None = None
    members: set[str] = set()
    for values in attributes.values():
        raw_parent = values.get("parent")
        if parent is None and isinstance(raw_parent, str) and raw_parent:
            parent = raw_parent.removeprefix(TEAM_PREFIX)
        raw_members = values.get("members")
        if isinstance(raw_members, list):
            members |= {m for m in raw_members if isinstance(m, str) and m.startswith(USER_PREFIX)}
    return parent, sorted(members)


def _members_by_group(conn: Connection) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in conn.execute(select(principals.c.name, principals.c.teams).order_by("name")):
        for team in row.teams or ():
            out.setdefault(team, []).append(row.name)
    return out


def _group_dict(row: Any, members: list[str]) -> dict[str, Any]:
    return {
        "name": row.name,
        "kind": row.kind,
        "title": row.title,
        "parent": row.parent,
        "source": row.source,
        "created_at": row.created_at,
        "members": list(members),
    }
