"""One package per simulation code. Each exposes ``METHODS``: method name → (Writer, Reader).

Adding a code = adding a package ``codes/<name>/`` and one line in :data:`CODES` (docs/architecture.md,
"Add a code"); plans, the Manager and ``describe`` reach it only through :func:`get_method`.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import PlanError

if TYPE_CHECKING:
    from .base import Reader, ReadResult, Writer

CODES = (
    "pyscf",
    "pyqmc",
    "qwalk",
    "toy",
)
"""Package names under ``codes/``: the one registry line per code (listed in this order in errors)."""

__all__ = ["CODES", "ReadResult", "Reader", "Writer", "get_method", "methods_of"]


def methods_of(code: str) -> dict[str, tuple[type[Writer], type[Reader]]]:
    """The method table of ``code`` (imported lazily: PySCF and friends load slowly)."""
    if code not in CODES:
        raise PlanError(f"unknown code {code!r}; known codes: {', '.join(CODES)}")
    module = importlib.import_module(f"{__name__}.{code}")
    return module.METHODS  # type: ignore[no-any-return]


def get_method(code: str, method: str) -> tuple[type[Writer], type[Reader]]:
    """(Writer class, Reader class) for ``code``/``method``; a PlanError names both if unknown."""
    table = methods_of(code)
    try:
        return table[method]
    except KeyError:
        raise PlanError(
            f"code {code!r} has no method {method!r}; choose one of: {', '.join(sorted(table))}"
        ) from None


def __getattr__(name: str) -> Any:
    """``Reader``, ``ReadResult``, ``Writer`` from :mod:`.base` on first use: ``autogenv2 inspect`` reads
    QWalk runs through ``codes/qwalk`` without importing pydantic."""
    if name in ("Reader", "ReadResult", "Writer"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
