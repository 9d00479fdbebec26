"""The batch routes runners speak: ``POST /v1/runners/lease`` with ``max`` and
``POST /v1/runners/reports``, over HTTP against a real ``placet serve`` process.

Reports are real statements about programs really run, signed with a real runner key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from placet.domain.signing import SigningKey
from placet.runners import shell
from placet.runners.capsule import capsule_digest
from placet.runners.statements import Assignment, execution_statement, verification_statement
from tests.conftest import World

OFFER_KEYS = {"lease_id", "proposal_id", "fencing_token", "expires_at", "heartbeat_seconds"}
PROBLEM_KEYS = {"type", "title", "status", "detail"}


class Http:
    """The agent's and runner's clients, and the runner's key and reference."""

    def __init__(self, world: World) -> None:
        url = world.server.url

        def make(token: str) -> httpx.Client:
            return httpx.Client(
                base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}
            )

        self.agent = make(world.tokens.agent)
        self.runner = make(world.tokens.runner)
        self.key = SigningKey.generate()
        registered = self.runner.post(
            "/v1/runners/register", json={"public_key": self.key.public.b64, "kinds": ["shell"]}
        )
        assert registered.status_code == 200, registered.text
        self.ref: dict[str, str] = registered.json()["runner"]
        self.digests: dict[str, str] = {}

    def close(self) -> None:
        self.agent.close()
        self.runner.close()

    def propose(self, count: int) -> list[str]:
        """``count`` staging shell proposals (verified by ``true``), authorized at once."""
        made = []
        for i in range(count):
            response = self.agent.post(
                "/v1/proposals",
                json={
                    "kind": "shell",
                    "targets": ["svc"],
                    "environment": "staging",
                    "intent": f"batch route {i}",
                    "parameters": {"argv": ["true"]},
                    "verify": {"argv": ["true"]},
                },
            )
            assert response.status_code == 201, response.text
            assert response.json()["state"] == "authorized"
            self.digests[response.json()["id"]] = response.json()["digest"]
            made.append(str(response.json()["id"]))
        return made

    def lease(self, **body: Any) -> httpx.Response:
        return self.runner.post("/v1/runners/lease", json={"kinds": ["shell"], **body})

    def ledger_size(self) -> int:
        return int(self.agent.get("/healthz").json()["ledger_size"])

    def assignment(self, offer: dict[str, Any]) -> Assignment:
        return Assignment(
            proposal_id=offer["proposal_id"],
            proposal_digest=self.digests[offer["proposal_id"]],
            runner=self.ref,
            lease_id=offer["lease_id"],
            fencing_token=offer["fencing_token"],
            capsule_digest=capsule_digest(offer["capsule"]),
        )

    def report(
        self,
        offer: dict[str, Any],
        stage: str,
        work: Path,
        /,
        key: SigningKey | None = None,
        **changes: Any,
    ) -> dict[str, Any]:
        """One batch item: the signed statement of ``true`` run (or checked) for ``offer``."""
        ran = shell.run(["true"], cwd=work)
        said = (
            execution_statement(self.assignment(offer), "shell", ran)
            if stage == "execution"
            else verification_statement(self.assignment(offer), ran)
        )
        item = {
            "lease_id": offer["lease_id"],
            "stage": stage,
            "fencing_token": offer["fencing_token"],
            "sequence": 1 if stage == "execution" else 2,
            "envelope": (key or self.key).sign_statement(said),
        }
        item.update(changes)
        return item

    def finish(self, offers: list[dict[str, Any]], work: Path) -> None:
        """Report execution and verification of each offer: nothing is left open."""
        batch = [self.report(o, s, work) for o in offers for s in ("execution", "verification")]
        response = self.runner.post("/v1/runners/reports", json={"reports": batch})
        assert response.status_code == 200, response.text
        assert [r["state"] for r in response.json()["results"]][1::2] == ["succeeded"] * len(offers)


@pytest.fixture(scope="module")
def http(world: World) -> Iterator[Http]:
    made = Http(world)
    yield made
    made.close()


def expect_problem(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status and problem["field"] == field
    return problem


def test_lease_with_max_answers_a_list_and_without_max_one_offer(
    http: Http, tmp_path: Path
) -> None:
    made = http.propose(3)
    batch = http.lease(max=2)
    assert batch.status_code == 200, batch.text
    assert set(batch.json()) == {"leases"}
    offers = batch.json()["leases"]
    assert [o["proposal_id"] for o in offers] == made[:2]
    for offer in offers:
        assert OFFER_KEYS | {"capsule"} <= set(offer)
    assert offers[0]["fencing_token"] < offers[1]["fencing_token"]

    single = http.lease()
    assert single.status_code == 200, single.text
    assert "leases" not in single.json() and set(single.json()) >= OFFER_KEYS
    assert single.json()["proposal_id"] == made[2]

    assert http.lease(max=2).status_code == 204  # idle
    assert http.lease().status_code == 204
    http.finish([*offers, single.json()], tmp_path)


@pytest.mark.parametrize("most", [0, 33, "2", True, -1, 2.5])
def test_a_bad_max_is_422_naming_max(http: Http, most: Any) -> None:
    problem = expect_problem(http.lease(max=most), 422, "max")
    assert "1 to 32" in problem["detail"]


def test_reports_are_answered_one_by_one_in_order_and_once(http: Http, tmp_path: Path) -> None:
    made = http.propose(2)
    first, second = http.lease(max=2).json()["leases"]
    batch = [
        http.report(first, "execution", tmp_path),
        http.report(first, "execution", tmp_path, lease_id="no-such-lease"),
        http.report(second, "execution", tmp_path, key=SigningKey.generate()),
        http.report(second, "execution", tmp_path, fencing_token=second["fencing_token"] + 9),
        "not a report",
        http.report(second, "execution", tmp_path),
        http.report(second, "verification", tmp_path),
    ]
    size = http.ledger_size()
    response = http.runner.post("/v1/runners/reports", json={"reports": batch})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == len(batch)
    assert results[0] == {"state": "verifying"}
    problems = [r["problem"] for r in results[1:5]]
    assert [set(p) for p in problems] == [
        PROBLEM_KEYS,
        PROBLEM_KEYS | {"field"},
        PROBLEM_KEYS,
        PROBLEM_KEYS | {"field"},
    ]
    assert [(p["status"], p["title"]) for p in problems] == [
        (404, "Not found"),
        (422, "Invalid input"),
        (409, "Conflict"),
        (422, "Invalid input"),
    ]
    assert problems[0]["type"] == "https://placet.dev/problems/not-found"
    assert "no-such-lease" in problems[0]["detail"]
    assert problems[1]["field"] == "envelope"
    assert "stale fencing token" in problems[2]["detail"]
    assert problems[3]["field"] == "reports[]"
    assert results[5:] == [{"state": "verifying"}, {"state": "succeeded"}]
    # first's execution; second's execution, verification and closure
    assert http.ledger_size() == size + 4

    again = http.runner.post("/v1/runners/reports", json={"reports": batch})
    assert again.status_code == 200, again.text
    resent = again.json()["results"]
    # the recorded reports answer as the first time; the refused ones are refused again (the
    # forged one now meets the recorded report 1 of its lease: another statement, 409)
    assert [resent[i] for i in (0, 5, 6)] == [results[i] for i in (0, 5, 6)]
    assert [r["problem"]["status"] for r in resent[1:5]] == [404, 409, 409, 422]
    assert http.ledger_size() == size + 4
    states = [http.agent.get(f"/v1/proposals/{p}").json()["state"] for p in made]
    assert states == ["verifying", "succeeded"]
    last = [http.report(first, "verification", tmp_path)]
    closed = http.runner.post("/v1/runners/reports", json={"reports": last})
    assert closed.json() == {"results": [{"state": "succeeded"}]}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reports": "x"},
        {"reports": {"lease_id": "x"}},
        {"reports": []},
        {"reports": [{"lease_id": "x"}] * 65},
    ],
    ids=["missing", "string", "object", "empty", "65"],
)
def test_a_bad_reports_body_is_422_naming_reports(http: Http, body: dict[str, Any]) -> None:
    size = http.ledger_size()
    problem = expect_problem(http.runner.post("/v1/runners/reports", json=body), 422, "reports")
    assert ("64" in problem["detail"]) == (len(body.get("reports") or []) == 65)
    assert http.ledger_size() == size


def test_only_runners_send_report_batches(http: Http) -> None:
    response = http.agent.post("/v1/runners/reports", json={"reports": [{"lease_id": "x"}]})
    assert response.status_code == 403, response.text
    assert response.json()["status"] == 403


def test_a_kind_only_the_runner_has_is_left_out_and_named_not_refused(http: Http) -> None:
    """A runner with a plugin the control plane lacks still registers and leases the kinds
    the control plane knows; the answer names what it ignored."""
    answer = http.runner.post(
        "/v1/runners/register",
        json={"public_key": http.key.public.b64, "kinds": ["shell", "k8s-restart"]},
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["kinds"], answer.json()["ignored_kinds"]) == (["shell"], ["k8s-restart"])
    made = http.propose(1)
    leased = http.runner.post(
        "/v1/runners/lease", json={"kinds": ["k8s-restart", "shell"], "max": 2}
    )
    assert leased.status_code == 200, leased.text
    assert [offer["proposal_id"] for offer in leased.json()["leases"]] == made
    only_unknown = http.runner.post("/v1/runners/lease", json={"kinds": ["k8s-restart"]})
    assert only_unknown.status_code == 422
    assert only_unknown.json()["field"] == "kinds"
