"""Running one program: exit codes, timeouts that kill a process group, caps, no shell."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from pathlib import Path

import pytest

from placet.runners.shell import child_environment, not_started, run

from .helpers import python, wait_gone

SPAWN_GRANDCHILD = """
import signal, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(f"{__import__('os').getpid()} {child.pid}")
__import__('os').replace(sys.argv[1] + ".tmp", sys.argv[1])
if sys.argv[2] == "wait":
    signal.pause()
"""


def read_pids(path: Path) -> tuple[int, int]:
    parent, child = path.read_text().split()
    return int(parent), int(child)


def test_a_successful_program_reports_exit_zero_and_its_output(tmp_path: Path) -> None:
    result = run(python("import sys; print('out'); print('err', file=sys.stderr)"), cwd=tmp_path)
    assert result.ok
    assert result.exit_code == 0
    assert (result.stdout, result.stderr) == (b"out\n", b"err\n")
    assert result.stdout_sha256 == hashlib.sha256(b"out\n").hexdigest()
    assert result.stderr_sha256 == hashlib.sha256(b"err\n").hexdigest()
    assert (result.stdout_bytes, result.stderr_bytes) == (4, 4)
    assert result.started_at <= result.finished_at
    assert result.started_at.tzinfo is not None
    assert not result.timed_out and result.error is None


@pytest.mark.parametrize("code", [1, 3, 255])
def test_a_failing_program_reports_its_exit_code(tmp_path: Path, code: int) -> None:
    result = run(python(f"import sys; sys.exit({code})"), cwd=tmp_path)
    assert result.exit_code == code
    assert not result.ok


def test_a_program_killed_by_a_signal_has_a_negative_exit_code(tmp_path: Path) -> None:
    result = run(python("import os, signal; os.kill(os.getpid(), signal.SIGTERM)"), cwd=tmp_path)
    assert result.exit_code == -15
    assert not result.ok and not result.timed_out


def test_runs_in_the_given_directory(tmp_path: Path) -> None:
    result = run(python("import os; print(os.getcwd())"), cwd=tmp_path)
    assert Path(result.stdout.decode().strip()).resolve() == tmp_path.resolve()


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    result = run(python(SPAWN_GRANDCHILD, str(pids), "wait"), cwd=tmp_path, timeout=3)
    assert result.timed_out
    assert result.exit_code is None
    assert not result.ok
    assert result.error == "timed out after 3 s"
    parent, grandchild = read_pids(pids)
    assert wait_gone(parent)
    assert wait_gone(grandchild)


def test_children_left_behind_by_a_finished_program_are_killed(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    result = run(python(SPAWN_GRANDCHILD, str(pids), "exit"), cwd=tmp_path, timeout=600)
    assert result.ok
    _, grandchild = read_pids(pids)
    assert wait_gone(grandchild)


def test_cancel_stops_the_program(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    result = run(python("import signal; signal.pause()"), cwd=tmp_path, cancel=cancel)
    assert result.cancelled
    assert result.exit_code is None
    assert not result.ok


def test_a_missing_program_is_an_error_not_an_exception(tmp_path: Path) -> None:
    result = run(["placet-no-such-program-xyz", "--help"], cwd=tmp_path)
    assert result.error == "program not found: placet-no-such-program-xyz"
    assert result.exit_code is None
    assert not result.ok


def test_a_file_that_is_not_executable_is_an_error(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    result = run([str(script)], cwd=tmp_path)
    assert result.error == f"program is not executable: {script}"


def test_a_missing_working_directory_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run(python("print('never')"), cwd=missing)
    assert result.error == f"working directory {missing} does not exist"
    assert result.stdout_bytes == 0
    assert not result.ok


def test_a_file_as_working_directory_is_an_error(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    assert run(["true"], cwd=file).error == f"working directory {file} is not a directory"


def test_output_beyond_the_cap_is_counted_and_hashed_but_not_kept(tmp_path: Path) -> None:
    size = 3 * 1024 * 1024
    result = run(python(f"import sys; sys.stdout.buffer.write(b'ab' * {size // 2})"), cwd=tmp_path)
    assert result.ok
    assert len(result.stdout) == 1024 * 1024
    assert result.stdout_bytes == size
    assert result.stdout_truncated and not result.stderr_truncated
    assert result.stdout_sha256 == hashlib.sha256(b"ab" * (size // 2)).hexdigest()


def test_a_small_cap_applies_to_stderr_too(tmp_path: Path) -> None:
    result = run(python("import sys; sys.stderr.write('x' * 100)"), cwd=tmp_path, cap=10)
    assert result.stderr == b"x" * 10
    assert result.stderr_bytes == 100


def test_arguments_are_never_interpreted_by_a_shell(tmp_path: Path) -> None:
    argv = python("import sys; print(sys.argv[1:])", "$HOME", "; echo hi", "`id`", "*")
    result = run(argv, cwd=tmp_path)
    assert result.stdout.decode().strip() == "['$HOME', '; echo hi', '`id`', '*']"


def test_stdin_is_at_end_of_file(tmp_path: Path) -> None:
    result = run(python("import sys; print(repr(sys.stdin.read()))"), cwd=tmp_path, timeout=10)
    assert result.stdout == b"''\n"


def test_placet_variables_are_not_passed_to_the_program(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PLACET_RUNNER_TOKEN": "s3cret", "KEEP": "yes"}
    code = "import os; print(sorted(k for k in os.environ if k in ('PLACET_RUNNER_TOKEN', 'KEEP')))"
    result = run(python(code), cwd=tmp_path, env=env)
    assert result.stdout == b"['KEEP']\n"
    assert child_environment({"placet_x": "1", "A": "2"}) == {"A": "2"}


def test_the_result_does_not_carry_the_environment(tmp_path: Path) -> None:
    names = {field.name for field in dataclasses.fields(run(["true"], cwd=tmp_path))}
    assert not {"env", "environ", "environment"} & names


def test_not_started_results_fail_with_their_reason(tmp_path: Path) -> None:
    result = not_started(["x"], "../up", "cwd '../up' is outside")
    assert not result.ok
    assert result.error == "cwd '../up' is outside"
    assert result.stdout_sha256 == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("argv", [[], [""], "echo hi", [1]])
def test_a_bad_argv_is_a_programming_error(tmp_path: Path, argv: object) -> None:
    with pytest.raises(ValueError, match="argv"):
        run(argv, cwd=tmp_path)  # type: ignore[arg-type]


def test_a_non_positive_timeout_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timeout"):
        run(["true"], cwd=tmp_path, timeout=0)
