"""EnsembleRun: one reconcile pass over every job of a plan (``autogenv2 run PLAN``).

For each job: read its status (a new job's is made in memory and written with ``<root>/<jobid>/``
at its first step), apply plan changes by the rules of :mod:`autogenv2.planchange`, ask each
Runner once about every attempt in flight, and then step each job's Managers as far as they go
without waiting. A pass holds the root's lock, so
two ``run`` invocations never act at once; ``--watch`` repeats passes.
"""
from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EXIT_ERROR, EXIT_FAILED, EXIT_OK, EXIT_RUNNING, AutogenError, PlanError
from .fastpath import failed_rows, has_index, noop_counts
from .incremental import Selection, count_kept, select
from .index import Index
from .job import JobRun
from .lock import read_plan_file, root_lock
from .manager import Context
from .plan import Plan, Step
from .preflight import check_programs
from .profiles import MachineProfile
from .progress import progress_line
from .runners import Runner
from .runners.base import Resources, RunRequest, RunStatus
from .states import State
from .status import Attempt
from .storage import sync_pending

PROGRESS_LINES = 20
"""Running elements described one by one in ``--watch`` (the rest are counted)."""


@dataclass
class PassReport:
    """What one reconcile pass did and where every job stands."""

    actions: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    unfinished: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    """(``job/element``, state, reason) of every failed or blocked element."""
    progress: list[str] = field(default_factory=list)
    """One line per running element (the first PROGRESS_LINES): blocks done of planned, error, time to go."""
    progress_more: int = 0
    """Running elements beyond those."""
    root: Path | None = None
    """The root directory the pass worked on."""

    @property
    def finished(self) -> bool:
        return self.unfinished == 0

    @property
    def exit_code(self) -> int:
        """What ``autogenv2 run`` exits with after this pass (see errors.EXIT_*)."""
        if self.errors:
            return EXIT_ERROR
        if self.failed:
            return EXIT_FAILED
        return EXIT_OK if self.finished else EXIT_RUNNING


class RunnerPool:
    """Runners by machine-profile name, created once per pass."""

    def __init__(self, plan: Plan) -> None:
        self.profiles = plan.profiles()
        self._runners: dict[str, Runner] = {}

    def _profile(self, name: str) -> MachineProfile:
        try:
            return self.profiles[name]
        except KeyError:
            raise AutogenError(f"runner {name!r} is not a machine profile (known: {', '.join(self.profiles)})"
                               ) from None

    def get(self, name: str) -> Runner:
        if name not in self._runners:
            self._runners[name] = self._profile(name).make_runner()
        return self._runners[name]

    def bundle_size(self, name: str) -> int:
        """How many attempts one allocation of this profile may carry (1 = no bundling)."""
        return self._profile(name).bundle  # a profile never asks more than its runner's max_bundle

    def resources(self, step: Step) -> Resources:
        """The profile's default resources overlaid with the step's own."""
        return self._profile(step.runner).resources_for(step.resources)


def reconcile(plan: Plan, retry_failed: bool = False, wait: float = 0) -> PassReport:
    """One pass over the plan. Raises LockedError if another run holds the root."""
    check_programs(plan)
    with fewer_collections(), root_lock(plan.root, wait):
        return _reconcile_indexed(plan, retry_failed)


def reconcile_file(path: Path, root: Path | None = None, retry_failed: bool = False,
                   wait: float = 0) -> tuple[PassReport, Path]:
    """A pass driven by a plan file: the file is parsed once, the root locked once.

    With an index, the lock is taken first and a pass that would change nothing (fastpath.noop_counts)
    ends there, before the plan is expanded; otherwise only the jobs whose plan entry, profiles or status
    changed are validated and loaded (incremental.select). Without an index (first pass), the plan is
    validated before the lock creates the root.
    """
    found = read_plan_file(path, root)
    if found.problem:
        raise PlanError(found.problem)
    with ExitStack() as held:
        held.enter_context(fewer_collections())
        if not retry_failed and has_index(found.root):
            held.enter_context(root_lock(found.root, wait))
            counts = noop_counts(found)
            if counts is not None:
                return PassReport(states=counts, failed=failed_rows(found.root), root=found.root), found.root
        chosen = select(found, root, retry_failed)
        check_programs(chosen.plan)
        held.enter_context(root_lock(chosen.plan.root, wait))  # shared if held above
        report = _reconcile_indexed(chosen.plan, retry_failed, found.fingerprint, chosen)
    return report, chosen.plan.root


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Rarer garbage collections while a pass builds its many small objects (-19 % CPU at 10k new jobs:
    each young-generation collection otherwise keeps rescanning what the plan already holds)."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 100_000), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _reconcile_indexed(plan: Plan, retry_failed: bool, fingerprint: str = "",
                       chosen: Selection | None = None) -> PassReport:
    """A pass over ``plan``'s jobs, keeping the index in step (dirty while the pass runs); the jobs
    ``chosen`` left alone keep their rows and are counted from them."""
    with Index(plan.root) as index:
        index.set_meta(dirty="1", plan="")
        report, runs = _reconcile_locked(plan, retry_failed)
        sync_pending()  # the pass's status writes, durable at once before the index calls them clean
        index.update(((run.status, run.is_finished()) for run in runs if run.status is not None),
                     every_job=True,  # jobs still without a status file are indexed as planned
                     keys=chosen.keys if chosen is not None else None)
        if chosen is not None and chosen.kept:
            states, failed = count_kept(index, chosen.kept)
            for state, number in states.items():
                report.states[state] = report.states.get(state, 0) + number
            report.failed += failed
        index.set_meta(dirty="0", plan=fingerprint if not report.errors else "")
    report.root = plan.root
    return report


def _reconcile_locked(plan: Plan, retry_failed: bool) -> tuple[PassReport, list[JobRun]]:
    report = PassReport()
    pool = RunnerPool(plan)
    jobs: list[JobRun] = []
    for job in plan.jobs:
        run = JobRun(job, plan.root)
        try:
            report.messages += run.load()
        except AutogenError as exc:
            report.errors.append(str(exc))
            continue
        if retry_failed:
            report.messages += _reopen_failed(run)
        jobs.append(run)
    ctx = Context(runners=pool.get, resources=pool.resources, bundle_size=pool.bundle_size)
    ctx.polled, ctx.active = _poll_all(jobs, pool, report)
    for run in jobs:
        try:
            report.actions += run.advance(ctx)
        except AutogenError as exc:
            report.errors.append(f"job {run.job.id!r}: {exc}")
    flush_bundles(ctx, pool, report)
    for run in jobs:
        assert run.status is not None
        for element in run.status.elements:
            report.states[element.state.value] = report.states.get(element.state.value, 0) + 1
            name = f"{run.job.id}/{element.name}"
            if element.state in (State.failed, State.blocked):
                report.failed.append((name, element.state.value, element.reason))
            elif element.state in (State.running, State.needs_more) and len(report.progress) < PROGRESS_LINES:
                report.progress.append(progress_line(name, element, run.directory / element.name))
            elif element.state in (State.running, State.needs_more):
                report.progress_more += 1
        report.unfinished += 0 if run.is_finished() else 1
    report.unfinished += len(plan.jobs) - len(jobs)
    return report, jobs


def flush_bundles(ctx: Context, pool: RunnerPool, report: PassReport) -> None:
    """Submit the attempts deferred by bundling profiles, up to ``bundle`` per allocation.

    Each attempt was saved as ``submitting`` before; if autogenv2 dies before the allocation's id
    is saved, the next passes find the attempts by their tokens or abandon them by claiming the
    token, so a late start never runs a program twice.
    """
    for runner_name, items in ctx.pending.items():
        size = pool.bundle_size(runner_name)
        groups: dict[str, list[tuple[RunRequest, Attempt, Callable[[], None]]]] = {}
        for item in items:
            groups.setdefault(item[0].resources.model_dump_json(), []).append(item)
        for group in groups.values():
            for start in range(0, len(group), size):
                chunk = group[start:start + size]
                try:
                    job_id = pool.get(runner_name).start_bundle([request for request, _, _ in chunk])
                except AutogenError as exc:
                    report.errors.append(f"runner {runner_name!r}: bundle of {len(chunk)} not submitted "
                                         f"({exc})")
                    continue
                for _, attempt, save in chunk:
                    attempt.queued(job_id)
                    save()
                report.actions.append(f"bundled {len(chunk)} attempts into {runner_name} job {job_id}")
    ctx.pending.clear()


def _poll_all(jobs: list[JobRun], pool: RunnerPool,
              report: PassReport) -> tuple[dict[str, RunStatus], dict[str, int]]:
    """One poll per runner for all attempts in flight; also counts them per runner."""
    by_runner: dict[str, dict[str, tuple[str, Path]]] = {}
    for run in jobs:
        for runner, token, runner_id, directory in run.active_attempts():
            by_runner.setdefault(runner, {})[token] = (runner_id, directory)
    polled: dict[str, RunStatus] = {}
    active: dict[str, int] = {}
    for runner, attempts in by_runner.items():
        try:
            results = pool.get(runner).poll(attempts)
        except AutogenError as exc:  # scheduler down: its attempts wait, nothing is started there
            report.errors.append(f"runner {runner!r}: cannot poll ({exc}); its {len(attempts)} attempts wait")
            active[runner] = 10**9
            continue
        polled.update(results)
        active[runner] = sum(1 for r in results.values() if r.phase in ("queued", "running"))
    return polled, active


def _reopen_failed(run: JobRun) -> list[str]:
    assert run.status is not None
    messages = []
    for element in run.status.elements:
        if element.reopen("--retry-failed"):
            messages.append(f"{run.job.id}/{element.name}: reopened (was failed: {element.reason})")
    if messages:
        run.save()
    return messages


def watch(plan: Plan | Path, interval: float, on_pass: Callable[[PassReport], None],
          retry_failed: bool = False, max_passes: int | None = None, root: Path | None = None) -> PassReport:
    """Repeat passes until every job is done or failed (or ``max_passes``); ``plan`` may be a file."""
    passes = 0
    while True:
        retry = retry_failed and passes == 0
        if isinstance(plan, Plan):
            report = reconcile(plan, retry_failed=retry, wait=interval * 10)
        else:
            report, _ = reconcile_file(plan, root=root, retry_failed=retry, wait=interval * 10)
        on_pass(report)
        passes += 1
        if report.finished or (max_passes is not None and passes >= max_passes):
            return report
        time.sleep(interval)
