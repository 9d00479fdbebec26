"""Evaluate a compiled bundle within a time limit and turn its answer into a Decision.

The query entry point is ``data.placet.decision`` (the contract is checked by
:mod:`placet.policy.contract`). rego-cpp cannot be interrupted, so with a time limit each
evaluation runs on a session's own worker thread and the caller stops waiting at the
deadline: the evaluation fails closed (PolicyError) and the busy session is set aside
until it finishes, never handed to another caller meanwhile.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from placet.policy.contract import DECISION_RULE, decision_from
from placet.policy.errors import PolicyError
from placet.policy.references import Paths, Pruner, input_paths
from placet.policy.regocpp import Answer, Module, Session

__all__ = [
    "DECISION_RULE",
    "DEFAULT_TIMEOUT_SECONDS",
    "ENTRYPOINT",
    "MAX_OVERDUE",
    "Engine",
    "decision_from",
]

ENTRYPOINT = "placet/decision"
DEFAULT_TIMEOUT_SECONDS = 1.0
# Evaluations that ran past their deadline keep a session (and its thread) busy until they
# end. Past this many at once, further evaluations fail at once instead of piling up.
MAX_OVERDUE = 4

_STOP = object()


class _Worker:
    """A session and the thread that runs its queries, one at a time.

    The caller hands a document over and waits on ``_done`` with a timeout. Under
    ``_state`` exactly one of two things happens to a finished query: the waiting caller
    takes the result, or (the caller gave up) the worker returns itself to the engine.
    """

    def __init__(self, session: Session, engine: Engine) -> None:
        self.session = session
        self._engine = weakref.ref(engine)
        self._go = threading.Lock()
        self._go.acquire()
        self._done = threading.Lock()
        self._done.acquire()
        self._state = threading.Lock()
        self._abandoned = False
        self._job: Any = None
        self._result: Answer | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while True:
            self._go.acquire()
            job = self._job
            if job is _STOP:
                return
            self._job = None
            try:
                self._result, self._error = self.session.query(job), None
            except BaseException as exc:  # handed to the caller, who fails closed
                self._result, self._error = None, exc
            with self._state:
                if not self._abandoned:
                    self._done.release()
                    continue
                self._abandoned = False
            engine = self._engine()
            if engine is None:
                return
            engine.recover(self)

    def query(self, document: Mapping[str, Any], timeout: float) -> Answer | None:
        """The answer, or None when ``timeout`` seconds passed first (the worker then stays
        busy until the query ends, and returns itself to the engine)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"placet-policy-{id(self):x}", daemon=True
            )
            self._thread.start()
        self._job = document
        self._go.release()
        if not self._done.acquire(timeout=timeout):
            with self._state:
                if not self._done.acquire(blocking=False):
                    self._abandoned = True
                    engine = self._engine()
                    if engine is not None:
                        engine.note_overdue()
                    return None
        result, error = self._result, self._error
        self._result = self._error = None
        if error is not None:
            raise error
        assert result is not None
        return result

    def stop(self) -> None:
        """End the thread: now when idle, or when an overdue query ends."""
        if self._thread is not None:
            self._job = _STOP
            # A worker busy with an overdue query has its lock released already: it ends
            # once that query does.
            with contextlib.suppress(RuntimeError):
                self._go.release()


def _stop_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.stop()


class Engine:
    """The compiled sessions of one bundle: one per thread evaluating at the same moment.

    rego-cpp keeps the input on the interpreter, so a session serves one evaluation at a
    time. The first session is compiled when the bundle loads; a caller that finds every
    session busy compiles another from the same sources (milliseconds, once), and sessions
    are reused afterwards, so steady-state evaluation never compiles. Only the parts of
    the input the sources mention are handed over (see :mod:`placet.policy.references`).

    ``timeout`` (seconds, or None for no limit) bounds each evaluation; with None the
    query runs on the caller's thread, which is a little faster but can hang with the policy.
    """

    def __init__(
        self,
        modules: Sequence[Module],
        label: str,
        timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise PolicyError(f"{label}: the evaluation timeout must be positive, not {timeout}")
        self._modules = tuple(modules)
        self.label = label
        self.timeout = timeout
        self._prune = Pruner(input_paths(m.source for m in self._modules))
        self._lock = threading.Lock()
        self._idle: list[_Worker] = [_Worker(Session(self._modules, ENTRYPOINT, label), self)]
        self._all: list[_Worker] = list(self._idle)
        self._overdue = 0
        weakref.finalize(self, _stop_all, self._all)

    @property
    def sessions(self) -> int:
        """How many sessions have been compiled (the most threads seen evaluating at once)."""
        return len(self._all)

    @property
    def overdue(self) -> int:
        """How many evaluations are still running after their caller stopped waiting."""
        return self._overdue

    @property
    def input_paths(self) -> Paths | None:
        """The input subtrees the bundle can read; None when it may read all of the input."""
        return self._prune.paths

    @property
    def sources(self) -> tuple[str, ...]:
        """The Rego sources this engine compiled."""
        return tuple(m.source for m in self._modules)

    def prune(self, document: Mapping[str, Any]) -> Mapping[str, Any]:
        """The part of ``document`` the bundle can read."""
        return self._prune(document)

    def query(self, document: Mapping[str, Any]) -> Answer:
        """Evaluate ``data.placet.decision`` for ``document`` on a free session."""
        return self.query_pruned(self._prune(document))

    def note_overdue(self) -> None:
        """Count an evaluation whose caller stopped waiting (its worker stays busy)."""
        with self._lock:
            self._overdue += 1

    def recover(self, worker: _Worker) -> None:
        """Take back a worker whose overdue evaluation has ended: its session is free again."""
        with self._lock:
            self._overdue -= 1
            self._idle.append(worker)

    def _take(self) -> _Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if self._overdue >= MAX_OVERDUE:
                raise PolicyError(
                    f"{self.label}: {self._overdue} earlier evaluations are still running "
                    "past their time limit; refusing to start another"
                )
        worker = _Worker(Session(self._modules, ENTRYPOINT, self.label), self)
        with self._lock:
            self._all.append(worker)
        return worker

    def query_pruned(self, pruned: Mapping[str, Any]) -> Answer:
        """Evaluate for a document already cut down by :meth:`prune`, within the timeout."""
        worker = self._take()
        if self.timeout is None:
            try:
                return worker.session.query(pruned)
            finally:
                with self._lock:
                    self._idle.append(worker)
        try:
            answer = worker.query(pruned, self.timeout)
        except BaseException:
            with self._lock:
                self._idle.append(worker)
            raise
        if answer is None:
            raise PolicyError(
                f"{self.label}: evaluation timed out after {self.timeout:g}s "
                "(the policy took too long; nothing was decided)"
            )
        with self._lock:
            self._idle.append(worker)
        return answer
