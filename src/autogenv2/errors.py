"""Exceptions. Every expected failure derives from :class:`AutogenError`.

The CLI prints ``str(error)`` on one line and exits 1 for these; anything else is a bug
and is reported with a hint to rerun with ``--traceback`` (exit 70).
"""
from __future__ import annotations

EXIT_OK = 0
"""Every element of the plan is done."""
EXIT_ERROR = 1
"""The command could not do its work: an invalid plan, a locked root, an unreadable file."""
EXIT_USAGE = 2
"""The command line itself is wrong (unknown option, missing argument)."""
EXIT_FAILED = 3
"""The pass ran, but some elements failed or are blocked by a failed one (the summary names them)."""
EXIT_RUNNING = 4
"""``run`` without ``--watch``: elements are still running or waiting; run again later."""
EXIT_BUG = 70
"""An unexpected error inside autogenv2: a bug (rerun with ``--traceback`` and report it); EX_SOFTWARE."""
EXIT_INTERRUPTED = 130
"""Ctrl-C: running attempts continue; the next ``run`` picks them up."""


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


class ProgramNotFoundError(AutogenError):
    """The program a step runs (QWalk, a Python interpreter) does not exist; retrying cannot help."""
