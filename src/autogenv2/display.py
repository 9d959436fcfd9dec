"""Rich tables and the ``--watch`` progress display."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported where it is used: a large `status` prints plain text without it
    from rich.console import Console
    from rich.table import Table

    from .ensemble import PassReport


def escape(text: str) -> str:
    """rich's markup escape (rich loaded on first use)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


STATE_STYLE = {"done": "green", "failed": "red", "blocked": "red", "running": "cyan", "needs_more": "yellow",
               "ready": "white", "planned": "dim"}


def energy_text(result: dict[str, Any]) -> str:
    """``-1.17447 ± 0.00052`` (or just the energy when there is no error bar)."""
    energy, error = result.get("energy"), result.get("error")
    if energy is None:
        return ""
    if error is None or error != error:
        return f"{energy:.6f}"
    flag = " (unreliable)" if result.get("reliable") == 0 else ""  # False, or 0 from the SQLite index
    return f"{energy:.6f} ± {error:.6f}{flag}"


def bound_text(result: dict[str, Any]) -> str:
    """The 95 % half-width and the warm-up blocks dropped, where the element has a block series."""
    bound, warmup = result.get("error_95"), result.get("warmup")
    parts = [f"{bound:.6f}" if isinstance(bound, float) and bound == bound else ""]
    parts.append(str(warmup) if isinstance(warmup, int) and not isinstance(warmup, bool) else "")
    return " / ".join(parts) if any(parts) else ""


STATUS_COLUMNS = ["job", "element", "state", "attempts", "energy", "error", "error_95", "warmup", "reliable",
                  "scheduler", "reason"]
LARGE = 400
"""Above this many rows, status prints plain aligned text (a rich table of 20,000 rows takes seconds)."""


def status_table(rows: list[dict[str, Any]], root: Path) -> Table:
    """One row per element."""
    from rich.table import Table

    table = Table(title=f"autogenv2 status — {root}", show_lines=False)
    for column in ("job", "element", "state", "attempts", "energy ± error (Ha)", "95 % / warm-up",
                   "scheduler", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        style = STATE_STYLE.get(row["state"], "white")
        table.add_row(row["job"], row["element"], f"[{style}]{row['state']}[/{style}]", str(row["attempts"]),
                      energy_text(row), bound_text(row), escape(row["scheduler"]), escape(row["reason"]))
    return table


def plain_lines(rows: list[dict[str, Any]]) -> str:
    """The same table as plain aligned text, fast for any size."""
    out = [f"{'job':<24} {'element':<16} {'state':<10} {'att':>3}  {'energy ± error (Ha)':<26} reason"]
    for row in rows:
        out.append(f"{row['job']:<24} {row['element']:<16} {row['state']:<10} {row['attempts']:>3}  "
                   f"{energy_text(row):<26} {' '.join(x for x in (row['scheduler'], row['reason']) if x)}")
    return "\n".join(out)


def print_status(console: Console | Callable[[], Console], root: Path, only: list[str] | None = None,
                 rescan: bool = False, quiet_if_large: bool = False) -> None:
    """The status of every element under ``root`` (counts first when the ensemble is large).

    ``console`` may be a function making one: a large status printed as plain text never needs it.
    """
    from .results_table import rows_and_errors

    rows, errors = rows_and_errors(root, rescan, only, STATUS_COLUMNS)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    summary_line = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    large = len(rows) > LARGE
    if errors or not large or quiet_if_large:
        out = console() if callable(console) else console
        for error in errors:
            out.print(f"[red]unreadable:[/red] {escape(error)}", highlight=False)
        if not large:
            out.print(status_table(rows, root))
            return
        if quiet_if_large:
            out.print(f"{len(rows)} elements: {summary_line} (`autogenv2 status` lists them)",
                      highlight=False)
            return
    import sys

    sys.stdout.write(plain_lines(rows) + "\n")
    sys.stdout.write(f"{len(rows)} elements: {summary_line}\n")


def print_pass(console: Console, report: PassReport) -> None:
    """What one pass did, then a one-line summary."""
    for line in report.messages:
        console.print(f"[yellow]plan change[/yellow] {escape(line)}", highlight=False)
    for line in report.actions:
        console.print(f"  {line}", highlight=False, markup=False)
    for line in report.errors:
        console.print(f"[red]error:[/red] {escape(line)}", highlight=False)
    if not report.actions and not report.messages:
        console.print("nothing to do: " + ("every job is done or failed" if report.finished
                                           else "waiting for running attempts"))
    console.print(summary(report), highlight=False)


def print_outcome(console: Console, report: PassReport) -> None:
    """The last line of ``run``: which elements failed, or that some are still running."""
    from .fastpath import failure_line

    if report.failed:
        console.print(f"[red]{escape(failure_line(report.failed))}[/red]", highlight=False, soft_wrap=True)
    elif not report.finished and not report.errors:
        console.print(f"still running: {report.unfinished} job{'s' * (report.unfinished != 1)} unfinished; "
                      "`autogenv2 run` again (or `run --watch`) follows them", highlight=False)


def summary(report: PassReport) -> str:
    counts = ", ".join(f"{n} {state}" for state, n in sorted(report.states.items()))
    return f"elements: {counts or 'none'}; jobs unfinished: {report.unfinished}"


def print_results(console: Console, rows: list[dict[str, Any]]) -> None:
    if len(rows) > LARGE:
        import sys

        sys.stdout.write(plain_lines(rows) + "\n")
        return
    from rich.table import Table

    table = Table(title="autogenv2 results")
    for column in ("job", "element", "method", "state", "energy ± error (Ha)", "blocks", "wall s"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["job"], row["element"], row["method"], row["state"], energy_text(row),
                      "" if row["blocks"] is None else str(row["blocks"]),
                      "" if row["wall_seconds"] is None else f"{row['wall_seconds']:.1f}")
    console.print(table)


class Progress:
    """A live one-line summary plus the actions of the latest pass, for ``--watch``."""

    def __init__(self, console: Console) -> None:
        from rich.live import Live

        self.console = console
        self.live = Live(console=console, refresh_per_second=2, transient=True)
        self.passes = 0

    def __enter__(self) -> Progress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def update(self, report: PassReport) -> None:
        self.passes += 1
        for line in report.messages + report.actions:
            self.console.print(f"  {line}", highlight=False, markup=False)
        for line in report.errors:
            self.console.print(f"[red]error:[/red] {escape(line)}", highlight=False)
        lines = [f"pass {self.passes}: {summary(report)}", *(f"  {line}" for line in report.progress)]
        if report.progress_more:
            lines.append(f"  ... and {report.progress_more} more running")
        self.live.update(escape("\n".join(lines)))
