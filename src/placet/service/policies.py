"""Policy bundles in the store: push, history, rollback, the enforcing and shadow heads,
and shadow decisions recorded beside the enforcing ones.

Every pushed bundle is kept (its Rego sources, digest, author and time). One head per mode
names the bundle in force: ``enforce`` decides; ``shadow`` is evaluated beside it on every
proposal, its would-be decision recorded and compared, and never changes an outcome.
With no enforcing head, the packaged default bundle decides.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from placet.domain.authority import Decision
from placet.domain.errors import Conflict, InputError, NotFound
from placet.domain.ids import new_id
from placet.policy.bundle import PolicyBundle, read_rego_files
from placet.policy.errors import PolicyError
from placet.service.clock import rfc3339
from placet.service.codec import decision_to_json
from placet.service.context import Context
from placet.store.tables import policy_bundles, policy_changes, policy_heads, shadow_decisions

log = logging.getLogger("placet.policy")

ENFORCE = "enforce"
SHADOW = "shadow"
MODES = (ENFORCE, SHADOW)
MAX_FILES = 200
MAX_LIST = 1000


@dataclass(frozen=True, slots=True)
class Heads:
    """The enforcing bundle (id None: the packaged default) and the shadow, if any."""

    enforcing: tuple[str | None, PolicyBundle]
    shadow: tuple[str, PolicyBundle] | None


class PolicyService:
    """The bundle store and its heads; compiled bundles are cached by bundle id."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._compiled: dict[str, PolicyBundle] = {}
        self._lock = threading.Lock()

    # ---- reading the heads ------------------------------------------------------------

    def _head(self, conn: Connection, mode: str) -> Any:
        return conn.execute(
            select(policy_bundles)
            .join(policy_heads, policy_heads.c.bundle_id == policy_bundles.c.id)
            .where(policy_heads.c.mode == mode)
        ).first()

    def _bundle(self, row: Any) -> PolicyBundle:
        with self._lock:
            found = self._compiled.get(row.id)
        if found is not None:
            return found
        files = {path: text.encode() for path, text in row.files.items()}
        bundle = PolicyBundle(row.name, files, f"policy bundle {row.id}")
        with self._lock:
            self._compiled[row.id] = bundle
        return bundle

    def heads_in(self, conn: Connection) -> Heads:
        """Both heads in one query (the decision path asks for them on every proposal)."""
        rows = conn.execute(
            select(policy_bundles, policy_heads.c.mode.label("head_mode")).join(
                policy_heads, policy_heads.c.bundle_id == policy_bundles.c.id
            )
        ).all()
        by_mode = {r.head_mode: r for r in rows}
        enforce, shadow = by_mode.get(ENFORCE), by_mode.get(SHADOW)
        return Heads(
            (enforce.id, self._bundle(enforce)) if enforce is not None else (None, self.ctx.policy),
            (shadow.id, self._bundle(shadow)) if shadow is not None else None,
        )

    def enforcing(self, conn: Connection) -> tuple[str | None, PolicyBundle]:
        """The bundle that decides now and its id (None: the packaged default)."""
        row = self._head(conn, ENFORCE)
        if row is None:
            return None, self.ctx.policy
        return row.id, self._bundle(row)

    def shadowing(self, conn: Connection) -> tuple[str, PolicyBundle] | None:
        """The shadow bundle and its id, if one is pushed."""
        row = self._head(conn, SHADOW)
        if row is None:
            return None
        return row.id, self._bundle(row)

    # ---- changing the heads -----------------------------------------------------------

    def push(
        self,
        files: Mapping[str, bytes],
        *,
        name: str,
        author: str,
        shadow: bool = False,
    ) -> dict[str, Any]:
        """Store a bundle and make it the enforcing (or shadow) head; it must compile."""
        if not files:
            raise InputError("files", "a bundle needs at least one .rego file")
        if len(files) > MAX_FILES:
            raise InputError("files", f"at most {MAX_FILES} files per bundle")
        for path in files:
            if not path.endswith(".rego") or path.startswith("/") or ".." in path.split("/"):
                raise InputError("files", f"{path!r} is not a relative path to a .rego file")
        if not name.strip():
            raise InputError("name", "must not be empty")
        try:
            bundle = PolicyBundle(name, dict(sorted(files.items())), f"pushed bundle {name!r}")
        except PolicyError as exc:
            raise InputError("bundle", str(exc)) from None
        try:
            texts = {path: data.decode("utf-8") for path, data in files.items()}
        except UnicodeDecodeError:  # pragma: no cover - PolicyBundle refuses it first
            raise InputError("files", "every file must be UTF-8 text") from None
        mode = SHADOW if shadow else ENFORCE
        now = rfc3339(self.ctx.clock())
        bundle_id = new_id()
        with self.ctx.write() as conn:
            conn.execute(
                policy_bundles.insert().values(
                    id=bundle_id,
                    name=name,
                    digest=bundle.digest,
                    files=dict(sorted(texts.items())),
                    mode=mode,
                    author=author,
                    created_at=now,
                )
            )
            self._set_head(conn, mode, bundle_id, "push", author, now)
        with self._lock:
            self._compiled[bundle_id] = bundle
        return {
            "id": bundle_id,
            "name": name,
            "digest": bundle.digest,
            "mode": mode,
            "author": author,
            "created_at": now,
            "files": sorted(texts),
        }

    def push_directory(
        self, directory: Path, *, author: str, shadow: bool = False, name: str | None = None
    ) -> dict[str, Any]:
        """Push every .rego file under ``directory``."""
        try:
            files = read_rego_files(directory, str(directory))
        except PolicyError as exc:
            raise InputError("DIR", str(exc)) from None
        return self.push(files, name=name or directory.resolve().name, author=author, shadow=shadow)

    def ensure_enforcing(self, directory: Path, author: str) -> dict[str, Any] | None:
        """Push ``directory`` unless the enforcing head already has its digest."""
        try:
            files = read_rego_files(directory, str(directory))
        except PolicyError as exc:
            raise InputError("--policy", str(exc)) from None
        from placet.policy.bundle import bundle_digest

        with self.ctx.read() as conn:
            row = self._head(conn, ENFORCE)
        if row is not None and row.digest == bundle_digest(files):
            return None
        return self.push(files, name=directory.resolve().name, author=author)

    def _set_head(
        self, conn: Connection, mode: str, bundle_id: str | None, action: str, author: str, now: str
    ) -> None:
        exists = conn.execute(select(policy_heads.c.mode).where(policy_heads.c.mode == mode))
        values = {"bundle_id": bundle_id, "updated_by": author, "updated_at": now}
        if exists.first() is None:
            conn.execute(policy_heads.insert().values(mode=mode, **values))
        else:
            conn.execute(policy_heads.update().where(policy_heads.c.mode == mode).values(**values))
        conn.execute(
            policy_changes.insert().values(
                id=new_id(),
                mode=mode,
                action=action,
                bundle_id=bundle_id,
                author=author,
                created_at=now,
            )
        )

    def rollback(self, author: str, to: str | None = None) -> dict[str, Any]:
        """Make an earlier enforcing bundle the head again: ``to`` (an id or digest prefix),
        else the one pushed before the current head (the packaged default before the first)."""
        now = rfc3339(self.ctx.clock())
        with self.ctx.write() as conn:
            head = self._head(conn, ENFORCE)
            if to is not None:
                target = self._find(conn, to)
                if target.mode != ENFORCE:
                    raise InputError("--to", f"bundle {target.id} was pushed as a shadow bundle")
            else:
                if head is None:
                    raise Conflict("nothing to roll back: the packaged default bundle is in force")
                target = conn.execute(
                    select(policy_bundles)
                    .where(policy_bundles.c.mode == ENFORCE, policy_bundles.c.id < head.id)
                    .order_by(policy_bundles.c.id.desc())
                    .limit(1)
                ).first()
            self._set_head(conn, ENFORCE, target.id if target else None, "rollback", author, now)
        if target is None:
            return {
                "enforcing": None,
                "name": self.ctx.policy.name,
                "digest": self.ctx.policy.digest,
            }
        return {"enforcing": target.id, "name": target.name, "digest": target.digest}

    def clear_shadow(self, author: str) -> None:
        """Stop shadow evaluation (recorded shadow decisions are kept)."""
        now = rfc3339(self.ctx.clock())
        with self.ctx.write() as conn:
            if self._head(conn, SHADOW) is None:
                raise Conflict("no shadow bundle is pushed")
            self._set_head(conn, SHADOW, None, "clear", author, now)

    def _find(self, conn: Connection, ref: str) -> Any:
        if not ref.strip():
            raise InputError("--to", "name a bundle id or digest prefix")
        rows = conn.execute(
            select(policy_bundles).where(
                (policy_bundles.c.id == ref) | (policy_bundles.c.digest.startswith(ref.lower()))
            )
        ).all()
        if not rows:
            raise NotFound("policy bundle", ref)
        exact = [r for r in rows if r.id == ref]
        if exact:
            return exact[0]
        if len({r.digest for r in rows}) > 1:
            raise InputError("--to", f"{ref!r} matches more than one bundle; give more digits")
        return max(rows, key=lambda r: str(r.id))  # the same bundle pushed twice: the latest

    # ---- reading ----------------------------------------------------------------------

    def heads(self) -> dict[str, Any]:
        """What enforces and what shadows now."""
        with self.ctx.read() as conn:
            enforce = self._head(conn, ENFORCE)
            shadow = self._head(conn, SHADOW)
        default = self.ctx.policy
        return {
            "enforcing": (
                _bundle_view(enforce)
                if enforce is not None
                else {"id": None, "name": default.name, "digest": default.digest, "packaged": True}
            ),
            "shadow": _bundle_view(shadow) if shadow is not None else None,
        }

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        """Every head change, newest first, with the bundle it pointed to."""
        if not 0 < limit <= MAX_LIST:
            raise InputError("limit", f"must be between 1 and {MAX_LIST}")
        with self.ctx.read() as conn:
            rows = conn.execute(
                select(
                    policy_changes,
                    policy_bundles.c.name,
                    policy_bundles.c.digest,
                )
                .outerjoin(policy_bundles, policy_bundles.c.id == policy_changes.c.bundle_id)
                .order_by(policy_changes.c.id.desc())
                .limit(limit)
            ).all()
        return [
            {
                "at": r.created_at,
                "mode": r.mode,
                "action": r.action,
                "bundle_id": r.bundle_id,
                "name": r.name if r.bundle_id else self.ctx.policy.name,
                "digest": r.digest if r.bundle_id else self.ctx.policy.digest,
                "author": r.author,
            }
            for r in rows
        ]

    def source(self, ref: str) -> dict[str, Any]:
        """One stored bundle with its sources."""
        with self.ctx.read() as conn:
            row = self._find(conn, ref)
        return {**_bundle_view(row), "files": dict(row.files)}

    def evaluate(self, document: Mapping[str, Any], ref: str | None = None) -> dict[str, Any]:
        """What-if: the enforcing bundle's (or ``ref``'s, or ``"shadow"``'s) decision for an
        input document, never recorded."""
        with self.ctx.read() as conn:
            if ref is None:
                bundle = self.enforcing(conn)[1]
            elif ref == SHADOW:
                found = self.shadowing(conn)
                if found is None:
                    raise NotFound("shadow bundle", "(none pushed)")
                bundle = found[1]
            else:
                bundle = self._bundle(self._find(conn, ref))
        return what_if(bundle, document)

    # ---- shadow decisions -------------------------------------------------------------

    def record_shadow(
        self,
        conn: Connection,
        proposal_id: str,
        document: Mapping[str, Any],
        enforced: Decision | None,
        shadow: tuple[str, PolicyBundle] | None = None,
    ) -> dict[str, Any] | None:
        """Evaluate the shadow bundle (``shadow``, else the current one, if any) for
        ``document`` and record what it would have said; return the record. Never raises
        for the bundle's own faults."""
        found = shadow if shadow is not None else self.shadowing(conn)
        if found is None:
            return None
        bundle_id, bundle = found
        record: dict[str, Any] = {"bundle_id": bundle_id, "bundle_digest": bundle.digest}
        decision: Decision | None = None
        try:
            decision = bundle.evaluate(document)
        except PolicyError as exc:
            record["error"] = str(exc)
        except Exception as exc:  # a shadow bundle must never break the enforcing path
            log.exception("shadow bundle %s failed", bundle_id)
            record["error"] = f"{type(exc).__name__}: {exc}"
        enforced_outcome = enforced.outcome.value if enforced is not None else "failed"
        outcome = decision.outcome.value if decision is not None else None
        differs = outcome != enforced_outcome or (
            decision is not None
            and enforced is not None
            and decision.requirement.count != enforced.requirement.count
        )
        record.update(outcome=outcome, enforced_outcome=enforced_outcome, differs=differs)
        if decision is not None:
            record["decision"] = decision_to_json(decision)
        conn.execute(
            shadow_decisions.insert().values(
                proposal_id=proposal_id,
                bundle_id=bundle_id,
                bundle_digest=bundle.digest,
                outcome=outcome,
                enforced_outcome=enforced_outcome,
                decision=record.get("decision"),
                differs=int(differs),
                error=record.get("error"),
                created_at=rfc3339(self.ctx.clock()),
            )
        )
        return record

    def shadow_report(
        self, bundle: str | None = None, only_differences: bool = True, limit: int = 100
    ) -> dict[str, Any]:
        """What a shadow bundle would have decided differently (the current one by default)."""
        if not 0 < limit <= MAX_LIST:
            raise InputError("limit", f"must be between 1 and {MAX_LIST}")
        with self.ctx.read() as conn:
            if bundle is None:
                head = self._head(conn, SHADOW)
                if head is None:
                    latest = conn.execute(
                        select(policy_bundles)
                        .where(policy_bundles.c.mode == SHADOW)
                        .order_by(policy_bundles.c.id.desc())
                        .limit(1)
                    ).first()
                    if latest is None:
                        raise NotFound("shadow bundle", "(none pushed)")
                    head = latest
            else:
                head = self._find(conn, bundle)
            where = shadow_decisions.c.bundle_id == head.id
            evaluated = conn.execute(select(func.count()).where(where)).scalar_one()
            differing = conn.execute(
                select(func.count()).where(where, shadow_decisions.c.differs == 1)
            ).scalar_one()
            query = select(shadow_decisions).where(where)
            if only_differences:
                query = query.where(shadow_decisions.c.differs == 1)
            rows = conn.execute(
                query.order_by(shadow_decisions.c.proposal_id.desc()).limit(limit)
            ).all()
        return {
            "bundle": _bundle_view(head),
            "evaluated": evaluated,
            "differing": differing,
            "items": [
                {
                    "proposal_id": r.proposal_id,
                    "enforced": r.enforced_outcome,
                    "shadow": r.outcome,
                    "differs": bool(r.differs),
                    "error": r.error,
                    "reasons": (r.decision or {}).get("reasons", []),
                    "at": r.created_at,
                }
                for r in rows
            ],
        }


def _bundle_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "digest": row.digest,
        "mode": row.mode,
        "author": row.author,
        "created_at": row.created_at,
    }


def what_if(bundle: PolicyBundle, document: Mapping[str, Any]) -> dict[str, Any]:
    """What ``bundle`` decides for ``document``: the decision, or why it would fail closed."""
    if not isinstance(document, Mapping):
        raise InputError("input", "must be a JSON object (an input document)")
    answer: dict[str, Any] = {"bundle": {"name": bundle.name, "digest": bundle.digest}}
    try:
        decision = bundle.evaluate(document)
    except PolicyError as exc:
        answer.update(outcome="failed", error=str(exc))
        return answer
    answer.update(outcome=decision.outcome.value, decision=decision_to_json(decision))
    return answer
