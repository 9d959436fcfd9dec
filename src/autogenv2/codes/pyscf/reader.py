"""PySCF Reader: success = the chkfile exists and records a converged SCF."""
from __future__ import annotations

from pathlib import Path

import h5py

from ...states import Verdict
from ..base import Reader, ReadResult
from ..failures import last_error_line


class SCFReader(Reader):
    """Reads ``mf.chk``; a non-converged SCF is a failure with that reason."""

    def read(self, directory: Path, exit_code: int | None = None) -> ReadResult:
        chk = directory / "mf.chk"
        if exit_code not in (None, 0) or not chk.exists():
            reason = last_error_line(directory / "stdout.txt") or "no chkfile mf.chk was written"
            killed = exit_code is not None and exit_code < 0
            return ReadResult(verdict=Verdict.failed, reason=f"SCF run failed: {reason}", retry=killed)
        try:
            with h5py.File(chk, "r") as handle:
                energy = float(handle["scf/e_tot"][()])
                converged = bool(handle["autogenv2/converged"][()]) if "autogenv2" in handle else None
        except (OSError, KeyError) as exc:
            return ReadResult(verdict=Verdict.failed, reason=f"unreadable chkfile mf.chk: {exc}", retry=True)
        results = {"energy": energy, "converged": converged}
        if converged is False:
            return ReadResult(verdict=Verdict.failed, results=results,
                              reason="SCF did not converge (raise max_cycle or change the initial guess)")
        return ReadResult(verdict=Verdict.complete, results=results, outputs={"chkfile": "mf.chk"})
