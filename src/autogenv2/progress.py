"""What ``run --watch`` shows of each running element: blocks done of planned, error against target,
time to go, and how long the current attempt has run."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import AutogenError
from .sizing import attempt_cost
from .states import State
from .status import ElementStatus

if TYPE_CHECKING:
    from .codes.base import Writer

def writer_class(element: ElementStatus) -> type[Writer] | None:
    """The Writer class of an element's code and method (None when the code no longer has it)."""
    from .codes import get_method

    try:
        return get_method(element.code, element.method)[0]
    except AutogenError:
        return None


def live_blocks(element: ElementStatus, directory: Path) -> int | None:
    """Blocks a running element's run has written so far (its Writer reads them cheaply), or None."""
    cls = writer_class(element)
    return None if cls is None else cls.model_construct(**element.writer).blocks_written(directory)


def _count(value: object) -> int | None:
    """A Reader's count of what is done: a number, or one entry per iteration."""
    if isinstance(value, list):
        return len(value)
    return value if isinstance(value, int) else None


def seconds_per_block(element: ElementStatus, live: int | None, unit: str = "blocks") -> float | None:
    """Measured over the finished attempts, else over the blocks (``unit``) the running one has written
    so far."""
    cost = attempt_cost(element.attempts)
    if cost:
        return cost[1]
    last = element.attempts[-1] if element.attempts else None
    gained = (live or 0) - (_count(element.result.get(unit)) or 0)
    if last is None or last.started_at is None or gained <= 0:
        return None
    return (time.time() - last.started_at) / gained


def progress_line(name: str, element: ElementStatus, directory: Path | None = None) -> str:
    """One line, e.g. ``h2/dmc: 240/400 blocks, error 1.3e-03 (target 1.0e-03), ~2.0 min to go,
    attempt 3 running for 0.5 min``.

    Blocks are read from the run directory while an attempt runs (else those of the last verdict); the
    error is the last verdict's; the time to go is the blocks still planned at the cost per block.
    """
    cls = writer_class(element)
    key, unit = (cls.sampling_total(), cls.sampling_unit) if cls is not None else (None, "blocks")
    total, result = element.writer.get(key) if key else None, element.result
    done = _count(result.get(unit))
    running = element.state is State.running
    live = live_blocks(element, directory) if directory is not None and running else None
    done = live if live is not None and (done is None or live > done) else done
    parts = [f"{done if isinstance(done, int) else 0}/{total if total is not None else '?'} {unit}"]
    error, target = result.get("error"), element.spec.get("options", {}).get("target_error")
    if isinstance(error, (int, float)):
        against = f" (target {target:.2e})" if isinstance(target, (int, float)) else ""
        parts.append(f"error {error:.2e}{against}")
    per_block = seconds_per_block(element, live, unit)
    if per_block and isinstance(total, int) and isinstance(done, int) and total > done:
        parts.append(f"~{(total - done) * per_block / 60:.1f} min to go")
    last = element.attempts[-1] if element.attempts else None
    if running and last is not None and last.started_at is not None:
        parts.append(f"attempt {last.number} running for {(time.time() - last.started_at) / 60:.1f} min")
    return f"{name}: " + ", ".join(parts)
