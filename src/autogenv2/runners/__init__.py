"""Runners: one small module per computer system behind the :class:`~.base.Runner` protocol.

Adding a scheduler = adding a module and a line in :data:`BACKENDS`.
"""
from __future__ import annotations

import importlib
from typing import Any

from ..errors import PlanError
from .base import Resources, Runner, RunRequest, RunStatus

BACKENDS = {"local": "LocalRunner", "slurm": "SlurmRunner", "pbs": "PbsRunner", "fake": "FakeRunner"}

__all__ = ["BACKENDS", "Resources", "RunRequest", "RunStatus", "Runner", "get_runner"]


def get_runner(kind: str, **options: Any) -> Runner:
    """Instantiate the backend ``kind`` (imported lazily) with profile ``options``."""
    if kind not in BACKENDS:
        raise PlanError(f"unknown runner kind {kind!r}; known: {', '.join(BACKENDS)}")
    module = importlib.import_module(f"{__name__}.{kind}")
    return getattr(module, BACKENDS[kind])(**options)  # type: ignore[no-any-return]
