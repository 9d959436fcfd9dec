"""autogenv2: set up, run, babysit and store quantum Monte Carlo calculations."""
from __future__ import annotations

from .ensemble import PassReport, reconcile, watch
from .errors import AutogenError, PlanConflict, PlanError, StatusError
from .plan import Job, Plan, Step, load_plan, plan_from_dict
from .results import results
from .states import State

__all__ = ["AutogenError", "Job", "PassReport", "Plan", "PlanConflict", "PlanError", "State", "StatusError", "Step",
           "load_plan", "plan_from_dict", "reconcile", "results", "watch"]
__version__ = "0.1.0"
