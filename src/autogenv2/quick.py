"""The commands people type all day, answered without the CLI framework.

``autogenv2 --help``, ``status TARGET [--plain] [--rescan] [--all]`` and ``results TARGET [-f FMT]
[-o FILE]`` in their plain forms are parsed here and run without importing typer, pydantic or pandas
(``__main__`` tries :func:`fast` first); ``inspect RUN_DIR [--json] [--run-id ID] [--stdout FILE]
[--exit-code N]`` without typer, pydantic or the writers (it needs numpy, and scipy only for an error
bar with fewer than 1000 degrees of freedom). Anything
else, and ``--traceback``, goes to :mod:`cli`, whose
commands call the same functions below, so both paths print the same thing.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import EXIT_ERROR, AutogenError

if TYPE_CHECKING:
    from rich.console import Console

COMMANDS = {
    "run": "Reconcile the plan with its job directories and take the next steps.",
    "status": "Table of every job element: state, attempts, energy ± error, scheduler state, reason.",
    "results": "Energies and error bars of every element (one row each).",
    "cancel": 'Cancel the running attempts of jobs and mark them failed ("cancelled by user").',
    "report": "PNG plots and one HTML page: timestep extrapolation, scans, twists, optimization, traces.",
    "inspect": "The Reader's verdict on any QWalk run directory, made by autogenv2 or by hand.",
    "describe": "Every option a step of CODE/METHOD accepts: type, default, unit and one line of help.",
}
"""Each command's one-line summary: ``--help`` here and the typer commands' short help in :mod:`cli`."""

SUMMARY = "Set up, run, babysit and store QMC calculations."
STATUS_FLAGS = {"--plain", "--rescan", "--all"}
FORMATS = ("table", "csv", "json")
RESULTS_OPTIONS = {"-f": "format", "--format": "format", "-o": "output", "--output": "output"}
INSPECT_OPTIONS = {"--run-id": "run_id", "--stdout": "stdout", "--exit-code": "exit_code"}


def help_text() -> str:
    """``autogenv2 --help``: what the typer app lists, in plain text."""
    width = max(map(len, COMMANDS))
    lines = ["usage: autogenv2 [--traceback] [--version] COMMAND [ARGS]...", "", SUMMARY, "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    lines += ["", "autogenv2 COMMAND --help shows a command's arguments and options; exit codes: README."]
    return "\n".join(lines) + "\n"


def console() -> Console:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def root_of(target: Path) -> Path:
    """A root directory as given, or the root of a plan file (an invalid plan fails with its error)."""
    if target.is_dir():
        return target
    if not target.exists():
        raise AutogenError(f"{target}: no such plan file or root directory")
    from .fastpath import plan_is_known
    from .lock import plan_fingerprint

    root, fingerprint = plan_fingerprint(target)
    if plan_is_known(root, fingerprint):  # byte-identical to the plan of the last clean pass
        return root
    from .plan import load_plan

    return load_plan(target).root


def run(plan: Path) -> int:
    """``autogenv2 run PLAN`` (one pass, no options): reconcile, then print what the pass did and the status.

    The typer command ``run`` prints the same lines; this one is reached without importing typer.
    """
    from . import display
    from .ensemble import reconcile_file

    report, the_root = reconcile_file(plan)
    out = console()
    display.print_pass(out, report)
    display.print_status(out, the_root, quiet_if_large=True)
    display.print_outcome(out, report)
    return report.exit_code


def status(target: Path, rescan: bool = False, plain: bool = False, show_all: bool = False) -> int:
    """``autogenv2 status``: a table (plain lines with ``--plain``) of every element."""
    root = root_of(target)
    if plain:
        from .fastpath import plain_status

        return plain_status(root, rescan, show_all)
    from .display import print_status

    print_status(console, root, rescan=rescan)  # made only if needed: a large status is plain text
    return 0


def results(target: Path, fmt: str = "table", output: Path | None = None) -> int:
    """``autogenv2 results``: one row per element, as a table, CSV or JSON."""
    if fmt not in FORMATS:
        raise AutogenError(f"--format {fmt!r}: choose table, csv or json")
    from .results_table import csv_text, rows

    root = root_of(target)
    if fmt == "table":
        from .display import print_results

        print_results(console(), rows(root))
        return 0
    text = json.dumps(rows(root), indent=1) if fmt == "json" else csv_text(rows(root, decode=False))
    if output:
        output.write_text(text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def inspect(run_dir: Path, run_id: str | None = None, stdout: Path | None = None,
            exit_code: int | None = None, as_json: bool = False) -> int:
    """``autogenv2 inspect``: the QWalk verdict on a run directory (no writers, pydantic or typer)."""
    if "numpy" not in sys.modules:  # no matrix algebra here: OpenBLAS's threads cost 0.06 s CPU to start
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from .codes.qwalk.inspect import format_table, inspect_run

    if not run_dir.is_dir():
        raise AutogenError(f"{run_dir}: not a directory")
    report = inspect_run(run_dir, run_id=run_id, stdout=stdout, exit_code=exit_code)
    sys.stdout.write(json.dumps(report, indent=1) + "\n" if as_json else format_table(report) + "\n")
    return 0


def _inspect(args: list[str]) -> int | None:
    parsed = _options(args, {"--json"}, INSPECT_OPTIONS)
    if parsed is None or len(parsed[0]) != 1:
        return None
    (run_dir,), values = parsed
    code = values.get("exit_code")
    if code is not None and not code.lstrip("-").isdigit():
        return None  # the full CLI names the bad value
    stdout = values.get("stdout")
    return inspect(Path(run_dir), values.get("run_id"), Path(stdout) if stdout else None,
                   int(code) if code is not None else None, "--json" in values)


def _options(args: list[str], flags: set[str],
             valued: dict[str, str]) -> tuple[list[str], dict[str, str]] | None:
    """Positional arguments and options of a simple command line, or None for anything unusual."""
    positional, options = [], {}
    i = 0
    while i < len(args):
        word = args[i]
        if word in flags:
            options[word] = ""
        elif word in valued and i + 1 < len(args) and not args[i + 1].startswith("-"):
            options[valued[word]] = args[i + 1]
            i += 1
        elif word.startswith("-"):
            return None  # --help, a typo, --traceback: the full CLI answers
        else:
            positional.append(word)
        i += 1
    return positional, options


def _dispatch(args: list[str]) -> int | None:
    if args in (["--help"], ["-h"]):
        sys.stdout.write(help_text())
        return 0
    if not args or args[0] not in ("status", "results", "inspect"):
        return None
    if args[0] == "inspect":
        return _inspect(args[1:])
    if args[0] == "status":
        parsed = _options(args[1:], STATUS_FLAGS, {})
        if parsed is None or len(parsed[0]) != 1:
            return None
        (target,), flags = parsed
        return status(Path(target), "--rescan" in flags, "--plain" in flags, "--all" in flags)
    parsed = _options(args[1:], set(), RESULTS_OPTIONS)
    if parsed is None or len(parsed[0]) != 1:
        return None
    (target,), values = parsed
    output = values.get("output")
    return results(Path(target), values.get("format", "table"), Path(output) if output else None)


def fast(args: list[str]) -> int | None:
    """The exit code of a command answered here, or None to hand ``args`` to the full CLI."""
    try:
        return _dispatch(args)
    except AutogenError as exc:
        report_error(exc)
        return EXIT_ERROR


def report_error(exc: AutogenError) -> None:
    """One line, ``error: ...``; nothing in the message is taken for markup."""
    from rich.markup import escape

    console().print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
