"""Machine profiles: where runs go and what they ask for by default, from a TOML file.

.. code-block:: toml

    [machines.cluster]
    kind = "slurm"            # a key of runners.BACKENDS: local | slurm | pbs
    max_queued = 50           # at most this many of our attempts queued or running at once
    python = "/home/me/venv/bin/python"   # interpreter on the compute nodes (default: this one)
    partition = "batch"       # any Resources field: nodes, tasks, cpus_per_task, memory, walltime,
    walltime = "02:00:00"     # partition, account, qos, extra, setup, launcher
    setup = ["module load gcc"]

A profile named ``local`` (:data:`DEFAULT_PROFILE`) exists without any file (a file may redefine it).
A step's own Resources win over the profile's field by field (see :meth:`MachineProfile.resources_for`).
Nothing here names a backend: the kinds, each backend's own settings (PBS ``flavor``), its resource
checks and how many attempts it may bundle come from the Runner classes of ``runners.BACKENDS``.
"""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import PlanError
from .naming import check_name
from .runners import BACKENDS, Runner, get_runner, runner_class
from .runners.base import Resources, RunnerClass


class MachineProfile(BaseModel):
    """One ``[machines.NAME]`` table. Resources fields may be given flat in the table."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str
    """Which backend: a key of ``runners.BACKENDS``."""
    max_queued: int | None = Field(default=None, ge=1)
    """Throttle: becomes the runner's ``max_active`` (default: the runner's own)."""
    python: str = Field(default_factory=lambda: sys.executable)
    settings: dict[str, str] = Field(default_factory=dict)
    """The backend's own keys (its Runner class's ``settings``), given flat: ``flavor = "torque"``."""
    resources: Resources = Field(default_factory=Resources)
    bundle: int = Field(default=1, ge=1, le=1000)
    """Pack up to this many attempts with equal resources into one allocation, run one after another."""

    @model_validator(mode="before")
    @classmethod
    def _gather(cls, data: Any) -> Any:
        """Move flat Resources keys (``partition = ...``) to ``resources``, backend keys to ``settings``."""
        if not isinstance(data, dict):
            return data
        flat = {key: data[key] for key in Resources.model_fields if key in data}
        own = {key: data[key] for key in _backend_keys() if key in data}
        rest = {key: value for key, value in data.items() if key not in flat and key not in own}
        if flat:
            rest["resources"] = {**dict(rest.get("resources") or {}), **flat}
        if own:
            rest["settings"] = {**dict(rest.get("settings") or {}), **own}
        return rest

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in BACKENDS:
            raise ValueError(f"unknown runner kind {kind!r}; known: {', '.join(BACKENDS)}")
        return kind

    @model_validator(mode="after")
    def _check(self) -> MachineProfile:
        """Refuse now what the job script would refuse at the first submission."""
        backend = self.backend()
        for key, value in self.settings.items():
            if key not in backend.settings:
                owners = [kind.upper() for kind in BACKENDS if key in _settings_of(kind)]
                raise ValueError(f"{key} is {'a ' + '/'.join(owners) if owners else 'not a'} setting; "
                                 f"kind is {self.kind!r}")
            allowed = backend.settings[key]
            if (allowed and value not in allowed) or any(c in value for c in "\n\r\0"):
                raise ValueError(f"{key} {value!r}: expected " + (f"one of {', '.join(allowed)}" if allowed
                                                                 else "a single line of text"))
        if self.bundle > backend.max_bundle:
            raise ValueError(f"bundle = {self.bundle}: a {self.kind} runner bundles at most "
                             f"{backend.max_bundle}")
        backend.check_resources(self.resources)
        return self

    def backend(self) -> RunnerClass:
        """The Runner class of this profile's kind."""
        return runner_class(self.kind)

    @property
    def runs_here(self) -> bool:
        """Its runs use this machine (so ``run`` checks that their programs exist)."""
        return self.backend().runs_here

    def make_runner(self) -> Runner:
        """The runner this profile describes, throttled to ``max_queued``."""
        return get_runner(self.kind, max_active=self.max_queued, python=self.python, **self.settings)

    def resources_for(self, step: Resources | None) -> Resources:
        """The profile's resources overlaid by the step's: every field the step sets wins."""
        return merge_resources(self.resources, step)


def merge_resources(base: Resources, step: Resources | None) -> Resources:
    """``base`` with every field ``step`` gives a value (not None, not an empty list) replaced.

    The rule ignores which fields were "set", so a step that went through ``model_dump()`` and
    back (all fields set, lists empty) does not wipe the profile's ``setup`` or ``extra``.

    >>> base = Resources(partition="batch", walltime="1:00:00")
    >>> merge_resources(base, Resources(walltime="10")).model_dump(exclude_defaults=True)
    {'walltime': '10', 'partition': 'batch'}
    """
    if step is None:
        return base.model_copy()
    chosen = {key for key in Resources.model_fields if getattr(step, key) not in (None, [])}
    values = {**base.model_dump(exclude_unset=True), **step.model_dump(include=chosen)}
    return Resources(**values)


DEFAULT_PROFILE = "local"
"""The profile of a step that names no ``runner``: it exists without a file (a file may redefine it)."""


def builtin_tables() -> dict[str, dict[str, Any]]:
    """Profiles that exist without a file: :data:`DEFAULT_PROFILE`, of the first backend that runs here."""
    return {DEFAULT_PROFILE: {"kind": next(kind for kind in BACKENDS if runner_class(kind).runs_here)}}


def load_profiles(path: Path | str | None = None) -> dict[str, MachineProfile]:
    """The built-in profiles plus those of the TOML file at ``path`` (if given)."""
    tables: dict[str, Any] = builtin_tables()
    if path is not None:
        tables.update(_read_tables(Path(path)))
    profiles = {}
    for name, table in tables.items():
        where = f"{path}: [machines.{name}]" if path is not None else f"profile {name!r}"
        check_name(name, f"{path}: machine name")
        try:
            profiles[name] = MachineProfile(name=name, **table)
        except ValidationError as exc:
            problem = exc.errors()[0]
            key = ".".join(str(part) for part in problem["loc"] if part != "resources")
            message = str(problem["msg"]).removeprefix("Value error, ")
            raise PlanError(f"{where}: {key + ': ' if key else ''}{message}") from None
    return profiles


def _backend_keys() -> set[str]:
    """Every key some backend takes in a profile (its Runner class's ``settings``)."""
    return {key for kind in BACKENDS for key in _settings_of(kind)}


def _settings_of(kind: str) -> dict[str, tuple[str, ...]]:
    """A backend's own profile keys (none if it declares none; tests/test_registry.py checks it does)."""
    settings: dict[str, tuple[str, ...]] = getattr(runner_class(kind), "settings", {})
    return settings


def _read_tables(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"{path}: no such machine profile file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PlanError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"machines"})
    if unknown:
        raise PlanError(f"{path}: unknown top-level key {unknown[0]!r}; profiles go under [machines.NAME]")
    machines = data.get("machines", {})
    for name, table in machines.items():
        if not isinstance(table, dict):
            raise PlanError(f"{path}: machines.{name} must be a table ([machines.{name}])")
        if "name" in table:
            raise PlanError(f"{path}: [machines.{name}]: 'name' is the table's own name; remove the key")
    return dict(machines)
