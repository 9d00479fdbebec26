"""Start-up wiring: ``initialise`` a data dir, ``open`` a control plane with its services."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect

from placet.domain.errors import NotInitialised
from placet.evidence.log import MerkleLog
from placet.policy.bundle import default_bundle
from placet.service.clock import utcnow
from placet.service.config import Settings
from placet.service.context import Context
from placet.service.graph import GraphService
from placet.service.keys import create_key_file, load_key_file
from placet.service.ledger import LedgerService
from placet.service.notifications import NotificationService
from placet.service.policies import PolicyService
from placet.service.principals import PrincipalService
from placet.service.proposals import ProposalService
from placet.service.reports import ReportService
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
        self.policies = PolicyService(ctx)
        self.notifications = NotificationService(ctx)
        self.proposals = ProposalService(
            ctx, self.ledger, self.graph, self.policies, self.notifications
        )
        self.runners = RunnerService(ctx, self.ledger, self.proposals)
        self.reports = ReportService(ctx, self.graph, self.policies, self.proposals)

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
        # The packaged default decides until a bundle is pushed (`placet policy push`, or
        # `placet serve --policy DIR`, which pushes DIR when it is not already in force).
        ctx = Context(settings, engine, key, default_bundle(), MerkleLog(), utcnow)
        plane = cls(ctx)
        plane.adopt_policy_dir()
        return plane

    def adopt_policy_dir(self, author: str = "policy_dir setting") -> dict[str, object] | None:
        """Make ``settings.policy_dir`` the enforcing bundle unless it already is."""
        directory = self.ctx.settings.policy_dir
        if directory is None:
            return None
        return self.policies.ensure_enforcing(Path(directory), author)

    def tick(self) -> None:
        """Periodic upkeep: reap lost leases, expire and escalate approvals, then checkpoint
        new ledger entries."""
        self.runners.reap()
        self.proposals.upkeep()
        self.ledger.sign_checkpoint()

    def run_delivery(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Deliver due notifications until ``stop`` is set (its own thread: a slow receiver
        never delays checkpoints or expiry)."""
        while not stop.wait(interval):
            try:
                self.notifications.deliver_due()
            except Exception:
                log.exception("notification delivery failed; retrying in %.1fs", interval)

    def run_upkeep(self, stop: threading.Event) -> None:
        """Call :meth:`tick` every ``checkpoint_seconds`` until ``stop`` is set, and deliver
        notifications on a thread of their own meanwhile."""
        delivery = threading.Thread(
            target=self.run_delivery, args=(stop,), name="notifications", daemon=True
        )
        delivery.start()
        while not stop.wait(self.ctx.settings.checkpoint_seconds):
            try:
                self.tick()
            except Exception:  # keep serving; the next tick retries
                log.exception(
                    "upkeep failed; retrying in %.1fs", self.ctx.settings.checkpoint_seconds
                )

    def close(self) -> None:
        self.ctx.engine.dispose()
