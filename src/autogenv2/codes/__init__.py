"""One package per simulation code. Each exposes ``METHODS``: method name → (Writer, Reader).

Adding a code = adding a package here and its name to :data:`CODES`.
"""
from __future__ import annotations

import importlib

from ..errors import PlanError
from .base import Reader, ReadResult, Writer

CODES = ("pyscf", "pyqmc", "qwalk", "toy")

__all__ = ["CODES", "Reader", "ReadResult", "Writer", "get_method", "methods_of"]


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
