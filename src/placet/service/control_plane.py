"""Start-up wiring: ``initialise`` a data dir, ``open`` a control plane with its services."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect

from placet.domain.errors import NotInitialised
from placet.evidence.log import MerkleLog
from placet.policy.bundle import PolicyBundle, default_bundle
from placet.service.clock import utcnow
from placet.service.config import Settings
from placet.service.context import Context
from placet.service.graph import GraphService
from placet.service.keys import create_key_file, load_key_file
from placet.service.ledger import LedgerService
from placet.service.principals import PrincipalService
from placet.service.proposals import ProposalService
from placet.service.runners import RunnerService
from placet.store.db import make_engine
from placet.store.migrate import upgrade

log = logging.getLogger("placet.upkeep")


@dataclass
class InitReport:
    """What ``placet init`` did."""

    data_dir: Path
    database_url: str
    key_path: Path
    keyid: str
    created_key: bool


def initialise(settings: Settings) -> InitReport:
    """Create the data dir, migrate the database, create the signing key. Idempotent."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    key, created = create_key_file(settings.key_path)
    return InitReport(
        settings.data_dir, _safe_url(settings.db_url), settings.key_path, key.keyid, created
    )


def _safe_url(url: str) -> str:
    """The database URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class ControlPlane:
    """The services of one control plane process, wired once at start-up."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.ledger = LedgerService(ctx)
        self.principals = PrincipalService(ctx)
        self.graph = GraphService(ctx)
        self.proposals = ProposalService(ctx, self.ledger, self.graph)
        self.runners = RunnerService(ctx, self.ledger, self.proposals)

    @classmethod
    def open(cls, settings: Settings) -> ControlPlane:
        """Open an initialised data dir; NotInitialised says to run ``placet init``."""
        key = load_key_file(settings.key_path)
        engine = make_engine(settings.db_url)
        if "ledger_entries" not in inspect(engine).get_table_names():
            engine.dispose()
            raise NotInitialised(
                f"the database at {_safe_url(settings.db_url)} has no placet tables: "
                "run `placet init` first"
            )
        policy = PolicyBundle.load(settings.policy_dir) if settings.policy_dir else default_bundle()
        ctx = Context(settings, engine, key, policy, MerkleLog(), utcnow)
        return cls(ctx)

    def tick(self) -> None:
        """Periodic upkeep: reap lost leases, then checkpoint new ledger entries."""
        self.runners.reap()
        self.ledger.sign_checkpoint()

    def run_upkeep(self, stop: threading.Event) -> None:
        """Call :meth:`tick` every ``checkpoint_seconds`` until ``stop`` is set."""
        while not stop.wait(self.ctx.settings.checkpoint_seconds):
            try:
                self.tick()
            except Exception:  # keep serving; the next tick retries
                log.exception(
                    "upkeep failed; retrying in %.1fs", self.ctx.settings.checkpoint_seconds
                )

    def close(self) -> None:
        self.ctx.engine.dispose()
