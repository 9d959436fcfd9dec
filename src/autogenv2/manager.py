"""Level 2: a Manager drives one job element to the completion its Reader demands.

``advance()`` makes at most one transition and returns what it did (or None when it must wait); a
plan *step* is an entry of the plan, which one Manager drives::

    planned --write inputs--> ready --start attempt--> running --read--> done
                                 ^                        |  \\--> needs_more --start--> running
                                 \\------ retry ----------/   \\--> failed (reason)

Before a submission the attempt is recorded as ``submitting`` and the status saved; the
runner's id is saved right after. A crash in between is healed on the next pass: the Runner
finds the attempt by its token, so nothing is ever submitted twice.

The Manager decides; the element's status changes itself (the transition methods of
``status.ElementStatus``). Policies come as parts the Manager composes without knowing any option
name: health fixes (health.py), walltime sizing (sizing.py), and the capabilities each Writer
declares (its sampling total, time step, continuation).
"""
from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import health
from .codes import get_method
from .codes.base import Reader, ReadResult, Writer
from .errors import OptionError, ProgramNotFoundError
from .naming import inside
from .plan import Step
from .planchange import archive
from .runners.base import Resources, Runner, RunRequest, RunStatus
from .runners.launch import claim
from .sizing import core_hours, size_to_walltime
from .states import Phase, State, Verdict
from .status import Attempt, ElementStatus

LOST_GRACE_SECONDS = 5.0
"""A just-submitted attempt the runner cannot see yet is given this long before it is abandoned.

Safety does not depend on it: abandoning claims the attempt's token, so a launch arriving later
exits without running the program (see runners/launch.py ``claim``)."""


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
        self.writer: Writer = writer_cls.build(step.name, status.writer or writer_opts)
        reader_opts.update(status.reader)  # settings of health fixes (e.g. a longer warm-up)
        self.reader: Reader = reader_cls.build(step.name, {**reader_opts, **self.writer.reader_hints()})
        status.writer = self.writer.model_dump(mode="json")

    # -- the one public operation ----------------------------------------------------
    def advance(self, ctx: Context) -> str | None:
        """Make one transition; return a description, or None if there is nothing to do now."""
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
        self.status.written(self._lineage())
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
        if size_to_walltime(self.writer, attempts, int(self.status.result.get("blocks") or 0), resources):
            self.status.writer = self.writer.model_dump(mode="json")
        refused = self._write_inputs()  # the totals of the last verdict, written only now (idempotent)
        if refused:
            return self._fail(refused)
        try:
            argv = self.writer.command()
        except ProgramNotFoundError as exc:  # retrying cannot help: fail once, record no attempt
            return self._fail(str(exc))
        attempt = self.status.start_attempt(f"ag2-{uuid.uuid4().hex[:12]}", self.step_spec.runner)
        ctx.save()  # the attempt is on disk before the runner hears of it
        return self._submit(ctx, attempt, argv)

    def _submit(self, ctx: Context, attempt: Attempt, argv: list[str]) -> str:
        request = RunRequest(directory=self.directory, argv=argv, token=attempt.token,
                             resources=ctx.resources(self.step_spec))
        ctx.active[attempt.runner] = ctx.active.get(attempt.runner, 0) + 1
        if ctx.bundle_size(attempt.runner) > 1:  # submitted with others by the pass (ensemble.flush_bundles)
            ctx.pending.setdefault(attempt.runner, []).append((request, attempt, ctx.save))
            return f"attempt {attempt.number} waits to be bundled"
        attempt.queued(ctx.runners(attempt.runner).start(request))
        return f"started attempt {attempt.number} ({attempt.runner} {attempt.runner_id})"

    def _follow(self, ctx: Context) -> str | None:
        attempt = self.status.attempts[-1]
        run = ctx.polled.get(attempt.token)
        if run is None:
            return None
        attempt.adopt(str(run.extra["runner_id"]) if "runner_id" in run.extra else "")
        if run.phase in (Phase.queued, Phase.running):
            return f"attempt {attempt.number} {run.phase}" if attempt.observe(run) else None
        if run.phase == Phase.lost and attempt.phase == Phase.submitting:
            if time.time() - attempt.submitted_at < LOST_GRACE_SECONDS:
                return None
            markers = self.directory / ".autogenv2"
            markers.mkdir(mode=0o755, parents=True, exist_ok=True)
            claim(markers, attempt.token)  # claimed (by us now, or by a launch that died): it can never run
            if not (markers / f"{attempt.token}.started").exists():
                self.status.abandon(attempt)
                return f"attempt {attempt.number} never reached the runner; a new one will start"
            return None  # it did start after all: the next poll sees it
        return self._finish(attempt, run)

    def _finish(self, attempt: Attempt, run: RunStatus) -> str:
        attempt.end(run)
        exit_code = run.exit_code if run.phase == Phase.finished else -9
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
        """Apply the next fix of each health finding (see health.py); fail if it persists after the last."""
        if result.verdict is not Verdict.complete:
            return result, None
        for finding in result.results.get("health") or []:
            check, detail = finding["check"], finding["detail"]
            fixes = health.FIXES.get(check) or ()
            if not fixes:
                self.status.flag(check, detail)
                continue
            done = self.status.fixes_done(check)
            if done >= len(fixes):
                return result, self._fail(f"health check {check!r} still fails after its fix: {detail}")
            fix = next((f for f in fixes[done:] if f.applies(finding, self.writer)), None)
            if fix is None:  # no fix fits this Writer (e.g. it has no time step): left as it is
                continue
            remedy = fix.apply(finding, self.writer, result.results)
            self.status.health_fix(check, detail, remedy.writer, remedy.reader)
            return self._remedy(result, exit_code, f"{check}: {detail}; {remedy.what}", remedy)
        return result, None

    def _remedy(self, result: ReadResult, exit_code: int | None, what: str,
                remedy: health.Remedy) -> tuple[ReadResult, str | None]:
        """Carry out a health fix: continue the run, read it again, or redo the element."""
        if remedy.how == "continue":
            return result.model_copy(update={"verdict": Verdict.incomplete, "more": remedy.writer,
                                             "reason": what}), None
        if remedy.how == "reread":
            options = {**self.reader.model_dump(), **remedy.reader}
            self.reader = type(self.reader).build(self.step_spec.name, options)
            return self._heal(self.reader.read(self.directory, exit_code), exit_code)
        writer = self.writer.model_dump(mode="json") | remedy.writer
        archived = archive(self.status, self.directory.parent)
        self.writer = type(self.writer).build(self.step_spec.name, writer)
        self.status.writer = writer
        return result, f"{what} (old run in {archived})"

    def _judge(self, result: ReadResult, what: str) -> str:
        """Apply a Reader verdict to the element."""
        if result.verdict is Verdict.complete:
            self.status.done(result.results, result.outputs, result.reason)
            return f"{what}: done"
        if result.verdict is Verdict.incomplete:
            self.writer.extend(result)
            self.status.needs_more(result.results, result.reason, self.writer.model_dump(mode="json"))
            return f"{what}: needs more ({result.reason})"
        failures = self.status.attempt_failed(result.results, result.reason)
        if result.retry and failures <= self.step_spec.max_retries:
            self.status.retry(result.reason)
            return f"{what}: failed ({result.reason}); retrying"
        if result.retry:
            return self._fail(f"{result.reason} (failed {failures} times; retries exhausted)")
        return self._fail(result.reason)

    def rejudge(self) -> str:
        """Read the outputs again (after a Reader option changed in the plan) and re-decide."""
        exit_code = self.status.attempts[-1].exit_code if self.status.attempts else None
        writer_opts, _ = self.step_spec.split_options(f"step {self.step_spec.name!r}")
        # the plan's totals, not the extensions of old attempts
        self.writer = type(self.writer).build(self.step_spec.name, writer_opts)
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
        self.status.fail(reason)
        return f"failed: {reason}"
