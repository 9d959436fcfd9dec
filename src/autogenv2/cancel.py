"""``autogenv2 cancel``: stop running attempts and mark their elements failed."""
from __future__ import annotations

from .ensemble import RunnerPool
from .errors import PlanError
from .index import Index
from .job import JobRun
from .lock import root_lock
from .plan import Plan
from .states import State


def cancel_jobs(plan: Plan, job_ids: list[str], wait: float = 60) -> list[str]:
    """Cancel the attempts in flight of ``job_ids`` (all jobs when empty); returns messages.

    Takes the root's lock like ``run`` (waiting up to ``wait`` seconds): a busy root is one LockedError line.
    """
    known = {job.id for job in plan.jobs}
    unknown = [j for j in job_ids if j not in known]
    if unknown:
        raise PlanError(f"job {unknown[0]!r} is not in {plan.source or 'the plan'}")
    pool = RunnerPool(plan)
    messages: list[str] = []
    with root_lock(plan.root, wait), Index(plan.root) as index:
        runs = [JobRun(job, plan.root) for job in plan.jobs if not job_ids or job.id in job_ids]
        for run in runs:
            messages += _cancel_job(run, pool)
        index.update((run.status, run.is_finished()) for run in runs if run.status is not None)
    return messages or ["nothing was running"]


def _cancel_job(run: JobRun, pool: RunnerPool) -> list[str]:
    """Cancel one job's running attempts, block what waited on them, save its status."""
    run.load()
    assert run.status is not None
    messages = []
    for element in run.status.elements:
        if element.state is not State.running:
            continue
        attempt = element.attempts[-1]
        if attempt.runner_id:
            pool.get(attempt.runner).cancel(attempt.runner_id)
        element.cancel(attempt.runner_id)
        messages.append(f"{run.job.id}/{element.name}: cancelled {attempt.runner} {attempt.runner_id}")
    run.save()
    messages += run.update_blocked()
    return messages
