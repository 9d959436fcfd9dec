"""What ``run --watch`` shows of each running element: blocks done of planned, error against target,
time to go, and how long the current attempt has run."""
from __future__ import annotations

import time
from pathlib import Path

from .errors import AutogenError
from .sizing import attempt_cost
from .states import State
from .status import ElementStatus

SAMPLING = ("nblocks", "nblock", "max_iterations")
"""Writer options holding an element's planned total."""


def live_blocks(element: ElementStatus, directory: Path) -> int | None:
    """Blocks a running element's run has written so far (its Writer reads them cheaply), or None."""
    from .codes import get_method

    try:
        writer_cls, _ = get_method(element.code, element.method)
    except AutogenError:
        return None
    return writer_cls.model_construct(**element.writer).blocks_written(directory)


def seconds_per_block(element: ElementStatus, live: int | None) -> float | None:
    """Measured over the finished attempts, else over the blocks the running one has written so far."""
    cost = attempt_cost(element.attempts)
    if cost:
        return cost[1]
    last = element.attempts[-1] if element.attempts else None
    before = element.result.get("blocks")
    gained = (live or 0) - (before if isinstance(before, int) else 0)
    if last is None or last.started_at is None or gained <= 0:
        return None
    return (time.time() - last.started_at) / gained


def progress_line(name: str, element: ElementStatus, directory: Path | None = None) -> str:
    """One line, e.g. ``h2/dmc: 240/400 blocks, error 1.3e-03 (target 1.0e-03), ~2.0 min to go,
    attempt 3 running for 0.5 min``.

    Blocks are read from the run directory while an attempt runs (else those of the last verdict); the
    error is the last verdict's; the time to go is the blocks still planned at the cost per block.
    """
    key = next((k for k in SAMPLING if k in element.writer), None)
    total, result = element.writer.get(key) if key else None, element.result
    done = result.get("iterations" if key == "max_iterations" else "blocks")
    running = element.state is State.running
    live = live_blocks(element, directory) if directory is not None and running else None
    done = live if live is not None and (not isinstance(done, int) or live > done) else done
    unit = "iterations" if key == "max_iterations" else "blocks"
    parts = [f"{done if isinstance(done, int) else 0}/{total if total is not None else '?'} {unit}"]
    error, target = result.get("error"), element.spec.get("options", {}).get("target_error")
    if isinstance(error, (int, float)):
        against = f" (target {target:.2e})" if isinstance(target, (int, float)) else ""
        parts.append(f"error {error:.2e}{against}")
    per_block = seconds_per_block(element, live)
    if per_block and isinstance(total, int) and isinstance(done, int) and total > done:
        parts.append(f"~{(total - done) * per_block / 60:.1f} min to go")
    last = element.attempts[-1] if element.attempts else None
    if running and last is not None and last.started_at is not None:
        parts.append(f"attempt {last.number} running for {(time.time() - last.started_at) / 60:.1f} min")
    return f"{name}: " + ", ".join(parts)
