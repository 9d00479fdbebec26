"""Fixtures of the evidence tests: ledgers holding whole recorded runs (see records.py)."""

from __future__ import annotations

from typing import Any

import pytest

from .records import RUNS, Ledger


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture(params=sorted(RUNS))
def recorded(request: pytest.FixtureRequest) -> tuple[Ledger, dict[str, Any]]:
    """Each kind of run in its own ledger, with its bundle."""
    ledger = Ledger()
    proposal_id = RUNS[request.param](ledger)
    return ledger, ledger.bundle(proposal_id)
