"""Validation of names that become paths: job ids, step names, file names.

A safe name is 1-100 characters of letters, digits, ``.``, ``_``, ``-`` and ``+``, does not
start with ``.`` or ``-``, and so can be neither ``..``, an absolute path, a hidden file,
an option to a command, nor anything a shell would interpret.

>>> check_name("h2_r1.40", "job id")
'h2_r1.40'
>>> check_name("../etc", "job id")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
autogenv2.errors.UnsafeNameError: job id '../etc': only letters, digits and . _ - + are allowed (no '/', ...
"""
from __future__ import annotations

import re
from pathlib import Path

from .errors import UnsafeNameError

_SAFE = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9._+-]{0,99}")


def check_name(name: str, what: str) -> str:
    """Return ``name`` if it is a safe single path component, else raise UnsafeNameError."""
    if not isinstance(name, str) or not _SAFE.fullmatch(name):
        raise UnsafeNameError(
            f"{what} {name!r}: only letters, digits and . _ - + are allowed "
            "(no '/', no leading '.' or '-'), at most 100 characters"
        )
    return name


def inside(root: Path, path: Path) -> Path:
    """Return ``path`` resolved, refusing anything (symlinks included) that leaves ``root``."""
    resolved = Path(path).resolve()
    base = Path(root).resolve()
    if resolved != base and base not in resolved.parents:
        raise UnsafeNameError(f"{path} resolves to {resolved}, outside {base}; refusing to follow it")
    return resolved
