"""Explicit rules for a plan that changed since a job's status was written.

Each changed key of a step falls in exactly one class, decided in this order:

=====================  ==========================================  ==============================
change                 examples                                    rule
=====================  ==========================================  ==============================
step added             a DMC after VMC, a new ``foreach`` value    added as ``planned``
steps removed/renamed  ``vmc`` renamed ``vmc1``; order changed      refused (PlanConflict)
Reader option          target_error, target_confidence, warmup     outputs re-read against the new
                                                                   demand (tighter → sample more;
                                                                   looser → may end a run now)
sampling option        nblocks, max_iterations (Writer.sampling)   raise the total → continue the
                                                                   same run; lowering is ignored
run option             runner, resources, max_retries              used from the next attempt on
physical option        geometry, basis, timestep, nconfig, code     element and every step fed by it
                                                                   redone; old directories archived
=====================  ==========================================  ==============================

A redo or re-read of an element whose attempt is running is refused: cancel it first.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .codes import get_method
from .errors import PlanConflict
from .plan import Step
from .states import State
from .status import ElementStatus, JobStatus

RUN_KEYS = ("runner", "resources", "max_retries", "max_attempts", "max_core_hours")


@dataclass
class Change:
    """What one step's plan change requires."""

    redo: bool = False
    rejudge: bool = False
    described: list[str] = field(default_factory=list)


def classify(old: dict[str, Any], new: Step) -> Change:
    """Compare a stored step spec with the plan's step and say what must happen."""
    spec = new.spec()
    change = Change()
    if (old.get("code"), old.get("method")) != (new.code, new.method):
        change.redo = True
        change.described.append(f"code/method {old.get('code')}/{old.get('method')} → "
                                f"{new.code}/{new.method}")
        return change
    for key in RUN_KEYS:
        if old.get(key) != spec.get(key):
            change.described.append(f"{key} changed (applies to the next attempt)")
    writer_cls, reader_cls = get_method(new.code, new.method)
    old_opts, new_opts = old.get("options", {}), spec["options"]
    for key in sorted(set(old_opts) | set(new_opts)):
        before, after = old_opts.get(key), new_opts.get(key)
        if before == after:
            continue
        if key in reader_cls.model_fields and key not in writer_cls.model_fields:
            change.rejudge = True
            change.described.append(f"{key} {before} → {after} (re-read against the new demand)")
        elif key in writer_cls.sampling:
            change.rejudge = True
            change.described.append(f"{key} {before} → {after} (same run, new total)")
        else:
            change.redo = True
            change.described.append(f"{key} {before!r} → {after!r} (physical input: redo)")
    return change


def reconcile_steps(status: JobStatus, steps: list[Step], job_dir: Path) -> tuple[list[str], set[str]]:
    """Bring ``status`` in line with the plan's ``steps``.

    Returns (messages, names of elements to re-read). Raises PlanConflict when no rule applies.
    """
    old_names = [e.name for e in status.elements]
    new_names = [s.name for s in steps]
    if [n for n in new_names if n in old_names] != old_names:
        raise PlanConflict(
            f"job {status.job_id!r}: steps were {old_names}, the plan now has {new_names}; steps may be "
            "added but not removed, renamed or reordered. Use a new job id, or move the job directory away."
        )
    messages: list[str] = []
    rejudge: set[str] = set()
    redo: set[str] = set()
    by_name = {e.name: e for e in status.elements}
    for step in steps:
        element = by_name.get(step.name)
        if element is None:
            continue
        change = classify(element.spec, step)
        if step.after in redo:
            change.redo = True
            change.described.append(f"its input step {step.after!r} is redone")
        if not change.described:
            continue
        if (change.redo or change.rejudge) and element.state is State.running:
            raise PlanConflict(f"job {status.job_id!r}, step {step.name!r}: {'; '.join(change.described)} "
                               "while an attempt is running; wait for it or `autogenv2 cancel` it first")
        element.spec = step.spec()
        if change.redo:
            redo.add(step.name)
            messages.append(f"{status.job_id}/{step.name}: {'; '.join(change.described)}; redone, old run "
                            f"kept in {archive(element, job_dir)}")
        else:
            messages.append(f"{status.job_id}/{step.name}: " + "; ".join(change.described))
            if change.rejudge:
                rejudge.add(element.name)
    elements = []
    for step in steps:
        if step.name in by_name:
            elements.append(by_name[step.name])
        else:
            elements.append(new_element(step))
            messages.append(f"{status.job_id}/{step.name}: added")
    status.elements = elements
    return messages, rejudge


def archive(element: ElementStatus, job_dir: Path) -> str:
    """Move the element's directory aside, reset it to planned, and return the archive name."""
    source = job_dir / element.name
    number = len(element.archived) + 1
    target = job_dir / f"{element.name}.archived-{number}"
    while target.exists():
        number += 1
        target = job_dir / f"{element.name}.archived-{number}"
    if source.exists():
        os.replace(source, target)
    element.archive(target.name)
    return target.name


def new_element(step: Step) -> ElementStatus:
    """A fresh, planned element for ``step``."""
    return ElementStatus(name=step.name, code=step.code, method=step.method, spec=step.spec())
