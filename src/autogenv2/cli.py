"""Command line (typer): every command and option. The everyday ones also run without it (quick.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from .errors import EXIT_BUG, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, AutogenError
from .quick import COMMANDS, SUMMARY, report_error, root_of

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help=SUMMARY)
console = Console(width=None if sys.stdout.isatty() else 160)
TRACEBACK = {"on": False}
SHORT_USAGE = ("usage: autogenv2 COMMAND [ARGS]...   (autogenv2 --help, autogenv2 COMMAND --help)\n"
               f"commands: {' '.join(COMMANDS)}\n")


@app.command(short_help=COMMANDS["run"])
def run(plan: Path = typer.Argument(..., metavar="PLAN", help="plan file (.toml or .json)"),
        watch: bool = typer.Option(False, "--watch", help="repeat passes until every job is done or failed"),
        interval: float = typer.Option(5.0, help="seconds between passes with --watch"),
        root: Path | None = typer.Option(None, help="where job directories live (default: plan's root)"),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="give failed elements another go"),
        wait: float = typer.Option(0.0, help="seconds to wait for another run holding the lock")) -> None:
    """Reconcile the plan with its job directories and take the next steps.

    Example: autogenv2 run examples/h2/plan.toml --watch
    """
    from . import display
    from .ensemble import reconcile_file, watch as watch_plan

    if watch:
        with display.Progress(console) as progress:
            report = watch_plan(plan, interval, progress.update, retry_failed=retry_failed, root=root)
        assert report.root is not None
        the_root = report.root
    else:
        report, the_root = reconcile_file(plan, root=root, retry_failed=retry_failed, wait=wait)
        display.print_pass(console, report)
    display.print_status(console, the_root, quiet_if_large=True)
    display.print_outcome(console, report)
    raise typer.Exit(report.exit_code)


@app.command(short_help=COMMANDS["status"])
def status(target: Path = typer.Argument(..., metavar="TARGET", help="plan file or root directory"),
           rescan: bool = typer.Option(False, "--rescan", help="re-read every status file into the index"),
           plain: bool = typer.Option(False, "--plain", help="plain text: counts, then elements not done"),
           show_all: bool = typer.Option(False, "--all", help="with --plain: every element")) -> None:
    """Table of every job element: state, attempts, energy ± error, scheduler state, reason.

    Example: autogenv2 status examples/h2/plan.toml
    """
    from . import quick

    raise typer.Exit(quick.status(target, rescan, plain, show_all))


@app.command(short_help=COMMANDS["results"])
def results(target: Path = typer.Argument(..., metavar="TARGET", help="plan file or root directory"),
            format: str = typer.Option("table", "--format", "-f", help="table, csv or json"),
            output: Path | None = typer.Option(None, "--output", "-o", help="write to this file")) -> None:
    """Energies and error bars of every element (one row each).

    Example: autogenv2 results examples/h2/plan.toml -f csv -o h2.csv
    """
    from . import quick

    raise typer.Exit(quick.results(target, format, output))


@app.command(short_help=COMMANDS["cancel"])
def cancel(plan: Path = typer.Argument(..., metavar="PLAN", help="plan file"),
           jobs: list[str] | None = typer.Argument(None, metavar="JOBS", help="job ids (default: all)"),
           wait: float = typer.Option(60.0, help="seconds to wait for a `run` holding the lock")) -> None:
    """Cancel the running attempts of jobs and mark them failed ("cancelled by user").

    Example: autogenv2 cancel plan.toml r1.40
    """
    from .cancel import cancel_jobs
    from .plan import load_plan

    for line in cancel_jobs(load_plan(plan), jobs or [], wait=wait):
        console.print(line, markup=False, highlight=False)


@app.command(short_help=COMMANDS["report"])
def report(target: Path = typer.Argument(..., metavar="TARGET", help="plan file or root directory"),
           out: Path | None = typer.Option(None, "--out",
                                           help="output directory (default: <root>/report)")) -> None:
    """PNG plots and one HTML page: timestep extrapolation, scans, twists, optimization, block traces.

    Example: autogenv2 report examples/h2_timestep/plan.toml
    """
    from .report import build_report

    root = root_of(target)
    written = build_report(root, out or root / "report")
    for path in written:
        console.print(str(path), markup=False, highlight=False)


@app.command(short_help=COMMANDS["inspect"])
def inspect(run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="a QWalk run directory"),
            run_id: str | None = typer.Option(None, "--run-id", help="only this run (input file name)"),
            stdout: Path | None = typer.Option(None, "--stdout", help="the run's captured stdout"),
            exit_code: int | None = typer.Option(None, "--exit-code", help="the run's exit code"),
            as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """The Reader's verdict on any QWalk run directory, made by autogenv2 or by hand.

    Example: autogenv2 inspect old_runs/h2_dmc --json
    """
    from .codes.qwalk.inspect import format_table, inspect_run

    if not run_dir.is_dir():
        raise AutogenError(f"{run_dir}: not a directory")
    report = inspect_run(run_dir, run_id=run_id, stdout=stdout, exit_code=exit_code)
    sys.stdout.write(json.dumps(report, indent=1) + "\n" if as_json else format_table(report) + "\n")


@app.command(short_help=COMMANDS["describe"])
def describe(code: str = typer.Argument(..., metavar="CODE", help="pyscf, pyqmc, qwalk or toy"),
             method: str | None = typer.Argument(None, metavar="METHOD",
                                                 help="one method (default: all)")) -> None:
    """Every option a step of CODE/METHOD accepts: type, default, unit and one line of help.

    Example: autogenv2 describe pyqmc dmc
    """
    from .describe import describe as describe_text

    sys.stdout.write(describe_text(code, method))


def _version_line() -> str:
    from . import __version__

    return f"autogenv2 {__version__}\n"


@app.callback()
def _options(traceback: bool = typer.Option(False, "--traceback", help="show Python tracebacks"),
             version: bool = typer.Option(False, "--version", help="print the version and exit")) -> None:
    TRACEBACK["on"] = traceback
    if version:  # handled here, not by an option callback: typer < 0.13 passes those the raw string
        sys.stdout.write(_version_line())
        raise typer.Exit(0)


def _usage_error(exc: Exception) -> int | None:
    """Show a command-line usage error (click's or typer's own vendored click) and return its exit code.

    Recognised by shape, not by import: typer >= 0.26 vendors click, older typer uses click itself.
    """
    show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
    if not callable(show) or not isinstance(code, int):
        return None
    show()
    return code


def unexpected(exc: Exception) -> int:
    """An error that is not the user's: its type and message, and how to see the traceback."""
    console.print(f"[red]{type(exc).__name__}:[/red] {escape(str(exc))} "
                  "(rerun with --traceback for details)", highlight=False)
    return EXIT_BUG


def _interrupted() -> int:
    console.print("interrupted; running attempts continue, `autogenv2 run` picks them up", highlight=False)
    return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    """Entry point: expected errors print one line and exit 1; others suggest --traceback."""
    from .__main__ import safe_umask

    safe_umask()
    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.stderr.write(SHORT_USAGE)
        return EXIT_USAGE
    if args == ["--version"]:  # a group needs a command, so the bare flag is answered here
        sys.stdout.write(_version_line())
        return 0
    try:
        returned = app(args=args, prog_name="autogenv2", standalone_mode=False)
    except AutogenError as exc:
        report_error(exc)
        return EXIT_ERROR
    except typer.Exit as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # typer turns Ctrl-C into Exit(130)
            return _interrupted()
        return int(exc.exit_code or 0)
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:  # noqa: BLE001 - the one place that reports unexpected errors
        if type(exc).__name__ == "Abort" and isinstance(exc.__cause__, KeyboardInterrupt):
            return _interrupted()  # older click turns Ctrl-C into Abort
        code = _usage_error(exc)
        if code is not None:
            return code
        if "--traceback" in args:
            raise
        return unexpected(exc)
    if returned == EXIT_INTERRUPTED:  # typer turned Ctrl-C into Exit(130), returned in non-standalone mode
        return _interrupted()
    return returned if isinstance(returned, int) else 0


if __name__ == "__main__":
    sys.exit(main())
