"""The ``placet`` command: Typer app and the one place errors become exit codes."""

from __future__ import annotations

import sys

import typer

from placet.cli import (
    cmd_admin,
    cmd_evidence,
    cmd_graph,
    cmd_notifications,
    cmd_policy,
    cmd_proposals,
    cmd_runner,
    demo,
)
from placet.domain.errors import (
    Conflict,
    Forbidden,
    IllegalTransition,
    InputError,
    NotFound,
    NotInitialised,
    PlacetError,
    Unauthenticated,
)
from placet.domain.signing import SignatureError
from placet.service.client import ApiError, ServerError

# Typer vendors Click; its usage errors derive from the vendored ClickException.
CLICK_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)

# Errors that mean "your request is wrong": one line, exit 2 (others exit 1).
CALLER_ERRORS = (
    InputError,
    Forbidden,
    NotFound,
    Conflict,
    IllegalTransition,
    Unauthenticated,
    SignatureError,
)

app = typer.Typer(
    name="placet",
    help="placet: agents propose, policy and named humans decide, runners execute, "
    "evidence verifies offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
cmd_admin.register(app)
cmd_proposals.register(app)
cmd_evidence.register(app)
cmd_graph.register(app)
cmd_runner.register(app)
cmd_policy.register(app)
cmd_notifications.register(app)
demo.register(app)


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; caller mistakes exit 2 with one line, our failures exit 1."""
    try:
        result = app(args=argv, standalone_mode=False)
    except typer.Abort:
        _fail("aborted", 1)
    except CLICK_ERROR as exc:  # usage errors: unknown option, missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: show its help
            sys.stdout.write(getattr(exc, "format_message", exc.__str__)() + "\n")
            sys.exit(0)
        message = getattr(exc, "format_message", exc.__str__)()
        _fail(message.replace("\n", " "), int(getattr(exc, "exit_code", 2)))
    except ApiError as exc:
        _fail(str(exc), 2 if 400 <= exc.status < 500 else 1)
    except (ServerError, NotInitialised) as exc:
        _fail(str(exc), 1 if isinstance(exc, ServerError) else 2)
    except CALLER_ERRORS as exc:
        _fail(str(exc), 2)
    except PlacetError as exc:  # our failure, not the caller's
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    if isinstance(result, int) and result:
        sys.exit(result)


if __name__ == "__main__":
    main()
