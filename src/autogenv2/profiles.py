"""Machine profiles: where runs go and what they ask for by default, from a TOML file.

.. code-block:: toml

    [machines.cluster]
    kind = "slurm"            # local | slurm | pbs
    max_queued = 50           # at most this many of our attempts queued or running at once
    python = "/home/me/venv/bin/python"   # interpreter on the compute nodes (default: this one)
    partition = "batch"       # any Resources field: nodes, tasks, cpus_per_task, memory, walltime,
    walltime = "02:00:00"     # partition, account, qos, extra, setup, launcher
    setup = ["module load gcc"]

A profile named ``local`` exists without any file (a file may redefine it). A step's own
Resources win over the profile's field by field (see :meth:`MachineProfile.resources_for`).
"""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import PlanError
from .naming import check_name
from .runners import Runner, get_runner
from .runners.base import Resources
from .runners.script import check_resources


class MachineProfile(BaseModel):
    """One ``[machines.NAME]`` table. Resources fields may be given flat in the table."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["local", "slurm", "pbs"]
    max_queued: int | None = Field(default=None, ge=1)
    """Throttle: becomes the runner's ``max_active`` (default: the runner's own)."""
    python: str = Field(default_factory=lambda: sys.executable)
    flavor: Literal["pbspro", "torque"] | None = None
    """PBS only: which qstat/qsub dialect the site speaks (default pbspro)."""
    resources: Resources = Field(default_factory=Resources)
    bundle: int = Field(default=1, ge=1, le=1000)
    """Pack up to this many attempts with equal resources into one allocation, run one after another."""

    @model_validator(mode="before")
    @classmethod
    def _gather_resources(cls, data: Any) -> Any:
        """Move flat Resources keys (``partition = ...``) into ``resources``."""
        if not isinstance(data, dict):
            return data
        flat = {key: data[key] for key in Resources.model_fields if key in data}
        if not flat:
            return data
        rest = {key: value for key, value in data.items() if key not in flat}
        nested = dict(rest.get("resources") or {})
        return {**rest, "resources": {**nested, **flat}}

    @model_validator(mode="after")
    def _check(self) -> MachineProfile:
        """Refuse now what the job script would refuse at the first submission."""
        if self.flavor is not None and self.kind != "pbs":
            raise ValueError(f"flavor is a PBS setting; kind is {self.kind!r}")
        if self.kind != "local":
            check_resources(self.kind, self.resources)
        return self

    def make_runner(self) -> Runner:
        """The runner this profile describes, throttled to ``max_queued``."""
        options: dict[str, Any] = {"max_active": self.max_queued, "python": self.python}
        if self.flavor is not None:
            options["flavor"] = self.flavor
        return get_runner(self.kind, **options)

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


BUILTIN = {"local": {"kind": "local"}}
"""Profiles that exist without a file."""


def load_profiles(path: Path | str | None = None) -> dict[str, MachineProfile]:
    """The built-in profiles plus those of the TOML file at ``path`` (if given)."""
    tables: dict[str, Any] = {name: dict(table) for name, table in BUILTIN.items()}
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
