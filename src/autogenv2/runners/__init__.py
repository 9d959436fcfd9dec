"""Runners: one self-contained module per computer system behind the :class:`~.base.Runner` contract.

Each backend module (``local.py``, ``slurm.py``, ``pbs.py``) holds its kind name, its directives,
the options it reserves, its own profile settings and its bundling. Adding a scheduler = adding a
module ``runners/<kind>.py`` and one line in :data:`BACKENDS`; machine profiles take their kinds
from here (docs/architecture.md, "Add a scheduler").
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported on first use: the launch wrapper (runners/launch.py) starts without pydantic
    from .base import Resources, Runner, RunnerClass, RunRequest, RunStatus

BACKENDS = {
    "local": "LocalRunner",
    "slurm": "SlurmRunner",
    "pbs": "PbsRunner",
    "fake": "FakeRunner",  # in-process, scripted outcomes: the engine's fast tests (tests/test_engine_*)
}
"""Kind name (= module name) → Runner class name: the one registry line per scheduler."""

__all__ = ["BACKENDS", "Resources", "RunRequest", "RunStatus", "Runner", "get_runner", "runner_class"]


def __getattr__(name: str) -> Any:
    if name in ("Resources", "Runner", "RunnerClass", "RunRequest", "RunStatus"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def runner_class(kind: str) -> RunnerClass:
    """The Runner class of backend ``kind`` (its module imported on first use)."""
    if kind not in BACKENDS:
        from ..errors import PlanError

        raise PlanError(f"unknown runner kind {kind!r}; known: {', '.join(BACKENDS)}")
    module = importlib.import_module(f"{__name__}.{kind}")
    return getattr(module, BACKENDS[kind])  # type: ignore[no-any-return]


def get_runner(kind: str, **options: Any) -> Runner:
    """Instantiate the backend ``kind`` with profile ``options`` (max_active, python, its settings)."""
    return runner_class(kind)(**options)
