"""Real git checkouts and patches for the git-patch tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; its stdout."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env=GIT_ENV,
        check=True,
    )
    return done.stdout


def make_repo(path: Path) -> str:
    """A repository at ``path`` with src/app.txt and docs/readme.md committed; its HEAD id."""
    (path / "src").mkdir(parents=True)
    (path / "docs").mkdir()
    (path / "src" / "app.txt").write_text("version = 1\n")
    (path / "docs" / "readme.md").write_text("hello\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "start")
    return git(path, "rev-parse", "HEAD").strip()


def diff_of(repo: Path, edits: dict[str, str]) -> str:
    """The unified diff (git format) that ``edits`` make, leaving the checkout unchanged."""
    old = {name: (repo / name).read_text() for name in edits if (repo / name).exists()}
    for name, text in edits.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-N", ".")
    patch = git(repo, "diff")
    for name in edits:
        if name in old:
            (repo / name).write_text(old[name])
        else:
            git(repo, "rm", "-q", "--cached", name)
            (repo / name).unlink()
    return patch
