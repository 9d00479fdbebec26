"""The evidence ledger over the database: sign statements, append leaves, checkpoint, prove."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, func, select

from placet.domain.errors import InputError, NotFound
from placet.domain.lifecycle import Stage, Transition
from placet.domain.signing import PublicKey, envelope_bytes
from placet.evidence import merkle
from placet.evidence.bundle import CONTROL_PLANE, RUNNER, BundleKey, build_bundle, entry
from placet.evidence.checkpoint import sign_checkpoint
from placet.evidence.errors import MalformedEvidence
from placet.evidence.statements import statement, statement_of
from placet.service.clock import rfc3339
from placet.service.context import NEXT_LEAF, Context
from placet.store.tables import checkpoints, leases, ledger_entries, principals

_INSERT_LEAF = ledger_entries.insert()  # built once, compiled once
_MAX_LEAF = select(func.max(ledger_entries.c.leaf_index))


class SqlLeafStore:
    """The Merkle log's leaves in ``ledger_entries``, read through one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def size(self) -> int:
        value = self.conn.execute(_MAX_LEAF).scalar()
        return 0 if value is None else int(value) + 1

    def leaf_hash(self, index: int) -> bytes:
        value = self.conn.execute(
            select(ledger_entries.c.leaf_hash).where(ledger_entries.c.leaf_index == index)
        ).scalar()
        if value is None:
            raise NotFound("ledger entry", str(index))
        return bytes(value)

    def leaf_hashes(self, offset: int, width: int) -> list[bytes]:
        rows = self.conn.execute(
            select(ledger_entries.c.leaf_hash)
            .where(
                ledger_entries.c.leaf_index >= offset, ledger_entries.c.leaf_index < offset + width
            )
            .order_by(ledger_entries.c.leaf_index)
        ).all()
        return [bytes(r.leaf_hash) for r in rows]

    def append(self, data: bytes, leaf_hash: bytes) -> int:
        raise RuntimeError("the ledger appends through LedgerService.append_envelope")


def refusing_runner_keys(envelopes: list[dict[str, Any]]) -> list[PublicKey]:
    """The keys of runners that refused a misdirected capsule, as the closure statements the
    control plane signed name them (``misdirected.runner_public_key``)."""
    keys: list[PublicKey] = []
    for envelope in envelopes:
        try:
            said = statement_of(envelope)
        except MalformedEvidence:
            continue
        misdirected = said.predicate.get("misdirected")
        if said.stage is Stage.CLOSURE and isinstance(misdirected, dict):
            keys.append(PublicKey.from_b64(str(misdirected.get("runner_public_key"))))
    return keys


def transitions_json(transitions: list[Transition]) -> list[dict[str, Any]]:
    """Transitions as statements record them."""
    return [
        {"from": t.source.value if t.source else None, "to": t.target.value} for t in transitions
    ]


class LedgerService:
    """Appends signed statements in the caller's transaction and serves checkpoints and proofs."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # ---- appending -----------------------------------------------------------------

    def _next_index(self, conn: Connection) -> int:
        # The write transaction holds the writer lock (SQLite BEGIN IMMEDIATE, PostgreSQL
        # advisory lock), so the next index is stable until commit; remember it per connection.
        if NEXT_LEAF not in conn.info:
            conn.info[NEXT_LEAF] = SqlLeafStore(conn).size()
        index: int = conn.info[NEXT_LEAF]
        conn.info[NEXT_LEAF] = index + 1
        return index

    def append_envelope(
        self, conn: Connection, proposal_id: str, stage: Stage, envelope: dict[str, Any]
    ) -> int:
        """Append one envelope as the next leaf; return its index."""
        data = envelope_bytes(envelope)
        index = self._next_index(conn)
        conn.execute(
            _INSERT_LEAF,
            dict(
                leaf_index=index,
                proposal_id=proposal_id,
                stage=stage.value,
                leaf_hash=merkle.leaf_hash(data),
                envelope=data,
                created_at=rfc3339(self.ctx.clock()),
            ),
        )
        return index

    def record(
        self,
        conn: Connection,
        proposal_id: str,
        digest: str,
        stage: Stage,
        predicate: dict[str, Any],
        transitions: list[Transition],
    ) -> int:
        """Sign a control-plane statement for ``transitions`` and append it."""
        body = {
            **predicate,
            "transitions": transitions_json(transitions),
            "at": rfc3339(self.ctx.clock()),
        }
        envelope = self.ctx.key.sign_statement(statement(proposal_id, digest, stage.value, body))
        return self.append_envelope(conn, proposal_id, stage, envelope)

    # ---- checkpoints and proofs ----------------------------------------------------

    def size(self) -> int:
        with self.ctx.read() as conn:
            return SqlLeafStore(conn).size()

    def latest_checkpoint(self, conn: Connection) -> Any:
        return conn.execute(
            select(checkpoints).order_by(checkpoints.c.size.desc()).limit(1)
        ).first()

    def checkpoint(self, min_size: int = 0) -> str:
        """The newest signed checkpoint, signing a fresh one when the log has grown."""
        with self.ctx.read() as conn:
            latest = self.latest_checkpoint(conn)
            size = SqlLeafStore(conn).size()
        if latest is not None and latest.size >= max(size, min_size):
            return str(latest.note)
        signed = self.sign_checkpoint()
        if signed is not None:
            return signed
        # Another process (the server's upkeep) signed one since we looked: use it.
        with self.ctx.read() as conn:
            latest = self.latest_checkpoint(conn)
        if latest is None:  # pragma: no cover - only when the log is empty
            raise NotFound("checkpoint", "(the log is empty)")
        return str(latest.note)

    def sign_checkpoint(self) -> str | None:
        """Sign a checkpoint of the whole log if it grew since the last one; return its note."""
        with self.ctx.write() as conn:
            store = SqlLeafStore(conn)
            size = store.size()
            latest = self.latest_checkpoint(conn)
            if size == 0 or (latest is not None and latest.size >= size):
                return None
            with self.ctx.log.bound(store) as log:
                root = log.root(size)
            note = sign_checkpoint(self.ctx.settings.origin, size, root, self.ctx.key)
            conn.execute(
                checkpoints.insert().values(
                    size=size, root_hash=root, note=note, created_at=rfc3339(self.ctx.clock())
                )
            )
            return note

    def inclusion_proof(self, index: int, size: int | None = None) -> dict[str, Any]:
        with self.ctx.read() as conn:
            store = SqlLeafStore(conn)
            current = store.size()
            if current == 0:
                raise InputError("leaf_index", "the ledger has no entries yet")
            size = current if size is None else size
            if not 0 < size <= current:
                raise InputError("tree_size", f"must be between 1 and {current}")
            if not 0 <= index < size:
                raise InputError("leaf_index", f"must be between 0 and {size - 1}")
            with self.ctx.log.bound(store) as log:
                proof = log.inclusion_proof(index, size)
            leaf = store.leaf_hash(index)
        return {
            "leaf_index": index,
            "tree_size": size,
            "leaf_hash": leaf.hex(),
            "inclusion_proof": [h.hex() for h in proof],
        }

    def consistency_proof(self, first: int, second: int | None = None) -> dict[str, Any]:
        with self.ctx.read() as conn:
            store = SqlLeafStore(conn)
            current = store.size()
            if current == 0:
                raise InputError("first", "the ledger has no entries yet")
            second = current if second is None else second
            if not 0 < second <= current:
                raise InputError("second", f"must be between 1 and {current}")
            if not 0 < first <= second:
                raise InputError("first", f"must be between 1 and {second}")
            with self.ctx.log.bound(store) as log:
                proof = log.consistency_proof(first, second)
        return {"first": first, "second": second, "consistency_proof": [h.hex() for h in proof]}

    # ---- bundles -------------------------------------------------------------------

    def keys(self) -> list[dict[str, str]]:
        """The control plane's key and every registered runner key."""
        out = [BundleKey(self.ctx.key.public, CONTROL_PLANE).as_dict()]
        with self.ctx.read() as conn:
            rows = conn.execute(
                select(principals.c.public_key).where(principals.c.public_key.is_not(None))
            ).all()
        out.extend(BundleKey(PublicKey.from_b64(r.public_key), RUNNER).as_dict() for r in rows)
        return out

    def export(self, proposal_id: str) -> dict[str, Any]:
        """The evidence bundle of one proposal: entries, proofs, keys, a covering checkpoint."""
        with self.ctx.read() as conn:
            rows = conn.execute(
                select(
                    ledger_entries.c.leaf_index, ledger_entries.c.stage, ledger_entries.c.envelope
                )
                .where(ledger_entries.c.proposal_id == proposal_id)
                .order_by(ledger_entries.c.leaf_index)
            ).all()
            runner_keys = conn.execute(
                select(leases.c.runner_public_key)
                .where(leases.c.proposal_id == proposal_id)
                .distinct()  # a retried proposal may be leased twice by the same runner
            ).all()
        if not rows:
            raise NotFound("proposal", proposal_id)
        self.checkpoint(min_size=rows[-1].leaf_index + 1)
        with self.ctx.read() as conn:
            latest = self.latest_checkpoint(conn)
            with self.ctx.log.bound(SqlLeafStore(conn)) as log:
                entries = [
                    entry(
                        r.leaf_index,
                        json.loads(r.envelope),
                        log.inclusion_proof(r.leaf_index, latest.size),
                    )
                    for r in rows
                ]
        keys = [BundleKey(self.ctx.key.public, CONTROL_PLANE)]
        runners = [PublicKey.from_b64(r.runner_public_key) for r in runner_keys]
        closures = [json.loads(r.envelope) for r in rows if r.stage == Stage.CLOSURE.value]
        runners += [k for k in refusing_runner_keys(closures) if k not in runners]
        keys += [BundleKey(key, RUNNER) for key in runners]
        return build_bundle(proposal_id, str(latest.note), keys, entries)
