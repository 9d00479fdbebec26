"""The runner's action kinds run for real: programs, git checkouts and a local HTTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from placet.runners.actions import ActionContext, all_kinds
from placet.runners.actions.git_patch import GitPatchAction, in_scope, touched_paths
from placet.runners.actions.http_kind import HttpAction, url_allowed
from placet.runners.actions.shell_kind import ShellAction

from .gitrepo import diff_of, git, make_repo
from .helpers import python
from .localhttp import local_http

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def context(tmp_path: Path, **options: Any) -> ActionContext:
    return ActionContext(workdir=tmp_path.resolve(), **options)


# ---- shell ------------------------------------------------------------------------------


def test_shell_sets_only_allowed_env_names(tmp_path: Path) -> None:
    argv = python("import os; print(os.environ['DEPLOY_TARGET'])")
    ctx = context(tmp_path, allow_env=frozenset({"DEPLOY_TARGET"}))
    outcome = ShellAction().run({"argv": argv, "env": {"DEPLOY_TARGET": "blue"}}, ctx)
    assert outcome.ok and outcome.stdout == b"blue\n"
    refused = ShellAction().run({"argv": argv, "env": {"OTHER": "x"}}, ctx)
    assert not refused.ok and not refused.started
    assert "env.OTHER is not in the runner's env allow-list" in (refused.error or "")


def test_shell_with_no_allow_list_refuses_any_env(tmp_path: Path) -> None:
    outcome = ShellAction().run(
        {"argv": python("pass"), "env": {"DEPLOY_TARGET": "blue"}}, context(tmp_path)
    )
    assert not outcome.ok and "allowed: none" in (outcome.error or "")


def test_shell_cwd_outside_the_workdir_is_refused(tmp_path: Path) -> None:
    marker = tmp_path.parent / "escaped.txt"
    argv = python("import pathlib; pathlib.Path('escaped.txt').touch()")
    outcome = ShellAction().run({"argv": argv, "cwd": ".."}, context(tmp_path))
    assert not outcome.ok and "outside the runner's working directory" in (outcome.error or "")
    assert not marker.exists()


def test_shell_timeout_is_reported(tmp_path: Path) -> None:
    argv = python("import time; time.sleep(30)")
    outcome = ShellAction().run({"argv": argv, "timeout": 0.3}, context(tmp_path))
    assert outcome.timed_out and not outcome.ok and outcome.exit_code is None


# ---- git-patch --------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "work" / "checkout"
    return path, make_repo(path)


def test_a_patch_inside_scope_applies_and_the_command_runs(repo: tuple[Path, str]) -> None:
    path, head = repo
    patch = diff_of(path, {"src/app.txt": "version = 2\n"})
    command = python("import pathlib; print(pathlib.Path('src/app.txt').read_text().strip())")
    ctx = context(path.parent, scope=("src/",))
    outcome = GitPatchAction().run(
        {"repo": "checkout", "base": head, "patch": patch, "command": command}, ctx
    )
    assert outcome.ok, outcome.error
    assert (path / "src" / "app.txt").read_text() == "version = 2\n"
    assert outcome.stdout == b"version = 2\n"
    assert outcome.argv == tuple(command)
    assert outcome.patch_sha256 and len(outcome.patch_sha256) == 64
    assert outcome.details["paths"] == ["src/app.txt"]


def test_a_patch_outside_scope_is_refused_and_changes_nothing(repo: tuple[Path, str]) -> None:
    path, head = repo
    patch = diff_of(path, {"src/app.txt": "version = 2\n", "docs/readme.md": "bye\n"})
    ctx = context(path.parent, scope=("src",))
    outcome = GitPatchAction().run({"repo": "checkout", "base": head, "patch": patch}, ctx)
    assert not outcome.ok and not outcome.started
    assert "'docs/readme.md', outside the proposal's scope (src)" in (outcome.error or "")
    assert (path / "src" / "app.txt").read_text() == "version = 1\n"
    assert git(path, "status", "--porcelain") == ""


def test_a_patch_with_no_declared_scope_is_refused(repo: tuple[Path, str]) -> None:
    path, head = repo
    patch = diff_of(path, {"src/app.txt": "version = 2\n"})
    outcome = GitPatchAction().run(
        {"repo": "checkout", "base": head, "patch": patch}, context(path.parent)
    )
    assert not outcome.ok and "scope (nothing)" in (outcome.error or "")


def test_a_patch_at_another_base_is_refused(repo: tuple[Path, str]) -> None:
    path, first = repo
    (path / "src" / "app.txt").write_text("version = 1.5\n")
    git(path, "commit", "-q", "-am", "moved on")
    patch = diff_of(path, {"src/app.txt": "version = 2\n"})
    outcome = GitPatchAction().run(
        {"repo": "checkout", "base": first, "patch": patch}, context(path.parent, scope=("src",))
    )
    assert not outcome.ok
    assert f"base commit {first} is not the checkout's HEAD" in (outcome.error or "")
    assert (path / "src" / "app.txt").read_text() == "version = 1.5\n"


def test_a_rename_counts_both_paths_against_scope(repo: tuple[Path, str]) -> None:
    path, head = repo
    patch = (
        "diff --git a/src/app.txt b/docs/app.txt\n"
        "similarity index 100%\n"
        "rename from src/app.txt\n"
        "rename to docs/app.txt\n"
    )
    outcome = GitPatchAction().run(
        {"repo": "checkout", "base": head, "patch": patch}, context(path.parent, scope=("src",))
    )
    assert not outcome.ok and "'docs/app.txt', outside" in (outcome.error or "")
    assert (path / "src" / "app.txt").exists()


def test_a_repo_outside_the_workdir_is_refused(repo: tuple[Path, str], tmp_path: Path) -> None:
    path, head = repo
    patch = diff_of(path, {"src/app.txt": "version = 2\n"})
    inner = tmp_path / "work" / "inner"
    inner.mkdir()
    outcome = GitPatchAction().run(
        {"repo": "../checkout", "base": head, "patch": patch}, context(inner, scope=("src",))
    )
    assert not outcome.ok and "outside the runner's working directory" in (outcome.error or "")


def test_numstat_parsing_and_scope_matching() -> None:
    assert touched_paths(b"1\t1\tsrc/a.py\x000\t0\t\x00old/x\x00new/x\x00-\t-\tbin.dat\x00") == [
        "src/a.py",
        "old/x",
        "new/x",
        "bin.dat",
    ]
    assert in_scope("src/a.py", ["src"]) and in_scope("src/a.py", ["./src/"])
    assert not in_scope("srcx/a.py", ["src"])
    assert in_scope("docs/x.md", ["docs/*.md"]) and not in_scope("docs/x.txt", ["docs/*.md"])
    assert not in_scope("a.py", ["service:checkout"])


# ---- http -------------------------------------------------------------------------------


def test_http_inside_the_allow_list_is_sent_and_2xx_is_ok(tmp_path: Path) -> None:
    with local_http() as local:
        ctx = context(tmp_path, allow_urls=(local.url + "/api",))
        outcome = HttpAction().run(
            {
                "method": "POST",
                "url": local.url + "/api/restart",
                "headers": {"X-Change": "42"},
                "body": {"service": "checkout"},
            },
            ctx,
        )
        assert outcome.ok and outcome.http_status == 200
        method, path, headers, body = local.seen.requests[0]
        assert (method, path, headers["X-Change"]) == ("POST", "/api/restart", "42")
        assert json.loads(body) == {"service": "checkout"}
        assert outcome.stdout.startswith(b"POST /api/restart -> 200")


def test_http_non_2xx_fails_with_its_status(tmp_path: Path) -> None:
    with local_http() as local:
        outcome = HttpAction().run(
            {"url": local.url + "/status/500"}, context(tmp_path, allow_urls=(local.url,))
        )
        assert not outcome.ok and outcome.http_status == 500
        assert outcome.error == "the server answered 500"


def test_http_outside_the_allow_list_is_refused_and_never_sent(tmp_path: Path) -> None:
    with local_http() as local:
        outcome = HttpAction().run(
            {"url": local.url + "/admin"}, context(tmp_path, allow_urls=(local.url + "/api",))
        )
        assert not outcome.ok and not outcome.started
        assert "not under the runner's URL allow-list" in (outcome.error or "")
        empty = HttpAction().run({"url": local.url + "/api"}, context(tmp_path))
        assert "allowed: none" in (empty.error or "")
        assert local.seen.requests == []


def test_url_prefixes_match_at_boundaries() -> None:
    allowed = ["https://api.example.com", "http://10.0.0.1:8080/svc/"]
    assert url_allowed("https://api.example.com/v1/x", allowed)
    assert url_allowed("https://API.example.com?x=1", allowed)
    assert not url_allowed("https://api.example.com.evil.net/", allowed)
    assert not url_allowed("https://api.example.comx", allowed)
    assert url_allowed("http://10.0.0.1:8080/svc/restart", allowed)
    assert not url_allowed("http://10.0.0.1:8080/svcx", allowed)
    assert not url_allowed("http://10.0.0.1:8080/svc", allowed)


# ---- registry and plugins ---------------------------------------------------------------


def test_built_in_kinds_declare_idempotency() -> None:
    kinds = all_kinds()
    assert [kinds[name].idempotent for name in ("shell", "git-patch", "http")] == [False] * 3


def test_a_plugin_on_the_path_is_a_kind_for_runner_and_control_plane(tmp_path: Path) -> None:
    code = (
        "import json\n"
        "from placet.domain import actions\n"
        "from placet.domain.errors import InputError\n"
        "from placet.runners.actions import all_kinds\n"
        "kind = actions.get('write-note')\n"
        "try:\n"
        "    kind.check({'name': 'a/b', 'text': 'x'})\n"
        "    problem = None\n"
        "except InputError as exc:\n"
        "    problem = str(exc)\n"
        "print(json.dumps({'runner': list(all_kinds()), 'idempotent': kind.idempotent,"
        " 'problem': problem}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    said = json.loads(done.stdout)
    assert said["runner"] == ["shell", "git-patch", "http", "write-note"]
    assert said["idempotent"] is True
    assert "name must be a plain file name" in said["problem"]


def test_without_the_plugin_its_kind_is_unknown() -> None:
    code = (
        "from placet.domain import actions\n"
        "from placet.domain.errors import InputError\n"
        "try:\n"
        "    actions.get('write-note')\n"
        "except InputError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "unknown action kind 'write-note'" in done.stdout
