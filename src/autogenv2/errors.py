"""Exceptions. Every expected failure derives from :class:`AutogenError`.

The CLI prints ``str(error)`` on one line and exits 1 for these; anything else is a bug
and is reported with a hint to rerun with ``--traceback``.
"""
from __future__ import annotations


class AutogenError(Exception):
    """Base class of every error autogenv2 expects and explains."""


class PlanError(AutogenError, ValueError):
    """A plan file or plan object is invalid. The message names the job, key and problem."""


class OptionError(PlanError):
    """A Writer/Reader option is unknown or has the wrong type or value."""


class StatusError(AutogenError):
    """A status file is unreadable, corrupt or from a newer schema."""


class RunnerError(AutogenError, RuntimeError):
    """A scheduler command failed (its stderr is in the message)."""


class LockedError(AutogenError):
    """Another ``autogenv2 run`` holds the root's lock."""


class PlanConflict(AutogenError):
    """The plan changed in a way no rule resolves; the message says what changed."""


class UnsafeNameError(PlanError):
    """A job id, step name or file name could escape its directory or reach a shell."""


class AnalysisError(AutogenError, ValueError):
    """Input to an analysis function (twist average, extrapolation) is unusable; names the argument."""
