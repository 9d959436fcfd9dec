"""Checks made when a plan is loaded, so that mistakes surface before anything runs.

* strings where a number or flag is expected (``tstep = "0.02"``) are refused, not coerced;
* each step's own checks, which its code declares as :meth:`Writer.preflight
  <autogenv2.codes.base.Writer.preflight>` (e.g. a PySCF molecule must build);
* a sampling total far beyond any plausible run needs ``max_core_hours`` (scaled by what the total
  counts, the Writer's ``sampling_unit``);
* the program a local step starts (QWalk, a Python interpreter) must exist (:func:`check_programs`;
  remote steps are checked at their first attempt by the Manager).

Every error is one line naming the file, job, step and option.
"""
from __future__ import annotations

import types
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from .errors import AutogenError, OptionError, PlanError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .codes.base import Writer
    from .plan import Plan, Step

PLAUSIBLE = {"blocks": 10**6, "iterations": 10**4}
"""Sampling totals above these (by ``sampling_unit``) need an explicit ``max_core_hours``."""
FASTEST_SECONDS = {"blocks": 0.01, "iterations": 1.0}
"""A generous lower bound of the seconds one block / iteration takes, for the cost estimate."""


# ------------------------------------------------------------------ strict types
def accepts_string(annotation: Any) -> bool:
    """Whether a field of this type may be given as a string (str, Path, str enum, str Literal, Any)."""
    if annotation is Any or annotation is str:
        return True
    if isinstance(annotation, type):
        return issubclass(annotation, (str, Path)) or (issubclass(annotation, Enum)
                                                       and issubclass(annotation, str))
    origin = get_origin(annotation)
    if origin is Literal:
        return any(isinstance(arg, str) for arg in get_args(annotation))
    if origin is Annotated:
        return accepts_string(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return any(accepts_string(arg) for arg in get_args(annotation))
    return False


def expected(annotation: Any) -> str:
    """A few words for what a non-string field wants."""
    text = str(annotation)
    if "bool" in text:
        return "true or false"
    if "int" in text and "float" not in text:
        return "an integer"
    if "float" in text or "int" in text:
        return "a number"
    return "a value that is not a string"


def refuse_strings(model: type[BaseModel], options: Mapping[str, Any], where: str) -> None:
    """OptionError for the first string given where the model expects a number, flag or list."""
    for key, value in options.items():
        field = model.model_fields.get(key)
        if field is None or not isinstance(value, str) or accepts_string(field.annotation):
            continue
        raise OptionError(f"{where}: option '{key}': expected {expected(field.annotation)}, got the string "
                          f"{value[:40]!r} (write it without quotes)")


# ------------------------------------------------------------------ sampling guards
def check_sampling(step: Step, writer: Writer, where: str) -> None:
    """Refuse a sampling total far beyond any plausible run unless ``max_core_hours`` caps it."""
    key, unit = writer.sampling_total(), writer.sampling_unit
    value = getattr(writer, key, None) if key else None
    limit = PLAUSIBLE.get(unit)
    if step.max_core_hours is not None or not isinstance(value, int) or limit is None or value <= limit:
        return
    hours = value * FASTEST_SECONDS[unit] / 3600
    raise OptionError(f"{where}: option '{key}': {value} is far beyond any plausible run "
                      f"(> {limit:g} {unit}); even at {FASTEST_SECONDS[unit]:g} s each it costs "
                      f"≥ {hours:.3g} core-hours. Lower it, or set max_core_hours to allow it")


def check_step(step: Step, writer: Writer, where: str) -> None:
    """The checks of one step that need its built Writer: the sampling guard, then the code's own."""
    check_sampling(step, writer, where)
    writer.preflight(where)


# ------------------------------------------------------------------ programs
def check_programs(plan: Plan) -> None:
    """The program of every step that runs on this machine exists (once per code/method/options)."""
    profiles = plan.profiles()
    seen: set[str] = set()
    where_file = f"{plan.source}: " if plan.source else ""
    for job in plan.jobs:
        for step in job.steps:
            profile = profiles.get(step.runner)
            key = repr((step.code, step.method, step.options.get("python")))
            if profile is None or not profile.runs_here or key in seen:
                continue
            seen.add(key)
            where = f"{where_file}job {job.id!r}, step {step.name!r}"
            writer = step.writer(where)
            try:
                writer.check_program()
            except AutogenError as exc:
                raise PlanError(f"{where}: {exc}") from None
