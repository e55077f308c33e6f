"""``zetta``: run specs, list what can be built, and other tools.

Kept light at import: ``zetta --help`` must not import torch or the storage libraries.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

logger = logging.getLogger("zetta_utils")


class _State:
    debug = False
    resume_hint: str | None = None  # what to tell the user when the run stops early


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("botocore", "urllib3", "google", "tensorstore", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug logs).")
@click.version_option(package_name="zetta_utils", prog_name="zetta")
def cli(debug: bool, verbose: int) -> None:
    """zetta_utils: chunkwise processing of petascale 3D volumes.

    Write a spec (CUE, JSON or YAML) and `zetta run` it.
    """
    _State.debug = _State.debug or debug or bool(os.environ.get("ZETTA_DEBUG"))
    _setup_logging(verbose)
    from zetta_utils.mazepa.worker_process import tune_malloc

    tune_malloc()


@cli.command()
@click.argument("spec_path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-p",
    "--parallel",
    "num_procs",
    type=click.IntRange(min=1),
    default=None,
    help="Run tasks in N local worker processes (default: as the spec says, else 1).",
)
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option(
    "--fresh",
    is_flag=True,
    help="Start over: forget the tasks an earlier, unfinished run of this spec completed.",
)
def run(spec_path: str, num_procs: int | None, debug: bool, fresh: bool) -> None:
    """Build the spec in SPEC_PATH and run it.

    The spec's root is usually `"@type": "mazepa.execute"`; a root that builds to a flow or
    task is executed as if it were wrapped in one.

    A run that stops early (Ctrl-C, a failure, a crash) is resumed by running the same spec
    again: the tasks it finished are skipped. A changed spec, or --fresh, starts over.
    """
    _State.debug = _State.debug or debug
    from zetta_utils import builder, parsing
    from zetta_utils.cli.resume import ResumeState

    if num_procs is not None and num_procs > 1:
        # the workers' imports (torch, TensorStore, ...) happen in the fork server meanwhile
        from zetta_utils.mazepa.local_pool import start_fork_server

        start_fork_server()
    spec = parsing.load_spec_file(spec_path)
    if not isinstance(spec, dict):
        raise click.UsageError(
            f"{spec_path}: the spec's root must be a struct with '@type', got {type(spec).__name__}"
        )
    state = ResumeState.open(spec, spec_path, fresh=fresh)
    try:
        completed = _run_spec(
            spec, builder, num_procs, str(state.checkpoint) if state.active else None
        )
    except BaseException:
        _State.resume_hint = state.resume_hint(spec_path) if state.active else None
        state.release()
        raise
    state.finish(completed)


def _run_spec(
    spec: dict[str, Any], builder: Any, num_procs: int | None, checkpoint: str | None
) -> bool:
    """Build and run ``spec``; whether it completed (False: failures left work undone)."""
    from zetta_utils import mazepa

    with mazepa.execution_defaults(num_procs=num_procs, checkpoint=checkpoint):
        result = builder.build(spec)
        if isinstance(result, (mazepa.Flow, mazepa.Task)):
            result = mazepa.execute(result)
    if isinstance(result, mazepa.ExecutionSummary):
        click.echo(result.sentence(), err=True)  # counts the tasks a resumed run skipped
        return result.completed
    if result is not None:
        logger.info("spec built: %s", _short_repr(result))
    return True


def _short_repr(obj: Any, limit: int = 300) -> str:
    text = repr(obj)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@cli.command("show-registry")
@click.argument("pattern", required=False)
@click.option(
    "--signatures/--no-signatures",
    default=False,
    help="One line per registration, `NAME [VERSIONS](SIGNATURE)`, for scripts.",
)
def show_registry(pattern: str | None, signatures: bool) -> None:
    """List the types a spec can name with "@type": each with its description and arguments.

    With PATTERN, those whose name contains it (any case); a PATTERN that is a type's exact
    name shows that type in full: its signature, and each argument's default and doc.
    """
    from zetta_utils import builder
    from zetta_utils.cli import registry_help

    names = sorted(builder.REGISTRY)
    exact = [n for n in names if pattern is not None and n == pattern] or [
        n for n in names if pattern is not None and n.lower() == pattern.lower()
    ]
    matching = [n for n in names if not pattern or pattern.lower() in n.lower()]
    if not matching:
        close = registry_help.close_names(pattern or "", names)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise click.ClickException(
            f"no registered type matches {pattern!r}{hint} (`zetta show-registry` lists them all)"
        )
    if signatures:
        for name in matching:
            for entry in builder.REGISTRY[name]:
                versions = f" [{entry.versions}]" if str(entry.versions) else ""
                click.echo(f"{name}{versions}{registry_help.signature_line(entry.fn)}")
        return
    if exact:
        name = exact[0]
        click.echo(
            "\n\n".join(registry_help.describe_entry(name, e) for e in builder.REGISTRY[name])
        )
        others = [n for n in matching if n != name]
        if others:
            click.echo(f"\nAlso matching {pattern!r}: {', '.join(others)}")
        return
    for name in matching:
        for entry in builder.REGISTRY[name]:
            click.echo("\n".join(registry_help.list_line(name, entry)))
    if pattern is None:
        click.echo(f"\n{len(matching)} types. `zetta show-registry NAME` shows one in full.")


def _register_commands() -> None:
    # Each module keeps its heavy imports inside the commands, so `zetta --help` stays fast.
    from zetta_utils.cli.demo import demo_data, show
    from zetta_utils.cli.remote import gc, worker

    for command in (demo_data, show, worker, gc):
        cli.add_command(command)


_register_commands()


def _cause_of_type(e: BaseException, type_name: str) -> BaseException | None:
    """The first exception named ``type_name`` in ``e``'s cause chain (builder errors wrap the
    errors of what they build)."""
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        if type(current).__name__ == type_name:
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _echo_resume_hint() -> None:
    if _State.resume_hint:
        click.echo(_State.resume_hint, err=True)


def _with_notes(e: BaseException) -> str:
    """``str(e)`` followed by its notes (e.g. where the dead-letter report is)."""
    notes = [str(n) for n in getattr(e, "__notes__", ())]
    return "\n".join([str(e).rstrip("\n"), *notes])


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI, turning spec errors into short messages and exit codes
    (2: bad spec, found while building it, before anything ran; 1: the run failed: tasks failed
    or were dead-lettered, or something broke while it ran; 130: interrupted)."""
    try:
        cli.main(args=argv, prog_name="zetta", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        _echo_resume_hint()
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted: the run was cancelled.", err=True)
        _echo_resume_hint()
        sys.exit(130)
    except Exception as e:
        code = _report(e)
        if code is None:
            raise  # not a spec or run error: Python's own report (exit code 1)
        sys.exit(code)


_DEBUG_HINT = "(run with --debug for the full traceback)"


def _report(e: Exception) -> int | None:
    """Print what went wrong, shortly (with --debug: the full traceback first, and the whole of
    each failed task's); the exit code, the same with or without --debug; None when ``e`` is not
    an error of the spec or of the run."""
    from zetta_utils.builder import BuilderError
    from zetta_utils.mazepa.exceptions import ExecutionError
    from zetta_utils.mazepa.interrupts import raised_while_running
    from zetta_utils.parsing import SpecFileError

    debug = _State.debug
    if _cause_of_type(e, "KeyboardInterrupt") is not None:
        _print_traceback(e, debug)
        click.echo("Interrupted: the run was cancelled.", err=True)
        _echo_resume_hint()
        return 130
    failure = _cause_of_type(e, "ExecutionError")
    if isinstance(failure, ExecutionError):
        _print_traceback(e, debug)
        notes = [str(n) for n in getattr(failure, "__notes__", ())]
        text = "\n".join([failure.describe(full=debug).rstrip("\n"), *notes])
        click.echo(f"Error: the run failed.\n{text}", err=True)
        _echo_resume_hint()
        return 1
    if raised_while_running(e):
        _print_traceback(e, debug)
        cause = e.__cause__ if isinstance(e, BuilderError) and e.__cause__ is not None else e
        click.echo(f"Error: the run failed: {type(cause).__name__}: {_with_notes(cause)}", err=True)
        if not debug:
            click.echo(_DEBUG_HINT, err=True)
        _echo_resume_hint()
        return 1
    if isinstance(e, (BuilderError, SpecFileError)) or _cause_of_type(e, "CueError") is not None:
        _print_traceback(e, debug)
        click.echo(f"Error: {e}", err=True)
        details = getattr(e, "details", "")
        if debug and details:
            click.echo(details, err=True)
        if not debug:
            click.echo(_DEBUG_HINT, err=True)
        return 2
    return None


def _print_traceback(e: BaseException, debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exception(e, file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    main()
