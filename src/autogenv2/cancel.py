"""``autogenv2 cancel``: stop running attempts and mark their elements failed."""
from __future__ import annotations

from .ensemble import RunnerPool, lock
from .errors import PlanError
from .job import JobRun
from .plan import Plan
from .states import State


def cancel_jobs(plan: Plan, job_ids: list[str]) -> list[str]:
    """Cancel the attempts in flight of ``job_ids`` (all jobs when empty); returns messages."""
    known = {job.id for job in plan.jobs}
    unknown = [j for j in job_ids if j not in known]
    if unknown:
        raise PlanError(f"job {unknown[0]!r} is not in {plan.source or 'the plan'}")
    pool = RunnerPool(plan)
    messages = []
    with lock(plan.root).acquire(timeout=60):
        for job in plan.jobs:
            if job_ids and job.id not in job_ids:
                continue
            run = JobRun(job, plan.root)
            run.load()
            assert run.status is not None
            for element in run.status.elements:
                if element.state is not State.running:
                    continue
                attempt = element.attempts[-1]
                if attempt.runner_id:
                    pool.get(attempt.runner).cancel(attempt.runner_id)
                element.state, element.reason = State.failed, "cancelled by user (run --retry-failed to resume)"
                element.log("cancelled", runner_id=attempt.runner_id)
                messages.append(f"{job.id}/{element.name}: cancelled {attempt.runner} {attempt.runner_id}")
            run.save()
    return messages or ["nothing was running"]
