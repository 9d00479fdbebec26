"""Wake-ups for lease requests waiting on work: one waiter per unit of work, oldest first.

``WorkSignal`` is driven on real event loops (and from real threads); the service is driven
on a real SQLite file; the long poll is a real HTTP request to the app served by a real
uvicorn server on 127.0.0.1, whose database probe is set far longer than the test's client
timeout, so only a wake-up can answer it in time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import uvicorn

from placet.api import routes_runners
from placet.api.app import create_app
from placet.domain.signing import SigningKey
from placet.service.control_plane import ControlPlane
from placet.service.wakeups import WorkSignal
from tests.conftest import Tokens, free_port

LONG = 30.0  # a wait no test reaches: a waiter that returns was woken
# The lease route's fallback probe, made longer than the HTTP client's timeout below.
SLOW_PROBE = 60.0
CLIENT_TIMEOUT = 20.0


def staging(intent: str) -> dict[str, Any]:
    """A shell proposal the default policy allows at once (authorized)."""
    return {
        "kind": "shell",
        "targets": ["svc"],
        "environment": "staging",
        "intent": intent,
        "parameters": {"argv": ["true"]},
    }


def production(intent: str) -> dict[str, Any]:
    """A shell proposal the default policy gates on a human approval."""
    return {**staging(intent), "environment": "production"}


async def registered(signal: WorkSignal, count: int) -> None:
    """Let the loop run until ``count`` waiters are registered (each needs one step)."""
    for _ in range(100):
        if signal.waiting >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"only {signal.waiting} of {count} waiters registered")


async def settle() -> None:
    """Let every callback already scheduled on the loop run."""
    for _ in range(5):
        await asyncio.sleep(0)


# ---- WorkSignal -------------------------------------------------------------------------


def test_each_notify_wakes_exactly_one_waiter_oldest_first() -> None:
    async def scenario() -> None:
        signal = WorkSignal()
        waiters = []
        for _ in range(3):  # registered in this order
            waiters.append(asyncio.create_task(signal.wait(LONG)))
            await registered(signal, len(waiters))
        for woken in range(3):
            signal.notify()
            assert await asyncio.wait_for(waiters[woken], LONG) is True
            await settle()
            assert [w.done() for w in waiters] == [i <= woken for i in range(3)]
            assert signal.waiting == 2 - woken

    asyncio.run(scenario())


def test_a_waiter_nobody_wakes_times_out_with_false() -> None:
    async def scenario() -> None:
        signal = WorkSignal()
        assert await signal.wait(0.05) is False
        assert signal.waiting == 0  # it left the queue

    asyncio.run(scenario())


def test_a_notify_with_no_waiters_is_not_remembered() -> None:
    async def scenario() -> None:
        signal = WorkSignal()
        signal.notify()
        assert signal.waiting == 0
        assert await signal.wait(0.05) is False  # the earlier notify woke nobody later

    asyncio.run(scenario())


def test_a_waiter_on_another_threads_loop_is_woken_from_this_thread() -> None:
    signal = WorkSignal()
    ready = threading.Event()

    async def wait_there() -> bool:
        waiter = asyncio.create_task(signal.wait(LONG))
        await registered(signal, 1)
        ready.set()
        return await waiter

    with ThreadPoolExecutor(1) as pool:
        woken = pool.submit(asyncio.run, wait_there())
        assert ready.wait(LONG)
        signal.notify()  # from this thread, for a waiter on the other thread's loop
        assert woken.result(timeout=LONG) is True
    assert signal.waiting == 0


# ---- the service marks committed work --------------------------------------------------


def test_authorizing_a_proposal_wakes_a_waiter_and_a_gated_one_does_not(
    plane: ControlPlane, tokens: Tokens
) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    human = plane.principals.authenticate(tokens.human)
    signal = plane.ctx.work

    async def scenario() -> None:
        waiter = asyncio.create_task(signal.wait(LONG))
        await registered(signal, 1)
        gated, _ = await asyncio.to_thread(plane.proposals.propose, agent, production("gated"))
        assert gated["state"] == "pending_approval"
        await settle()
        assert not waiter.done() and signal.waiting == 1  # no work was added

        approved = await asyncio.to_thread(
            plane.proposals.approve, human, gated["id"], gated["digest"], "ok"
        )
        assert approved["state"] == "authorized"
        assert await asyncio.wait_for(waiter, LONG) is True

        second = asyncio.create_task(signal.wait(LONG))
        await registered(signal, 1)
        allowed, _ = await asyncio.to_thread(plane.proposals.propose, agent, staging("allowed"))
        assert allowed["state"] == "authorized"
        assert await asyncio.wait_for(second, LONG) is True

    asyncio.run(scenario())


# ---- end to end: a long poll over HTTP ---------------------------------------------------


@pytest.fixture
def api(plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app serving ``plane`` on a real uvicorn server, probing the database only every
    SLOW_PROBE seconds."""
    monkeypatch.setattr(routes_runners, "LEASE_PROBE_SECONDS", SLOW_PROBE)
    port = free_port()
    config = uvicorn.Config(create_app(plane), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    with httpx.Client() as client:
        for _ in range(400):
            assert thread.is_alive(), "the server thread ended"
            try:
                if client.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                thread.join(0.05)  # the server is binding; wait a moment on its thread
        else:
            raise AssertionError("the server did not start")
    yield url
    server.should_exit = True
    thread.join(10)


def client(url: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=CLIENT_TIMEOUT
    )


def waiting_for(plane: ControlPlane, http: httpx.Client, count: int) -> None:
    """Until ``count`` lease requests wait on the server (each health round trip paces the
    next look)."""
    for _ in range(1000):
        if plane.ctx.work.waiting >= count:
            return
        assert http.get("/healthz").status_code == 200
    raise AssertionError(f"{plane.ctx.work.waiting} lease requests wait, not {count}")


def test_a_waiting_long_poll_is_answered_when_a_proposal_is_authorized(
    plane: ControlPlane, tokens: Tokens, api: str
) -> None:
    runner = plane.principals.authenticate(tokens.runner)
    plane.runners.register(runner, SigningKey.generate().public.b64, ["shell"])
    body = {"kinds": ["shell"], "wait": LONG, "max": 4}
    with (
        client(api, tokens.runner) as runner_one,
        client(api, tokens.runner) as runner_two,
        client(api, tokens.agent) as agent,
        client(api, tokens.human) as human,
        ThreadPoolExecutor(2) as pool,
    ):
        first = pool.submit(runner_one.post, "/v1/runners/lease", json=body)
        waiting_for(plane, agent, 1)
        second = pool.submit(runner_two.post, "/v1/runners/lease", json=body)
        waiting_for(plane, agent, 2)

        gated = agent.post("/v1/proposals", json=production("needs a human"))
        assert gated.status_code == 201 and gated.json()["state"] == "pending_approval"
        assert plane.ctx.work.waiting == 2  # nothing leasable: nobody woken
        assert not first.done() and not second.done()

        approved = human.post(
            f"/v1/proposals/{gated.json()['id']}/approve", json={"digest": gated.json()["digest"]}
        )
        assert approved.status_code == 200, approved.text
        answer = first.result(timeout=CLIENT_TIMEOUT)  # the oldest request was woken
        assert answer.status_code == 200, answer.text
        (offer,) = answer.json()["leases"]
        assert offer["proposal_id"] == gated.json()["id"]
        assert not second.done() and plane.ctx.work.waiting == 1  # one wake, one request

        allowed = agent.post("/v1/proposals", json=staging("allowed at once"))
        assert allowed.status_code == 201 and allowed.json()["state"] == "authorized"
        answer = second.result(timeout=CLIENT_TIMEOUT)
        assert answer.status_code == 200, answer.text
        (offer,) = answer.json()["leases"]
        assert offer["proposal_id"] == allowed.json()["id"]
