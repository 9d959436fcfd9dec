"""autogenv2: set up, run, babysit and store quantum Monte Carlo calculations.

Public names are imported on first use, so ``autogenv2 inspect`` and other light commands
do not pay for pandas, pydantic plans and the scheduler code.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PassReport": "ensemble", "reconcile": "ensemble", "watch": "ensemble",
    "AutogenError": "errors", "PlanConflict": "errors", "PlanError": "errors", "StatusError": "errors",
    "Job": "plan", "Plan": "plan", "Step": "plan", "load_plan": "plan", "plan_from_dict": "plan",
    "results": "results_table", "State": "states",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'autogenv2' has no attribute {name!r}")
