"""The state of a job element (a Manager) and the phase of one of its attempts, with helper predicates.

Both are changed only by the transition methods of ``status.ElementStatus`` and ``status.Attempt``.
"""
from __future__ import annotations

from enum import Enum, StrEnum


class State(str, Enum):
    """Where a Manager's element stands. Values are the strings stored in status.json."""

    planned = "planned"        # nothing written yet (waits for upstream elements)
    ready = "ready"            # inputs written, next step starts an attempt
    running = "running"        # an attempt is queued or running in a Runner
    needs_more = "needs_more"  # the Reader asked for more sampling; next step continues the run
    done = "done"              # the Reader accepted the result
    failed = "failed"          # given up; ``reason`` says why
    blocked = "blocked"        # an element it takes inputs from failed; ``reason`` names it

    def is_final(self) -> bool:
        """True for done, failed and blocked: no step changes these without a plan change or a retry."""
        return self in (State.done, State.failed, State.blocked)

    def is_active(self) -> bool:
        """True while an attempt lives in a Runner."""
        return self is State.running


class Phase(StrEnum):
    """Where one attempt stands in its Runner. Values are the strings stored in status.json."""

    submitting = "submitting"  # saved before the runner hears of it; the runner's id is saved next
    queued = "queued"          # the runner accepted it
    running = "running"        # the program runs
    finished = "finished"      # the runner reported its end (exit code, walltime, cancel)
    lost = "lost"              # the runner knows nothing of it, or it never started (abandoned)


class Verdict(str, Enum):
    """A Reader's verdict on a run directory."""

    complete = "complete"
    incomplete = "incomplete"
    failed = "failed"
