"""Hosts a runner in this process: build it from settings, run until stopped."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from placet.domain.signing import PublicKey
from placet.runners.keys import load_public_key
from placet.runners.process import Runner
from placet.runners.protocol import RunnerError

__all__ = ["RunnerError", "load_public_key", "run_runner"]


def run_runner(
    server: str,
    token: str,
    key_path: Path,
    *,
    workdir: Path,
    poll_interval: float,
    server_key: PublicKey | None,
    once: bool,
    stop: threading.Event,
    state_dir: Path | None = None,
    lease_wait: float = 5.0,
    allow_env: Sequence[str] = (),
    allow_urls: Sequence[str] = (),
    redact: Sequence[str] = (),
    slots: int = 1,
) -> int:
    """Register and work until ``stop`` (or one pass with ``once``); return how many it ran."""
    with Runner(
        server,
        token,
        key_path,
        workdir=workdir,
        poll_interval=poll_interval,
        server_key=server_key,
        state_dir=state_dir,
        lease_wait=0.0 if once else lease_wait,  # --once takes what is there, then exits
        allow_env=allow_env,
        allow_urls=allow_urls,
        redact=redact,
        slots=slots,
    ) as runner:
        runner.register()
        if once:
            count = 0
            while ran := runner.run_batch():
                count += ran
            return count
        runner.run_forever(stop)
        return 0
