"""Plans: the jobs to run, from a TOML/JSON file or built in Python.

A plan file may give a ``steps`` template that every job follows, and per job only the
options that differ, as a table named after the step::

    root = "runs"
    [[steps]]
    name = "scf"
    code = "pyscf"
    method = "rhf"
    basis = "cc-pvdz"
    [[jobs]]
    id = "r1.40"
    scf = { atom = "H 0 0 0; H 0 0 1.40", unit = "bohr" }

Every option is checked against the code's Writer and Reader now, before anything runs;
an error names the file, job, step and key.
"""
from __future__ import annotations

import difflib
import hashlib
import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from .codes import get_method
from .codes.base import format_validation_error
from .errors import OptionError, PlanError
from .lock import read_plan_file
from .naming import check_name
from .preflight import check_step, refuse_strings
from .profiles import DEFAULT_PROFILE, load_profiles
from .runners.base import Resources
from .templates import expand_foreach, expand_scans

if TYPE_CHECKING:
    from .codes.base import Writer
    from .profiles import MachineProfile

class Memo:
    """A value a model computes once from its fields; equal to every other Memo, so that models still
    compare (and round-trip) by their fields alone."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: Any = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Memo)

    __hash__ = None  # type: ignore[assignment]


STEP_KEYS = {"name", "code", "method", "runner", "resources", "max_retries", "max_attempts", "max_core_hours",
             "after"}


class Step(BaseModel):
    """One element of a job: which code and method, where it runs, and its options."""

    model_config = ConfigDict(extra="forbid")

    name: str
    code: str
    method: str
    after: str | None = None
    """The step whose outputs this one takes (and waits for); None for a job's first step."""
    runner: str = DEFAULT_PROFILE
    """The machine profile the step runs on (profiles.py)."""
    resources: Resources = Field(default_factory=Resources)
    max_retries: int = Field(3, ge=0, le=100)
    """Consecutive failed attempts retried before the element fails."""
    max_attempts: int = Field(50, ge=1, le=10000)
    """All attempts (continuations included) before the element fails."""
    max_core_hours: float | None = Field(None, gt=0)
    """Wall time × cores of all attempts before the element fails (None: no cap)."""
    options: dict[str, Any] = Field(default_factory=dict)
    _key: Memo = PrivateAttr(default_factory=Memo)
    """The canonical text of the plan entry this step was made from (None if built in Python): steps with
    the same key are checked once per plan, and share their spec (see :meth:`spec`)."""
    _specs: Memo = PrivateAttr(default_factory=Memo)
    """``after`` → spec, shared by the copies of one plan entry (:func:`_made_step`)."""

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return check_name(value, "step name")

    def split_options(self, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split ``options`` into Writer and Reader options; unknown keys are an OptionError."""
        writer_cls, reader_cls = get_method(self.code, self.method)
        wkeys, rkeys = set(writer_cls.model_fields), set(reader_cls.model_fields)
        writer_opts = {k: v for k, v in self.options.items() if k in wkeys}
        reader_opts = {k: v for k, v in self.options.items() if k in rkeys}
        if "method" in wkeys:  # e.g. PySCF's rhf/uhf/...: one Writer serves several methods
            writer_opts.setdefault("method", self.method)
        unknown = sorted(set(self.options) - wkeys - rkeys)
        if unknown:
            known = sorted((wkeys | rkeys | STEP_KEYS) - {"python"})
            hint = difflib.get_close_matches(unknown[0], known, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else f"; known: {', '.join(known)}"
            raise OptionError(f"{where}: unknown option {unknown[0]!r}{extra}")
        return writer_opts, reader_opts

    def check(self, where: str) -> None:
        """Build the Writer and Reader once so every option error surfaces now (see preflight.py)."""
        writer_cls, reader_cls = get_method(self.code, self.method)
        writer_opts, reader_opts = self.split_options(where)
        writer = writer_cls.build(where, writer_opts)
        reader_cls.build(where, {**reader_opts, **writer.reader_hints()})
        check_step(self, writer, where)

    def writer(self, where: str) -> Writer:
        """A Writer of this step's options (built anew: keeping one per step costs more than building it)."""
        writer_cls = get_method(self.code, self.method)[0]
        return writer_cls.build(where, self.split_options(where)[0])

    def spec(self) -> dict[str, Any]:
        """The JSON form stored in status.json and compared with later plans.

        Steps copied from one plan entry (only ``after`` may differ, see Job) dump it once: at 10k scan
        jobs this was a third of building their planned statuses. Nested values are shared, never mutated.
        """
        if self._key.value is None:
            return self.model_dump(mode="json", exclude_defaults=False)
        if self._specs.value is None:
            self._specs.value = {}
        known: dict[str | None, dict[str, Any]] = self._specs.value
        if self.after not in known:
            known[self.after] = self.model_dump(mode="json", exclude_defaults=False)
        return dict(known[self.after])


class Job(BaseModel):
    """A job of the plan: an id and its ordered steps."""

    model_config = ConfigDict(extra="forbid")

    id: str
    steps: list[Step]
    variables: dict[str, Any] = Field(default_factory=dict)
    """What this job is a point of (scan variables, or labels given in [[jobs]]); used by reports."""

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        return check_name(value, "job id")

    @model_validator(mode="after")
    def _chain_by_default(self) -> Job:
        """A step that names no ``after`` takes its inputs from the step before it."""
        for previous, step in itertools.pairwise(self.steps):
            if step.after is None:
                step.after = previous.name
        return self


class Plan(BaseModel):
    """The whole ensemble: where it lives and its jobs, in order."""

    model_config = ConfigDict(extra="forbid")

    root: Path
    jobs: list[Job]
    machines: Path | None = None
    source: Path | None = None
    _profiles: Memo = PrivateAttr(default_factory=Memo)

    def profiles(self) -> dict[str, MachineProfile]:
        """The machine profiles of the plan, read and validated once."""
        if self._profiles.value is None:
            self._profiles.value = load_profiles(self.machines)
        return self._profiles.value  # type: ignore[no-any-return]

    def check(self) -> Plan:
        """Refuse duplicate ids and step names, and any bad option, naming them."""
        seen: set[str] = set()
        where_file = f"{self.source}: " if self.source else ""
        profiles = self.profiles()
        checked: set[str] = set()  # keys of step entries already checked (identical across scan jobs)
        for job in self.jobs:
            if job.id in seen:
                raise PlanError(f"{where_file}duplicate job id {job.id!r}")
            seen.add(job.id)
            names: set[str] = set()
            for step in job.steps:
                if step.name in names:
                    raise PlanError(f"{where_file}job {job.id!r}: duplicate step name {step.name!r}")
                where = f"{where_file}job {job.id!r}, step {step.name!r}"
                if step.after is not None and step.after not in names:
                    raise PlanError(f"{where}: after = {step.after!r} is not an earlier step of the job")
                names.add(step.name)
                key = step._key.value
                if key is None or key not in checked:
                    step.check(where)
                    if key is not None:
                        checked.add(key)
                if step.runner not in profiles:
                    raise PlanError(f"{where}: runner {step.runner!r} is not a machine profile "
                                    f"(known: {', '.join(sorted(profiles))})")
        return self


def load_plan(path: Path, root: Path | None = None) -> Plan:
    """Read and validate a plan file (``.toml`` or ``.json``), parsed once per process (lock.py)."""
    path = Path(path)
    found = read_plan_file(path, root)
    if found.problem:
        raise PlanError(found.problem)
    try:
        return plan_from_dict(found.raw, source=path, root=root)
    except RecursionError:
        raise PlanError(f"{path}: nested too deeply to be a plan") from None


def plan_from_dict(raw: dict[str, Any], source: Path | None = None, root: Path | None = None) -> Plan:
    """Expand the ``steps`` template and per-job overrides, then validate."""
    head = PlanHead.of(raw, source, root)
    made: dict[str, Step] = {}
    cache: dict[tuple[int, str], list[Any]] = {}
    return head.plan([validate_job(merge_job(entry, head.template, head.prefix, index, cache), made)
                      for index, entry in enumerate(head.entries)])


class PlanHead:
    """A plan table checked at its top level: its template, raw job entries (scans expanded) and where
    it lives; its jobs are merged (:func:`merge_job`) and validated (:func:`validate_job`) one by one."""

    def __init__(self, prefix: str, template: list[Any], entries: list[Any], data: dict[str, Any]) -> None:
        self.prefix, self.template, self.entries, self.data = prefix, template, entries, data

    @classmethod
    def of(cls, raw: dict[str, Any], source: Path | None = None, root: Path | None = None) -> PlanHead:
        prefix = f"{source}: " if source else ""
        allowed = {"root", "machines", "steps", "jobs", "scans"}
        extra = sorted(set(raw) - allowed)
        if extra:
            raise PlanError(f"{prefix}unknown top-level key {extra[0]!r}; "
                            f"allowed: {', '.join(sorted(allowed))}")
        base = source.parent if source else Path.cwd()
        template = raw.get("steps", [])
        if not isinstance(template, list):
            raise PlanError(f"{prefix}'steps' must be an array of tables ([[steps]])")
        jobs_raw = raw.get("jobs", [])
        if not isinstance(jobs_raw, list):
            raise PlanError(f"{prefix}'jobs' must be an array of tables ([[jobs]])")
        jobs_raw = jobs_raw + expand_scans(raw.get("scans", []), prefix)
        if not jobs_raw:
            raise PlanError(f"{prefix}no jobs: add at least one [[jobs]] table with an 'id', "
                            "or a [[scans]] table")
        machines = raw.get("machines")
        if machines is not None and (not isinstance(machines, str) or "\0" in machines
                                     or not (base / machines).is_file()):
            raise PlanError(f"{prefix}machines = {str(machines)[:80]!r}: not a readable machine profile file")
        data = {"root": root or base / str(raw.get("root", ".")),
                "machines": base / str(machines) if machines else None, "source": source}
        return cls(prefix, template, jobs_raw, data)

    def profiles_digest(self) -> str:
        """A hash of the machine profile file's bytes ("" without one): a change re-validates every job."""
        machines = self.data["machines"]
        return "" if machines is None else hashlib.blake2b(machines.read_bytes(), digest_size=12).hexdigest()

    def plan(self, jobs: list[dict[str, Any]]) -> Plan:
        """The validated Plan of these (validated) jobs."""
        try:
            plan = Plan.model_validate({**self.data, "jobs": jobs})
        except ValidationError as exc:
            raise PlanError(format_validation_error(self.prefix.rstrip(": ") or "plan", exc)) from None
        return plan.check()


def merge_job(entry: Any, template: list[Any], prefix: str, index: int,
              cache: dict[tuple[int, str], list[Any]] | None = None) -> dict[str, Any]:
    """A job entry with its steps merged from the template and its overrides, ``foreach`` expanded, not
    validated: ``{"id", "where", "steps": [(number, merged entry, canonical JSON or None)], "variables"}``.

    ``cache``: the steps of jobs merged before, by their step list (the template, alive while the plan
    is) and overrides; jobs of a scan without per-step tables share one merge (entries never mutated).
    """
    if not isinstance(entry, dict) or "id" not in entry:
        raise PlanError(f"{prefix}jobs[{index}]: every job needs an 'id'")
    job_id = entry["id"]
    if not isinstance(job_id, str):
        raise PlanError(f"{prefix}jobs[{index}]: 'id' must be a string, got {type(job_id).__name__}")
    check_name(job_id, f"{prefix}job id")
    where = f"{prefix}job {job_id!r}"
    steps_raw = entry.get("steps", template)
    if not isinstance(steps_raw, list) or not steps_raw:
        raise PlanError(f"{where}: no steps (give a top-level [[steps]] template or the job's own 'steps')")
    names = [s.get("name") if isinstance(s, dict) and isinstance(s.get("name"), str) else None
             for s in steps_raw]
    overrides = {k: v for k, v in entry.items() if k not in ("id", "steps", "variables")}
    variables = entry.get("variables", {})
    if not isinstance(variables, dict):
        raise PlanError(f"{where}: 'variables' must be a table, e.g. variables = {{ r = 1.4 }}")
    for key, value in overrides.items():
        if key not in names:
            raise PlanError(f"{where}: unknown key {key!r}; a table here must be named after a step "
                            f"({', '.join(str(n) for n in names)})")
        if not isinstance(value, dict):
            raise PlanError(f"{where}: {key!r} must be a table of options for that step")
    known = _canonical(overrides) if cache is not None else None
    if cache is not None and known is not None and (id(steps_raw), known) in cache:
        return {"id": job_id, "where": where, "steps": cache[id(steps_raw), known], "variables": variables}
    steps = _merge_steps(steps_raw, overrides, where)
    if cache is not None and known is not None:
        cache[id(steps_raw), known] = steps
    return {"id": job_id, "where": where, "steps": steps, "variables": variables}


def _merge_steps(steps_raw: list[Any], overrides: dict[str, Any],
                 where: str) -> list[tuple[int, dict[str, Any], str | None]]:
    steps: list[tuple[int, dict[str, Any], str | None]] = []
    previous: dict[str, Any] | None = None
    for number, raw in enumerate(steps_raw):
        if not isinstance(raw, dict):
            raise PlanError(f"{where}: steps[{number}] must be a table")
        name = raw.get("name")
        merged = {**raw, **(overrides.get(name, {}) if isinstance(name, str) else {})}
        if "after" not in merged and previous is not None:
            if previous.get("foreach") is not None:
                raise PlanError(f"{where}: step {merged.get('name')!r} follows a 'foreach' step; "
                                "say which step it takes its inputs from with 'after'")
            merged["after"] = previous.get("name")
        previous = merged
        expanded = expand_foreach(merged, f"{where}, step {merged.get('name')!r}")
        steps += [(number, s, _canonical(s)) for s in expanded]
    return steps


def _canonical(merged: dict[str, Any]) -> str | None:
    """The canonical JSON of a merged step entry; None for values JSON cannot hold (dates, ...)."""
    try:
        return json.dumps(merged, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):
        return None


def job_key(merged: dict[str, Any], profiles: str) -> str | None:
    """A hash of a merged job entry (:func:`merge_job`) and the profiles' digest; None if it has none."""
    keys = [key for _, _, key in merged["steps"]]
    variables = _canonical(merged["variables"])
    if variables is None or None in keys:
        return None
    text = "\0".join([merged["id"], variables, profiles, *keys])
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def validate_job(merged: dict[str, Any], made: dict[str, Step]) -> dict[str, Any]:
    """The Job fields of a merged entry, its steps validated (an entry met before is copied)."""
    steps = [_made_step(entry, key, merged["where"], number, made) for number, entry, key in merged["steps"]]
    return {"id": merged["id"], "steps": steps, "variables": merged["variables"]}


def _made_step(merged: dict[str, Any], key: str | None, where: str, index: int,
               made: dict[str, Step]) -> Step:
    """The Step of a merged entry; an entry equal to one made before (same canonical JSON) is a copy of it.

    Only entries that validated are remembered, so an error still names the first job that has it.
    """
    if key is None:  # dates, or keys that are not strings: validate every time
        return _make_step(merged, where, index)
    known = made.get(key)
    if known is None:
        known = made[key] = _make_step(merged, where, index)
        known._key.value = key
    return known.model_copy()


def _make_step(merged: dict[str, Any], where: str, index: int) -> Step:
    merged = {k: v for k, v in merged.items() if k != "_foreach"}
    for key in ("name", "code", "method"):
        if not isinstance(merged.get(key), str):
            raise PlanError(f"{where}: steps[{index}] needs a string {key!r}")
    step_where = f"{where}, step {merged['name']!r}"
    fixed = {k: merged[k] for k in STEP_KEYS if k in merged}
    fixed["options"] = {k: v for k, v in merged.items() if k not in STEP_KEYS}
    refuse_strings(Step, {k: v for k, v in fixed.items() if k != "options"}, step_where)
    try:
        return Step.model_validate(fixed)  # a Step instance: the Plan does not validate it again
    except ValidationError as exc:
        raise PlanError(format_validation_error(step_where, exc)) from None

