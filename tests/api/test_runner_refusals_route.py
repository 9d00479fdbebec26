"""``POST /v1/runners/refusals`` over HTTP against a real ``placet serve`` process: a runner's
refusal of a genuine capsule leased to another runner (misdirected) is recorded once; bad
ones get problem+json naming the field; only runners may call it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from placet.domain.signing import SigningKey
from placet.runners.capsule import capsule_digest
from placet.runners.statements import Assignment, unstarted_execution_statement
from placet.runners.times import utc_now
from tests.conftest import World

REFUSALS = "/v1/runners/refusals"


class Edges:
    """runner-1 (env=staging, leases the work) and runner-a, enrolled by the admin with
    env=nowhere; each registered over HTTP with its own key."""

    def __init__(self, world: World) -> None:
        url = world.server.url

        def make(token: str) -> httpx.Client:
            return httpx.Client(
                base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}
            )

        self.agent = make(world.tokens.agent)
        self.human = make(world.tokens.human)
        admin = make(world.tokens.admin)
        self.key_a = SigningKey.generate()
        made = admin.post(
            "/v1/runners",
            json={
                "name": "runner-a",
                "public_key": self.key_a.public.b64,
                "owner": "olivia",
                "labels": {"env": "nowhere"},
            },
        )
        admin.close()
        assert made.status_code == 201, made.text
        self.a = make(made.json()["token"])
        self.b = make(world.tokens.runner)
        self.key_b = SigningKey.generate()
        self.ref_a = self._register(self.a, self.key_a)
        self._register(self.b, self.key_b)

    @staticmethod
    def _register(client: httpx.Client, key: SigningKey) -> dict[str, str]:
        answer = client.post(
            "/v1/runners/register", json={"public_key": key.public.b64, "kinds": ["shell"]}
        )
        assert answer.status_code == 200, answer.text
        ref: dict[str, str] = answer.json()["runner"]
        return ref

    def close(self) -> None:
        for client in (self.agent, self.human, self.a, self.b):
            client.close()

    def leased_to_b(self) -> dict[str, Any]:
        """A staging proposal, leased by runner-1: the offer."""
        response = self.agent.post(
            "/v1/proposals",
            json={
                "kind": "shell",
                "targets": ["svc"],
                "environment": "staging",
                "intent": "a capsule that leaks",
                "parameters": {"argv": ["true"]},
            },
        )
        assert response.status_code == 201, response.text
        offer = self.b.post("/v1/runners/lease", json={"kinds": ["shell"]})
        assert offer.status_code == 200, offer.text
        body: dict[str, Any] = offer.json()
        assert body["proposal_id"] == response.json()["id"]
        return body

    def refusal(self, offer: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """runner-a's signed refusal of the offer's capsule."""
        payload = json.loads(base64.b64decode(offer["capsule"]["payload"]))
        said = unstarted_execution_statement(
            Assignment(
                proposal_id=offer["proposal_id"],
                proposal_digest=payload["proposal_digest"],
                runner=self.ref_a,
                lease_id=offer["lease_id"],
                fencing_token=offer["fencing_token"],
                capsule_digest=capsule_digest(offer["capsule"]),
            ),
            kind="shell",
            argv=[],
            error=f"capsule refused: it is for runner {payload['runner_id']}",
            at=utc_now(),
        )
        said["predicate"].update(changes)
        return self.key_a.sign_statement(said)


@pytest.fixture(scope="module")
def edges(world: World) -> Iterator[Edges]:
    made = Edges(world)
    yield made
    made.close()


def test_a_refusal_is_recorded_once_and_fails_the_proposal(edges: Edges) -> None:
    offer = edges.leased_to_b()
    envelope = edges.refusal(offer)
    first = edges.a.post(REFUSALS, json={"envelope": envelope})
    assert first.status_code == 200, first.text
    assert first.json() == {
        "state": "failed",
        "lease_id": offer["lease_id"],
        "proposal_id": offer["proposal_id"],
        "lease_status": "misdirected",
    }
    again = edges.a.post(REFUSALS, json={"envelope": envelope})
    assert (again.status_code, again.json()) == (200, first.json())
    proposal = edges.human.get(f"/v1/proposals/{offer['proposal_id']}").json()
    assert proposal["state"] == "failed"
    assert proposal["reason"].startswith("capsule misdirected:")
    beat = edges.b.post(
        f"/v1/runners/leases/{offer['lease_id']}/heartbeat",
        json={"fencing_token": offer["fencing_token"]},
    )
    assert beat.status_code == 409
    assert "misdirected" in beat.json()["detail"]


@pytest.mark.parametrize(
    ("changes", "status", "field"),
    [
        ({"argv": ["true"]}, 422, "envelope.predicate.argv"),
        ({"ok": True}, 422, "envelope.predicate.error"),
        ({"capsule_digest": "0" * 64}, 422, "envelope.predicate.capsule_digest"),
        ({"lease_id": "L-NOPE"}, 404, None),
    ],
)
def test_bad_refusals_get_problem_json_naming_the_field(
    edges: Edges, changes: dict[str, Any], status: int, field: str | None
) -> None:
    offer = edges.leased_to_b()
    response = edges.a.post(REFUSALS, json={"envelope": edges.refusal(offer, **changes)})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    if field is not None:
        assert problem["detail"].startswith(field + ":"), problem
    # Nothing changed: runner-1 still holds the lease (and ends it, failing the proposal).
    proposal = edges.human.get(f"/v1/proposals/{offer['proposal_id']}").json()
    assert proposal["state"] == "executing"
    fine = edges.a.post(REFUSALS, json={"envelope": edges.refusal(offer)})
    assert fine.status_code == 200, fine.text


def test_a_body_without_an_envelope_and_callers_who_are_not_runners_are_refused(
    edges: Edges,
) -> None:
    response = edges.a.post(REFUSALS, json={})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("envelope:")
    offer = edges.leased_to_b()
    human = edges.human.post(REFUSALS, json={"envelope": edges.refusal(offer)})
    assert human.status_code == 403
    assert edges.a.post(REFUSALS, json={"envelope": edges.refusal(offer)}).status_code == 200
