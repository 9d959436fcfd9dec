"""PySCF mean-field Writer: a self-contained ``scf.py`` plus ``params.json`` in the run directory.

The script is readable and runnable by hand (``python scf.py``); it takes every option from
``params.json`` (never from code text), writes the chkfile ``mf.chk`` and records whether the
SCF converged inside it (group ``autogenv2``), so the Reader needs nothing but the chkfile.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ..base import Writer

SCRIPT = '''\
"""Mean-field step written by autogenv2: options are in params.json."""
import json

import numpy as np
from pyscf import lib
from pyscf.gto import mole

mole.DISABLE_EVAL = True  # coordinates are numbers: the atom text is never run as Python
P = json.load(open("params.json"))
if P["lattice"] is None:
    from pyscf import dft, gto, scf
    mol = gto.M(atom=P["atom"], unit=P["unit"], basis=P["basis"], ecp=P["ecp"], charge=P["charge"],
                spin=P["spin"], verbose=P["verbose"])
else:
    from pyscf.pbc import dft, gto, scf
    mol = gto.M(atom=P["atom"], unit=P["unit"], basis=P["basis"], ecp=P["ecp"], charge=P["charge"],
                spin=P["spin"], a=np.array(P["lattice"]), verbose=P["verbose"])
method = P["method"].upper()
if P["kmesh"] is None:
    mf = getattr(dft if method in ("RKS", "UKS") else scf, method)(mol)
else:
    mf = getattr(dft if method in ("RKS", "UKS") else scf, "K" + method)(mol, mol.make_kpts(P["kmesh"]))
if method in ("RKS", "UKS"):
    mf.xc = P["xc"]
if P["lattice"] is not None:
    mf = mf.density_fit()
mf.chkfile = P["chkfile"]
mf.conv_tol = P["conv_tol"]
mf.max_cycle = P["max_cycle"]
energy = mf.kernel()
if P["kmesh"] is not None:
    # pyscf >= 2.13 stores k-point lists as (nk, ...) arrays; pyqmc 0.8.1 reads them only
    # in the list form (scf/<key>__from_list__), so store them again as lists.
    for key in ("mo_occ", "mo_coeff", "mo_energy"):
        lib.chkfile.dump(P["chkfile"], "scf/" + key, list(getattr(mf, key)))
lib.chkfile.save(P["chkfile"], "autogenv2", {"converged": int(bool(mf.converged)), "e_tot": float(energy),
                                            "cycles": int(P["max_cycle"])})
print("SCF energy", energy, "converged", bool(mf.converged), flush=True)
if P.get("cas") is not None:  # CASSCF on top: group 'mcscf' (+ mcscf/ci) for convert with source = "mcscf"
    from pyscf import mcscf
    mc = mcscf.CASSCF(mf, P["cas"][0], P["cas"][1])
    mc.chkfile = P["chkfile"]
    mc.kernel()
    lib.chkfile.save(P["chkfile"], "mcscf/ci", mc.ci)
    print("CASSCF energy", mc.e_tot, "converged", bool(mc.converged), flush=True)
'''


class SCFWriter(Writer):
    """One PySCF SCF: a molecule, or a cell when ``lattice`` is set (k-point mesh ``kmesh``, else Gamma)."""

    sampling = ()

    method: Literal["rhf", "uhf", "rohf", "rks", "uks"] = "rhf"
    atom: str = Field(min_length=1, description="PySCF atom string, e.g. 'H 0 0 0; H 0 0 1.4'")
    unit: Literal["angstrom", "bohr", "Angstrom", "Bohr", "A", "B"] = "angstrom"
    basis: str | dict[str, str] = "cc-pvdz"
    ecp: str | dict[str, str] | None = None
    charge: int = 0
    spin: int = Field(0, ge=0, description="2S = N_alpha - N_beta")
    xc: str | None = None
    lattice: list[list[float]] | None = None
    kmesh: list[int] | None = None
    """Monkhorst-Pack mesh of a cell, e.g. [2, 1, 1]: a k-point SCF (KRHF, ...) whose k-points
    become the twists of the QMC steps (PyQMC option ``twist``)."""
    cas: tuple[int, int] | None = None
    """``[ncas, nelecas]``: a CASSCF after the SCF (molecules), saved in the chkfile for the QWalk
    ``convert`` step with ``source = "mcscf"`` (a multi-determinant trial function)."""
    conv_tol: float = Field(1e-9, gt=0)
    max_cycle: int = Field(100, ge=1)
    verbose: int = Field(0, ge=0, le=9)
    python: str | None = None
    """Interpreter for the run (default: the one running autogenv2)."""

    @field_validator("lattice")
    @classmethod
    def _three_vectors(cls, value: list[list[float]] | None) -> list[list[float]] | None:
        if value is not None and (len(value) != 3 or any(len(v) != 3 for v in value)):
            raise ValueError("lattice must be three vectors of three numbers")
        return value

    @field_validator("kmesh")
    @classmethod
    def _mesh(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (len(value) != 3 or any(n < 1 for n in value)):
            raise ValueError("kmesh must be three positive integers, e.g. [2, 1, 1]")
        return value

    def model_post_init(self, _context: object) -> None:
        if self.method in ("rks", "uks") and not self.xc:
            raise ValueError(f"method {self.method!r} needs the option 'xc' (e.g. 'pbe')")
        if self.kmesh is not None and self.lattice is None:
            raise ValueError("kmesh needs a periodic cell: give 'lattice' too")
        if self.cas is not None and (self.lattice is not None or min(self.cas) < 1):
            raise ValueError("cas = [ncas, nelecas] needs a molecule and two positive integers")

    def preflight(self, where: str) -> None:
        """The molecule builds: basis and ECP names, the atoms, the electrons against spin and method."""
        from .molecule import KEYS, check_molecule  # imports PySCF: only when a plan has a PySCF step

        check_molecule({key: getattr(self, key) for key in KEYS}, where)

    def write(self, directory: Path, inputs: Mapping[str, Path]) -> list[str]:
        params = self.model_dump(exclude={"python"})
        params["chkfile"] = "mf.chk"
        (directory / "params.json").write_text(json.dumps(params, indent=1))
        (directory / "scf.py").write_text(SCRIPT)
        return ["params.json", "scf.py"]

    def command(self) -> list[str]:
        return [self.python or sys.executable, "scf.py"]
