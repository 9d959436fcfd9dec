"""Rich tables and the ``--watch`` progress display."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from .ensemble import PassReport
from .store import iter_status

STATE_STYLE = {"done": "green", "failed": "red", "running": "cyan", "needs_more": "yellow",
               "ready": "white", "planned": "dim"}


def energy_text(result: dict[str, Any]) -> str:
    """``-1.17447 ± 0.00052`` (or just the energy when there is no error bar)."""
    energy, error = result.get("energy"), result.get("error")
    if energy is None:
        return ""
    if error is None or error != error:
        return f"{energy:.6f}"
    return f"{energy:.6f} ± {error:.6f}"


def status_table(root: Path, only: list[str] | None = None) -> Table:
    """One row per element of every job under ``root``."""
    table = Table(title=f"autogenv2 status — {root}", show_lines=False)
    for column in ("job", "element", "state", "attempts", "energy ± error (Ha)", "scheduler", "reason"):
        table.add_column(column, overflow="fold")
    wanted = set(only) if only else None
    for status, error in iter_status(root):
        if status is None:
            table.add_row("?", "", "[red]unreadable[/red]", "", "", "", error)
            continue
        if wanted is not None and status.job_id not in wanted:
            continue
        for element in status.elements:
            last = element.attempts[-1] if element.attempts else None
            scheduler = ""
            if last is not None and element.state.value == "running":
                scheduler = " ".join(x for x in (last.phase, last.scheduler_state, last.reason) if x)
            style = STATE_STYLE.get(element.state.value, "white")
            table.add_row(status.job_id, element.name, f"[{style}]{element.state.value}[/{style}]",
                          str(len(element.attempts)), energy_text(element.result), scheduler, element.reason)
    return table


def print_status(console: Console, root: Path, only: list[str] | None = None) -> None:
    console.print(status_table(root, only))


def print_pass(console: Console, report: PassReport) -> None:
    """What one pass did, then a one-line summary."""
    for line in report.messages:
        console.print(f"[yellow]plan change[/yellow] {line}", highlight=False)
    for line in report.actions:
        console.print(f"  {line}", highlight=False)
    for line in report.errors:
        console.print(f"[red]error:[/red] {line}", highlight=False)
    if not report.actions and not report.messages:
        console.print("nothing to do: " + ("every job is done or failed" if report.finished
                                           else "waiting for running attempts"))
    console.print(summary(report), highlight=False)


def summary(report: PassReport) -> str:
    counts = ", ".join(f"{n} {state}" for state, n in sorted(report.states.items()))
    return f"elements: {counts or 'none'}; jobs unfinished: {report.unfinished}"


def print_results(console: Console, rows: list[dict[str, Any]]) -> None:
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
        self.console = console
        self.live = Live(console=console, refresh_per_second=2, transient=True)
        self.passes = 0

    def __enter__(self) -> "Progress":
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def update(self, report: PassReport) -> None:
        self.passes += 1
        for line in report.messages + report.actions:
            self.console.print(f"  {line}", highlight=False)
        for line in report.errors:
            self.console.print(f"[red]error:[/red] {line}", highlight=False)
        self.live.update(f"pass {self.passes}: {summary(report)}")
