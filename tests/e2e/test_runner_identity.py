"""Runner identity with real processes: init on the runner's host, an admin registers it,
the runner trusts the control-plane key on first use and refuses a different one later."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from placet.domain.signing import PublicKey, SigningKey
from tests.conftest import Server, Tokens, cli

from .test_loop import TERMINAL, shell, wait_state


def runner_cli(server: Server, token: str, state: Path, work: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "placet", "runner", "--server", server.url, "--token", token,
        "--dir", str(state), "--workdir", str(work), "--poll-interval", "0.1",
        "--lease-wait", "1", "--log-level", "warning", *extra,
    ]  # fmt: skip


def test_init_register_and_trust_on_first_use(
    server: Server, tokens: Tokens, tmp_path: Path
) -> None:
    state, work = tmp_path / "edge", tmp_path / "work"
    work.mkdir()
    made = cli("runner", "init", "--dir", str(state), "--json")
    assert made.returncode == 0, made.stderr
    init = json.loads(made.stdout)
    assert init["created"] is True
    assert stat.S_IMODE((state / "runner.key").stat().st_mode) == 0o600
    public = PublicKey.from_text((state / "runner.pub").read_text())
    assert public.b64 == init["public_key"] and public.keyid == init["keyid"]

    no_owner = cli(
        "runner", "register", "edge-1", "--key", str(state / "runner.pub"),
        "--server", server.url, "--token", tokens.admin,
    )  # fmt: skip
    assert no_owner.returncode == 2 and "--owner: is required" in no_owner.stderr
    as_agent = cli(
        "runner", "register", "edge-1", "--key", str(state / "runner.pub"), "--owner", "olivia",
        "--server", server.url, "--token", tokens.agent,
    )  # fmt: skip
    assert as_agent.returncode == 2 and "may not POST /v1/runners" in as_agent.stderr
    registered = cli(
        "runner", "register", "edge-1", "--key", str(state / "runner.pub"), "--owner", "olivia",
        "--labels", "env=staging,region=eu", "--server", server.url, "--token", tokens.admin,
        "--json",
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    answer = json.loads(registered.stdout)
    assert set(answer) == {"id", "name", "token"} and answer["name"] == "edge-1"

    env = {k: v for k, v in os.environ.items() if not k.startswith("PLACET_")}
    agent = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens.agent}"})
    human = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens.human}"})
    process = subprocess.Popen(
        runner_cli(server, answer["token"], state, work), env=env, stderr=subprocess.PIPE
    )
    try:
        marker = work / "ran"
        body = shell("staging", [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('1')"])
        proposal = agent.post("/v1/proposals", json=body).json()
        assert wait_state(human, proposal["id"], TERMINAL)["state"] == "succeeded"
        assert marker.read_text() == "1"
    finally:
        process.terminate()
        process.wait(timeout=30)
    trusted = PublicKey.from_text((state / "control-plane.pub").read_text())
    server_key = PublicKey.from_text((server.data_dir / "keys" / "control-plane.pub").read_text())
    assert trusted == server_key
    assert (state / "nonces.sqlite").is_file()

    # The admin-registered key cannot be swapped by whoever holds the runner's token.
    swap = httpx.post(
        f"{server.url}/v1/runners/register",
        headers={"Authorization": f"Bearer {answer['token']}"},
        json={"public_key": SigningKey.generate().public.b64, "kinds": ["shell"]},
    )
    assert swap.status_code == 409 and "registered by an admin" in swap.text

    # Later the server presents another key than the one trusted first: refused, fatal.
    (state / "control-plane.pub").write_text(SigningKey.generate().public.b64 + "\n")
    refused = subprocess.run(
        runner_cli(server, answer["token"], state, work, "--once"),
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "do not include the pinned key" in refused.stderr


def test_register_on_the_local_data_dir_and_serve_lease_seconds(
    data_dir: Path, tokens: Tokens, tmp_path: Path
) -> None:
    key = SigningKey.generate()
    pub = tmp_path / "runner.pub"
    pub.write_text(key.public.b64 + "\n")
    done = cli(
        "runner", "register", "edge-local", "--key", str(pub), "--owner", "olivia",
        "--labels", "env=production", "--data-dir", str(data_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "labels env=production" in done.stdout and "token " in done.stdout
    relabelled = cli(
        "runner", "labels", "edge-local", "--labels", "env=production,region=eu",
        "--data-dir", str(data_dir),
    )  # fmt: skip
    assert relabelled.returncode == 0, relabelled.stderr
    assert "runner edge-local: labels env=production,region=eu" in relabelled.stdout
    bad = cli("serve", "--data-dir", str(data_dir), "--lease-seconds", "0")
    assert bad.returncode == 2 and "--lease-seconds" in bad.stderr


def test_an_admin_changes_a_running_runners_labels_and_its_next_capsule_follows_them(
    server: Server, tokens: Tokens, tmp_path: Path
) -> None:
    state, work = tmp_path / "edge", tmp_path / "work"
    work.mkdir()
    assert cli("runner", "init", "--dir", str(state)).returncode == 0
    registered = cli(
        "runner", "register", "edge-labels", "--key", str(state / "runner.pub"),
        "--owner", "olivia", "--labels", "env=staging", "--server", server.url,
        "--token", tokens.admin, "--json",
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    token = json.loads(registered.stdout)["token"]
    as_agent = cli(
        "runner", "labels", "edge-labels", "--labels", "site=lab",
        "--server", server.url, "--token", tokens.agent,
    )  # fmt: skip
    assert as_agent.returncode == 2 and "may not PUT /v1/runners/{name}/labels" in as_agent.stderr
    unknown = cli(
        "runner", "labels", "no-such-runner", "--labels", "site=lab",
        "--server", server.url, "--token", tokens.admin,
    )  # fmt: skip
    assert unknown.returncode != 0 and "no-such-runner" in unknown.stderr
    bad = cli(
        "runner", "labels", "edge-labels", "--labels", "site",
        "--server", server.url, "--token", tokens.admin,
    )  # fmt: skip
    assert bad.returncode == 2 and "--labels" in bad.stderr

    env = {k: v for k, v in os.environ.items() if not k.startswith("PLACET_")}
    agent = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens.agent}"})
    human = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens.human}"})
    process = subprocess.Popen(
        runner_cli(server, token, state, work, "--slots", "2"), env=env, stderr=subprocess.PIPE
    )
    try:
        changed = cli(
            "runner", "labels", "edge-labels", "--labels", "env=staging,site=lab-7",
            "--server", server.url, "--token", tokens.admin, "--json",
        )  # fmt: skip
        assert changed.returncode == 0, changed.stderr
        assert json.loads(changed.stdout)["labels"] == {"env": ["staging"], "site": ["lab-7"]}
        marker = work / "ran-in-lab"
        body = shell("staging", [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('1')"])
        body["parameters"]["runner_selector"] = {"site": "lab-7"}
        proposal = agent.post("/v1/proposals", json=body).json()
        final = wait_state(human, proposal["id"], TERMINAL)
        # The runner registered with env=staging only; it checks the capsule's selector
        # against the labels the lease was granted under, so it runs it.
        assert final["state"] == "succeeded", final
        assert marker.read_text() == "1"
    finally:
        process.terminate()
        process.wait(timeout=30)
