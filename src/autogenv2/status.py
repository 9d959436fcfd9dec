r"""The status file of a job, ``<root>/<jobid>/status.json``: what happened, as plain JSON.

``JobStatus`` holds one ``ElementStatus`` per Manager and every attempt each made. The file
is rewritten atomically after every step, so the next ``autogenv2 run`` resumes from the last
completed step whatever killed the previous one.

Every change of an element's ``state`` or an attempt's ``phase`` is a method below (the one owner
of both); the Manager, cancel, ``run --retry-failed``, plan changes and blocking call them::

    planned --written--> ready --start_attempt--> running --done--> done
                           ^                        |  \--needs_more--> needs_more --start_attempt--> running
                           \--- retry / abandon ---/   \--fail--> failed --reopen--> ready (planned)
    planned --block--> blocked --unblock--> planned;  any --archive--> planned;  running --cancel--> failed
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import StatusError
from .states import Phase, State
from .storage import SCHEMA_VERSION, STATUS_FILE, check_schema, quarantine, read_json, write_text_atomic

if TYPE_CHECKING:
    from .runners.base import RunStatus


class Attempt(BaseModel):
    """One execution of an element's run by a Runner."""

    model_config = ConfigDict(extra="forbid")

    number: int
    token: str
    runner: str
    runner_id: str = ""
    phase: Phase = Phase.submitting
    submitted_at: float = Field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    reason: str = ""
    scheduler_state: str = ""
    verdict: str = ""
    blocks: int | None = None

    @property
    def seconds(self) -> float | None:
        """Wall time of the attempt, once it ended."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    # -- phase transitions -------------------------------------------------------------
    def queued(self, runner_id: str) -> None:
        """The runner accepted the attempt under ``runner_id`` (saved right after by the caller)."""
        self.runner_id, self.phase, self.submitted_at = runner_id, Phase.queued, time.time()

    def adopt(self, runner_id: str) -> None:
        """Record the runner's id found by a poll (the submission's own answer was lost in a crash)."""
        if runner_id and not self.runner_id:
            self.runner_id = runner_id

    def observe(self, run: RunStatus) -> bool:
        """A poll saw the attempt queued or running; True when anything recorded changed."""
        before = (self.phase, self.reason, self.scheduler_state, self.started_at)
        self.phase, self.reason, self.scheduler_state = Phase(run.phase), run.reason, run.scheduler_state
        self.started_at = run.started_at or self.started_at
        return before != (self.phase, self.reason, self.scheduler_state, self.started_at)

    def end(self, run: RunStatus) -> None:
        """The runner reported the attempt ended (``finished``) or no longer knows it (``lost``)."""
        self.phase = Phase.finished if run.phase == Phase.finished else Phase.lost
        self.exit_code, self.reason = run.exit_code, run.reason or self.reason
        self.scheduler_state = run.scheduler_state or self.scheduler_state
        self.started_at = run.started_at or self.started_at
        self.ended_at = run.ended_at or time.time()

    def abandon(self) -> None:
        """Never reached the runner, and its token is claimed: it can never run."""
        self.phase, self.reason, self.ended_at = Phase.lost, "never started (abandoned)", time.time()


class ElementStatus(BaseModel):
    """The state of one Manager: its planned spec, effective options, attempts and result."""

    model_config = ConfigDict(extra="forbid")

    name: str
    code: str
    method: str
    spec: dict[str, Any]
    """The step as the plan gave it when last applied (compared with the plan on every run)."""
    writer: dict[str, Any] = Field(default_factory=dict)
    """Effective Writer options (the plan's, plus continuations such as a raised nblocks)."""
    reader: dict[str, Any] = Field(default_factory=dict)
    """Reader options set by health fixes (e.g. a longer warm-up), applied over the plan's."""
    state: State = State.planned
    attempts: list[Attempt] = Field(default_factory=list)
    failures: int = 0
    """Consecutive failed attempts (a continuation that made progress resets it)."""
    result: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)
    """Artifacts for later elements, relative to the job directory."""
    reason: str = ""
    events: list[dict[str, Any]] = Field(default_factory=list)
    """Decisions taken (plan changes, retries, health checks), oldest first."""
    lineage: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """For each input artifact: the element and attempt that made it, its path and sha256."""
    archived: list[str] = Field(default_factory=list)
    """Directories of earlier versions of this element, kept when a plan change redid it."""

    def log(self, what: str, **details: Any) -> None:
        """Record a decision with a timestamp."""
        self.events.append({"time": round(time.time(), 3), "event": what, **details})

    # -- state transitions -------------------------------------------------------------
    def written(self, lineage: dict[str, dict[str, Any]]) -> None:
        """Inputs are written (made from ``lineage``): the next step starts an attempt."""
        self.lineage, self.state = lineage, State.ready

    def start_attempt(self, token: str, runner: str) -> Attempt:
        """A new attempt, ``submitting``; the caller saves the status before the runner hears of it."""
        attempt = Attempt(number=len(self.attempts) + 1, token=token, runner=runner)
        self.attempts.append(attempt)
        self.state = State.running
        return attempt

    def abandon(self, attempt: Attempt) -> None:
        """The attempt never reached its runner (its token is claimed): the next step starts a new one."""
        attempt.abandon()
        self.state = State.ready

    def done(self, results: dict[str, Any], outputs: dict[str, str], reason: str) -> None:
        """The Reader accepted the run; ``outputs`` are relative to the element's directory."""
        self.result, self.reason, self.failures = results, "", 0  # the Reader's words stay in the events
        self.log("done", reason=reason)
        self.outputs = {k: f"{self.name}/{v}" for k, v in outputs.items()}
        self.state = State.done

    def needs_more(self, results: dict[str, Any], reason: str, writer: dict[str, Any]) -> None:
        """The Reader asked for more: the next attempt continues the run with the ``writer`` options."""
        self.result, self.reason, self.failures, self.writer = results, reason, 0, writer
        self.state = State.needs_more

    def attempt_failed(self, results: dict[str, Any], reason: str) -> int:
        """Record a failed run; returns the consecutive failures so far (the caller retries or fails)."""
        self.result, self.reason = results, reason
        self.failures += 1
        return self.failures

    def retry(self, reason: str) -> None:
        """Run the same input again."""
        self.log("retry", reason=reason)
        self.state = State.ready

    def fail(self, reason: str) -> None:
        """Give up on the element with ``reason``."""
        self.state, self.reason = State.failed, reason
        self.log("failed", reason=reason)

    def cancel(self, runner_id: str) -> None:
        """The user cancelled the running attempt (its runner was told to stop it)."""
        self.state, self.reason = State.failed, "cancelled by user (run --retry-failed to resume)"
        self.log("cancelled", runner_id=runner_id)

    def reopen(self, why: str) -> bool:
        """A failed element gets another chance (ready if it ran, else planned); False if not failed."""
        if self.state is not State.failed:
            return False
        self.state, self.failures = State.ready if self.attempts else State.planned, 0
        self.log("reopened", reason=why)
        return True

    def block(self, cause: str) -> None:
        """An element this one takes inputs from failed (or is blocked)."""
        self.state, self.reason = State.blocked, f"blocked: {cause}"
        self.log("blocked", reason=self.reason)

    def unblock(self) -> None:
        """The cause of a block went away (e.g. the failed element was reopened)."""
        self.state, self.reason = State.planned, ""
        self.log("unblocked")

    def archive(self, directory_name: str) -> None:
        """The element's directory was moved to ``directory_name``: start over from the plan, planned.

        The events and the Reader settings of health fixes are kept (the fixes are not applied twice).
        """
        self.archived.append(directory_name)
        self.log("archived", to=directory_name, attempts=len(self.attempts))
        self.state, self.attempts, self.result, self.outputs = State.planned, [], {}, {}
        self.writer, self.reason, self.failures = {}, "", 0

    def health_fix(self, check: str, detail: str, writer: dict[str, Any], reader: dict[str, Any]) -> None:
        """Record a health fix; its Reader settings apply from now on (``reader``)."""
        changes = {k: v for k, v in (("writer", writer), ("reader", reader)) if v}
        self.log("health-fix", check=check, detail=detail, **changes)
        self.reader.update(reader)

    def fixes_done(self, check: str) -> int:
        """How many fixes of health check ``check`` were applied."""
        return sum(e.get("event") == "health-fix" and e.get("check") == check for e in self.events)

    def flag(self, check: str, detail: str) -> None:
        """Record a health finding that has no fix, once."""
        if not any(e.get("event") == "health-flag" and e.get("check") == check for e in self.events):
            self.log("health-flag", check=check, detail=detail)


class JobStatus(BaseModel):
    """Everything known about one job; serialized as status.json."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    job_id: str
    variables: dict[str, Any] = Field(default_factory=dict)
    """The plan's variables of this job (scan point), kept for reports."""
    elements: list[ElementStatus] = Field(default_factory=list)
    updated_at: float = Field(default_factory=time.time)

    def element(self, name: str) -> ElementStatus:
        for element in self.elements:
            if element.name == name:
                return element
        raise KeyError(name)

    def save(self, job_dir: Path, durable: bool = True) -> None:
        """Write status.json atomically (``durable=False``: made durable later, see storage.sync_pending)."""
        self.updated_at = time.time()
        # pydantic's compiled encoder: the same indent=1 text as json.dumps, 9x faster (NaN/inf become null)
        write_text_atomic(job_dir / STATUS_FILE, self.model_dump_json(indent=1), durable=durable)

    @classmethod
    def load(cls, job_dir: Path) -> JobStatus | None:
        """Read status.json, or None if the job has none yet. Corrupt files are moved aside."""
        path = job_dir / STATUS_FILE
        if not path.exists():
            return None
        data = check_schema(read_json(path), path)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            aside = quarantine(path)
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise StatusError(
                f"{path}: invalid status ({where}: {first.get('msg')}); moved it to {aside.name}. "
                f"Restore it with `mv {aside} {path}` after fixing it, or leave it out to start the job "
                "afresh."
            ) from None
