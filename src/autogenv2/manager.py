"""Level 2: a Manager drives one job element to the completion its Reader demands.

``step()`` makes at most one transition and returns what it did (or None when it must wait)::

    planned --write inputs--> ready --start attempt--> running --read--> done
                                 ^                        |  \\--> needs_more --start--> running
                                 \\------ retry ----------/   \\--> failed (reason)

Before a submission the attempt is recorded as ``submitting`` and the status saved; the
runner's id is saved right after. A crash in between is healed on the next pass: the Runner
finds the attempt by its token, so nothing is ever submitted twice.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .codes import get_method
from .codes.base import Reader, ReadResult, Writer
from .errors import OptionError, ProgramNotFoundError
from .health import FIXES, warmup_after_drift
from .plan import Step
from .planchange import archive
from .naming import inside
from .runners.base import Resources, Runner, RunRequest, RunStatus, walltime_seconds
from .runners.launch import claim
from .states import State, Verdict
from .status import Attempt, ElementStatus

LOST_GRACE_SECONDS = 5.0
"""A just-submitted attempt the runner cannot see yet is given this long before it is abandoned.

Safety does not depend on it: abandoning claims the attempt's token, so a launch arriving later
exits without running the program (see runners/launch.py ``claim``)."""

WALLTIME_MARGIN = 0.8
"""Fraction of the walltime an attempt is sized to fill (start-up and the last block need the rest)."""


@dataclass
class Context:
    """What a pass gives every Manager: runners, their batched poll results, capacity."""

    runners: Callable[[str], Runner]
    resources: Callable[[Step], Resources]
    polled: dict[str, RunStatus] = field(default_factory=dict)
    active: dict[str, int] = field(default_factory=dict)
    save: Callable[[], None] = lambda: None
    bundle_size: Callable[[str], int] = lambda runner: 1
    pending: dict[str, list[tuple[RunRequest, Attempt, Callable[[], None]]]] = field(default_factory=dict)
    """Attempts waiting to be submitted together at the end of the pass (bundling profiles)."""

    def has_capacity(self, runner_name: str) -> bool:
        return self.active.get(runner_name, 0) < self.runners(runner_name).max_active


def file_sha256(path: Path) -> str:
    """Content hash of an input file ('' if it is missing or a directory)."""
    if not path.is_file():
        return ""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def core_hours(attempts: list[Attempt], resources: Resources) -> float:
    """Wall time × cores used by the attempts so far."""
    cores = (resources.nodes or 1) * (resources.tasks or 1) * (resources.cpus_per_task or 1)
    return sum(a.seconds or 0.0 for a in attempts) * cores / 3600.0


def attempt_cost(attempts: list[Attempt]) -> tuple[float, float] | None:
    """(start-up seconds, seconds per block) measured over the attempts that made progress.

    With two or more different block counts a line ``seconds = a + b * blocks`` is fitted, so the
    start-up (imports, reading the walkers) is not charged to the blocks; with one, all of the
    time is charged to the blocks (conservative). None when nothing was measured yet.
    """
    points, before = [], 0
    for attempt in attempts:
        if attempt.blocks is None or attempt.seconds is None:
            continue
        gained, before = attempt.blocks - before, attempt.blocks
        if gained > 0:
            points.append((float(gained), attempt.seconds))
    if not points:
        return None
    blocks, seconds = (np.array(column) for column in zip(*points))
    if len(set(blocks)) >= 2:
        slope, intercept = np.polyfit(blocks, seconds, 1)
        if slope > 0:
            return max(0.0, float(intercept)), float(slope)
    return 0.0, float(seconds.sum() / blocks.sum())


class Manager:
    """Writer + Reader + Runner for one element, operating on its ``ElementStatus``."""

    def __init__(self, status: ElementStatus, directory: Path, step: Step, inputs: dict[str, Path],
                 origins: dict[str, tuple[str, int]] | None = None) -> None:
        self.status, self.directory, self.step_spec = status, directory, step
        self.inputs = inputs
        """Artifacts of earlier elements (absolute paths), by name."""
        self.origins = origins or {}
        """(element, attempt number) that produced each input, for lineage."""
        writer_cls, reader_cls = get_method(step.code, step.method)
        writer_opts, reader_opts = step.split_options(f"step {step.name!r}")
        self.writer: Writer = writer_cls.build(step.name, status.writer or writer_opts)  # type: ignore[assignment]
        for event in status.events:  # reader settings changed by a health fix (e.g. a longer warm-up)
            if event.get("event") == "health-fix":
                reader_opts.update(event.get("reader", {}))
        self.reader: Reader = reader_cls.build(step.name, {**reader_opts, **self.writer.reader_hints()})  # type: ignore[assignment]
        status.writer = self.writer.model_dump(mode="json")

    # -- the one public operation ----------------------------------------------------
    def step(self, ctx: Context) -> str | None:
        """Advance by one transition; return a description, or None if there is nothing to do now."""
        state = self.status.state
        if state is State.planned:
            return self._write()
        if state in (State.ready, State.needs_more):
            return self._start(ctx)
        if state is State.running:
            return self._follow(ctx)
        return None

    # -- transitions -----------------------------------------------------------------
    def _write(self) -> str:
        missing = [name for name in self.writer.consumes if name not in self.inputs]
        if missing:
            return self._fail(f"needs {', '.join(missing)} from an earlier step, and none provides it")
        self.directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        inside(self.directory.parent, self.directory)  # a symlinked step directory is not followed
        refused = self._write_inputs()
        if refused:
            return self._fail(refused)
        self.status.lineage = self._lineage()
        self.status.state = State.ready
        return "wrote inputs"

    def _start(self, ctx: Context) -> str | None:
        attempts = self.status.attempts
        if len(attempts) >= self.step_spec.max_attempts:
            last = f"; the last: {self.status.reason}" if self.status.reason else ""
            return self._fail(f"gave up after {len(attempts)} attempts (max_attempts = "
                              f"{self.step_spec.max_attempts}){last}")
        resources = ctx.resources(self.step_spec)
        used = core_hours(attempts, resources)
        if self.step_spec.max_core_hours is not None and used >= self.step_spec.max_core_hours:
            return self._fail(f"used {used:.3g} core-hours of the {self.step_spec.max_core_hours:g} allowed")
        if not ctx.has_capacity(self.step_spec.runner):
            return None
        self._size_to_walltime(resources)
        refused = self._write_inputs()  # the totals of the last verdict, written only now (idempotent)
        if refused:
            return self._fail(refused)
        try:
            argv = self.writer.command()
        except ProgramNotFoundError as exc:  # retrying cannot help: fail once, record no attempt
            return self._fail(str(exc))
        token = f"ag2-{uuid.uuid4().hex[:12]}"
        attempt = Attempt(number=len(attempts) + 1, token=token, runner=self.step_spec.runner)
        attempts.append(attempt)
        self.status.state = State.running
        ctx.save()  # the attempt is on disk before the runner hears of it
        return self._submit(ctx, attempt, argv)

    def _size_to_walltime(self, resources: Resources) -> None:
        """Stop the next attempt cleanly before the walltime, from the measured seconds per block.

        Writers that support it have an ``attempt_limit`` (blocks to reach in this attempt); the
        first attempt has no measurement and simply runs until done or killed (a kill is progress).
        """
        if "attempt_limit" not in type(self.writer).model_fields:
            return
        walltime = walltime_seconds(resources.walltime)
        cost = attempt_cost(self.status.attempts)
        done = int(self.status.result.get("blocks") or 0)
        limit = None
        if walltime and cost:
            startup, per_block = cost
            limit = done + max(1, int((WALLTIME_MARGIN * walltime - startup) / per_block))
        if limit != getattr(self.writer, "attempt_limit"):
            self.writer.attempt_limit = limit  # type: ignore[attr-defined]
            self.status.writer = self.writer.model_dump(mode="json")

    def _submit(self, ctx: Context, attempt: Attempt, argv: list[str]) -> str:
        request = RunRequest(directory=self.directory, argv=argv, token=attempt.token,
                             resources=ctx.resources(self.step_spec))
        ctx.active[attempt.runner] = ctx.active.get(attempt.runner, 0) + 1
        if ctx.bundle_size(attempt.runner) > 1:  # submitted with others by the pass (ensemble.flush_bundles)
            ctx.pending.setdefault(attempt.runner, []).append((request, attempt, ctx.save))
            return f"attempt {attempt.number} waits to be bundled"
        attempt.runner_id = ctx.runners(attempt.runner).start(request)
        attempt.phase = "queued"
        attempt.submitted_at = time.time()
        return f"started attempt {attempt.number} ({attempt.runner} {attempt.runner_id})"

    def _follow(self, ctx: Context) -> str | None:
        attempt = self.status.attempts[-1]
        run = ctx.polled.get(attempt.token)
        if run is None:
            return None
        if "runner_id" in run.extra and not attempt.runner_id:
            attempt.runner_id = str(run.extra["runner_id"])
        if run.phase in ("queued", "running"):
            before = (attempt.phase, attempt.reason, attempt.scheduler_state, attempt.started_at)
            attempt.phase, attempt.reason, attempt.scheduler_state = run.phase, run.reason, run.scheduler_state
            attempt.started_at = run.started_at or attempt.started_at
            changed = before != (attempt.phase, attempt.reason, attempt.scheduler_state, attempt.started_at)
            return f"attempt {attempt.number} {run.phase}" if changed else None
        if run.phase == "lost" and attempt.phase == "submitting":
            if time.time() - attempt.submitted_at < LOST_GRACE_SECONDS:
                return None
            markers = self.directory / ".autogenv2"
            markers.mkdir(mode=0o755, parents=True, exist_ok=True)
            claim(markers, attempt.token)  # claimed (by us now, or by a launch that died): it can never run
            if not (markers / f"{attempt.token}.started").exists():
                attempt.phase, attempt.reason, attempt.ended_at = "lost", "never started (abandoned)", time.time()
                self.status.state = State.ready
                return f"attempt {attempt.number} never reached the runner; a new one will start"
            return None  # it did start after all: the next poll sees it
        return self._finish(attempt, run)

    def _finish(self, attempt: Attempt, run: RunStatus) -> str:
        attempt.phase = "finished" if run.phase == "finished" else "lost"
        attempt.exit_code, attempt.reason = run.exit_code, run.reason or attempt.reason
        attempt.scheduler_state = run.scheduler_state or attempt.scheduler_state
        attempt.started_at = run.started_at or attempt.started_at
        attempt.ended_at = run.ended_at or time.time()
        exit_code = run.exit_code if run.phase == "finished" else -9
        if run.reason in ("walltime", "terminated", "cancelled") and (exit_code or 0) >= 0:
            exit_code = -15
        if exit_code == 127 and run.reason == "cannot start program":  # the launch wrapper's: no program
            return self._fail(f"the program could not be started on runner {attempt.runner!r} (not "
                              "found there?): install it or give its full path ($AUTOGENV2_QWALK, option "
                              "'python'), then `autogenv2 run --retry-failed`")
        result = self.reader.read(self.directory, exit_code)
        attempt.verdict, attempt.blocks = result.verdict.value, result.results.get("blocks")
        result, action = self._heal(result, exit_code)
        return action or self._judge(result, f"attempt {attempt.number}")

    def _heal(self, result: ReadResult, exit_code: int | None) -> tuple[ReadResult, str | None]:
        """Apply the standard fix of each health finding once (see health.py); fail if it persists."""
        if result.verdict is not Verdict.complete:
            return result, None
        events = self.status.events
        for finding in result.results.get("health") or []:
            check, detail = finding["check"], finding["detail"]
            fixes = FIXES.get(check) or ()
            if not fixes:
                if not any(e.get("event") == "health-flag" and e.get("check") == check for e in events):
                    self.status.log("health-flag", check=check, detail=detail)
                continue
            done = sum(e.get("event") == "health-fix" and e.get("check") == check for e in events)
            if done >= len(fixes):
                return result, self._fail(f"health check {check!r} still fails after its fix: {detail}")
            fix, sampling = fixes[done], next(iter(type(self.writer).sampling), None)
            blocks, used = int(result.results.get("blocks") or 0), int(result.results.get("warmup") or 0)
            if fix == "sample_more" and sampling is not None:  # keeps every block: a cut biases (health.py)
                total = blocks + max(blocks - used, 1)
                self.status.log("health-fix", check=check, detail=detail, writer={sampling: total})
                return result.model_copy(update={"verdict": Verdict.incomplete, "more": {sampling: total},
                                                 "reason": f"{check}: {detail}; sampling as much again "
                                                 f"(to {total} blocks), warm-up kept at {used}"}), None
            if fix in ("sample_more", "more_warmup"):
                warmup = warmup_after_drift(blocks, used)
                self.status.log("health-fix", check=check, detail=detail, reader={"warmup": warmup})
                self.reader = type(self.reader).build(self.step_spec.name, {**self.reader.model_dump(),
                                                                             "warmup": warmup})
                return self._heal(self.reader.read(self.directory, exit_code), exit_code)
            key = next((k for k in ("tstep", "timestep") if k in type(self.writer).model_fields), None)
            if fix == "smaller_timestep" and key is not None:
                smaller = getattr(self.writer, key) / 2
                self.status.log("health-fix", check=check, detail=detail, writer={key: smaller})
                writer = self.writer.model_dump(mode="json") | {key: smaller}
                archived = archive(self.status, self.directory.parent)
                self.writer = type(self.writer).build(self.step_spec.name, writer)
                self.status.writer = writer
                return result, f"{check}: {detail}; redoing with {key} {smaller:g} (old run in {archived})"
        return result, None

    def _judge(self, result: ReadResult, what: str) -> str:
        """Apply a Reader verdict to the element."""
        self.status.result, self.status.reason = result.results, result.reason
        if result.verdict is Verdict.complete:
            self.status.reason = ""  # the Reader's words on success stay in the events log
            self.status.log("done", reason=result.reason)
            self.status.outputs = {k: f"{self.status.name}/{v}" for k, v in result.outputs.items()}
            self.status.state, self.status.failures = State.done, 0
            return f"{what}: done"
        if result.verdict is Verdict.incomplete:
            self.status.failures = 0
            self.writer.extend(result)
            self.status.writer = self.writer.model_dump(mode="json")
            self.status.state = State.needs_more
            return f"{what}: needs more ({result.reason})"
        self.status.failures += 1
        if result.retry and self.status.failures <= self.step_spec.max_retries:
            self.status.log("retry", reason=result.reason)
            self.status.state = State.ready
            return f"{what}: failed ({result.reason}); retrying"
        if result.retry:
            return self._fail(f"{result.reason} (failed {self.status.failures} times; retries exhausted)")
        return self._fail(result.reason)

    def rejudge(self) -> str:
        """Read the outputs again (after a Reader option changed in the plan) and re-decide."""
        exit_code = self.status.attempts[-1].exit_code if self.status.attempts else None
        writer_opts, _ = self.step_spec.split_options(f"step {self.step_spec.name!r}")
        self.writer = type(self.writer).build(self.step_spec.name, writer_opts)  # plan totals, not old extensions
        self.status.writer = self.writer.model_dump(mode="json")
        refused = self._write_inputs()
        if refused:
            return self._fail(refused)
        return self._judge(self.reader.read(self.directory, exit_code), "re-read")

    def _write_inputs(self) -> str | None:
        """Write the run's inputs; the Writer's refusal (an OptionError) as a reason, else None.

        A refusal fails the element once instead of being raised again on every pass.
        """
        wanted = self.writer.consumes + self.writer.optional_inputs
        try:
            self.writer.write(self.directory, {k: v for k, v in self.inputs.items() if k in wanted})
        except OptionError as exc:
            return f"inputs refused: {exc}"
        return None

    def _lineage(self) -> dict[str, dict[str, object]]:
        """Which element/attempt made each input this run uses, with a content hash of the file."""
        wanted = self.writer.consumes + self.writer.optional_inputs
        lineage: dict[str, dict[str, object]] = {}
        for name, path in self.inputs.items():
            if name in wanted:
                element, attempt = self.origins.get(name, ("", 0))
                lineage[name] = {"element": element, "attempt": attempt, "path": str(path.name),
                                 "sha256": file_sha256(path)}
        return lineage

    def _fail(self, reason: str) -> str:
        self.status.state, self.status.reason = State.failed, reason
        self.status.log("failed", reason=reason)
        return f"failed: {reason}"
