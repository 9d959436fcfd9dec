"""QWalk trial-function files: basis (``.basis``), orbitals (``.orb``), Slater (``.slater``),
Jastrow (``.jast2``/``.jast3``) and the SLATER-JASTROW combination.

AOSPLINE basis functions are ``y(r) * P(x, y, z)``: ``y`` is the contraction of the listed
primitives (each GAMESS-normalized), renormalized by QWalk so that the radial part has unit
norm; ``P`` is the shell's polynomial in the order fixed by the shell symbol (``5D_siesta``,
``7F_siesta`` and ``9G_pyscf`` are PySCF's m = -l..l orders). The ``.orb`` file lists
``mo ao center index`` lines (1-based), the word ``COEFFICIENTS`` and the values
(``(re,im)`` for complex orbitals).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from ...naming import check_name
from ..base import Options
from .syntax import Section, format_number
from .system import LABEL, QWalkFile, numbers

SHELL_SIZES = {"S": 1, "P": 3, "P_SIESTA": 3, "5D": 5, "5D_SIESTA": 5, "6D": 6, "7F": 7, "7F_SIESTA": 7,
               "7F_CRYSTAL": 7, "10F": 10, "9G": 9, "9G_PYSCF": 9, "15G": 15}
"""Number of functions per shell symbol (case-insensitive in QWalk)."""

MoType = Literal["CUTOFF_MO", "BLAS_MO", "BASFUNC_MO", "EINSPLINE_MO"]
"""QWalk's orbital evaluation types."""

THREEBODY_TERMS = ((1, 1, 0), (1, 0, 1), (1, 1, 1), (2, 2, 0), (2, 0, 1), (2, 0, 2), (2, 2, 2),
                   (3, 3, 0), (3, 0, 2), (3, 3, 2), (1, 2, 2), (2, 3, 2))
"""QWalk's default three-body (k, l, m) list: e-i indices k, l and e-e index m."""


class Shell(Options):
    """One contracted shell: symbol and the (exponent, coefficient) of its primitives."""

    symbol: str
    exponents: list[float] = Field(min_length=1)
    coefficients: list[float] = Field(min_length=1)

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        if value.upper() not in SHELL_SIZES:
            raise ValueError(f"unknown shell symbol {value!r}; use one of {', '.join(SHELL_SIZES)}")
        return value

    @model_validator(mode="after")
    def _lengths(self) -> Shell:
        if len(self.exponents) != len(self.coefficients):
            raise ValueError("exponents and coefficients differ in length")
        return self

    @property
    def size(self) -> int:
        return SHELL_SIZES[self.symbol.upper()]


class AtomBasis(Options):
    """``Basis { label AOSPLINE GAMESS { ... } }`` for one atom label."""

    label: str = Field(pattern=LABEL)
    shells: list[Shell] = Field(min_length=1)
    cutoff: float | None = Field(None, gt=0)

    @property
    def nfunctions(self) -> int:
        return sum(s.size for s in self.shells)

    def section(self) -> Section:
        gamess: list[str | Section] = []
        for shell in self.shells:
            gamess += [shell.symbol, str(len(shell.exponents))]
            for i, (e, c) in enumerate(zip(shell.exponents, shell.coefficients, strict=True), start=1):
                gamess += [str(i), format_number(e), format_number(c)]
        items: list[str | Section] = [self.label, "AOSPLINE"]
        if self.cutoff is not None:
            items += ["CUTOFF", format_number(self.cutoff)]
        return Section("BASIS", [*items, Section("GAMESS", gamess)])


class BasisFile(QWalkFile):
    """The ``.basis`` file: one AOSPLINE basis per atom label."""

    bases: list[AtomBasis] = Field(min_length=1)

    def section(self) -> Section:
        return Section("", [b.section() for b in self.bases])


class Orbitals(Options):
    """The ORBITALS (real) or CORBITALS (complex) section of a Slater determinant."""

    complex: bool = False
    mo_type: MoType | None = None
    """None writes no type word, which QWalk reads as BLAS_MO."""
    magnify: float | None = 1.0
    nmo: int = Field(ge=1)
    orbfile: str
    basis_file: str
    centers: Literal["USEGLOBAL", "USEATOMS"] = "USEGLOBAL"

    @field_validator("orbfile", "basis_file")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "QWalk file name")

    def section(self) -> Section:
        items: list[str | Section] = [self.mo_type] if self.mo_type else []
        if self.magnify is not None:
            items += ["MAGNIFY", format_number(self.magnify)]
        items += ["NMO", str(self.nmo), "ORBFILE", self.orbfile, "INCLUDE", self.basis_file,
                  Section("CENTERS", [self.centers])]
        return Section("CORBITALS" if self.complex else "ORBITALS", items)


class Slater(QWalkFile):
    """A SLATER body: one or more determinants over the orbitals (1-based indices).

    ``states[i] = (up, down)`` lists the orbitals of determinant ``i``; ``detwt[i]`` its weight.
    """

    orbitals: Orbitals
    detwt: list[float] = Field(min_length=1)
    states: list[tuple[list[int], list[int]]] = Field(min_length=1)
    nspin: tuple[int, int] | None = None
    optimize_det: bool = False
    nosort: bool = False
    update: Literal["sherman_morrison", "clark"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Slater:
        if len(self.detwt) != len(self.states):
            raise ValueError(f"{len(self.detwt)} DETWT weights but {len(self.states)} determinants in states")
        counts = {(len(up), len(down)) for up, down in self.states}
        if len(counts) != 1:
            raise ValueError(f"determinants have different electron counts {sorted(counts)}")
        if self.nspin is not None and counts != {tuple(self.nspin)}:
            raise ValueError(f"STATES hold {counts.pop()} electrons per spin but NSPIN is {self.nspin}")
        top = max(max(up + down, default=1) for up, down in self.states)
        if top > self.orbitals.nmo or min(min(up + down, default=1) for up, down in self.states) < 1:
            raise ValueError(f"STATES use orbitals outside 1..NMO={self.orbitals.nmo}")
        if abs(self.detwt[0]) < 1e-10:
            raise ValueError("the first determinant weight must not be zero (QWalk refuses it)")
        return self

    @property
    def electrons(self) -> tuple[int, int]:
        up, down = self.states[0]
        return len(up), len(down)

    def section(self) -> Section:
        items: list[str | Section] = ["SLATER"]
        items += ["OPTIMIZE_DET"] if self.optimize_det else []
        items += ["NOSORT"] if self.nosort else []
        items += [f"{self.update.upper()}_UPDATES"] if self.update else []
        if self.nspin is not None:
            items.append(Section("NSPIN", [str(n) for n in self.nspin]))
        items.append(self.orbitals.section())
        items.append(Section("DETWT", numbers(self.detwt)))
        items.append(Section("STATES", [str(i) for up, down in self.states for i in (*up, *down)]))
        return Section("", items)


class Jastrow(QWalkFile):
    """The JASTROW2 template: cusp group (frozen), then one-, two- and optionally three-body terms.

    Coefficients default to zero (the cusp terms alone); ``optimizebasis`` lets OPTIMIZE vary
    the basis parameters, and LINEAR refuses such a Jastrow.
    """

    labels: list[str] = Field(min_length=1, description="atom labels (one-body term for each)")
    cusp_gamma: float = Field(24.0, gt=0)
    cusp_cutoff: float = Field(7.5, gt=0)
    ei_beta0: float = 0.2
    ei_nfunc: int = Field(4, ge=1)
    ee_beta0: float = 0.5
    ee_nfunc: int = Field(3, ge=1)
    rcut: float = Field(7.5, gt=0)
    onebody: dict[str, list[float]] | None = None
    twobody: list[float] | None = None
    threebody: bool = False
    threebody_coefficients: dict[str, list[float]] | None = None
    optimizebasis: bool = False

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not re.match(LABEL, v)]
        if bad:
            raise ValueError(f"bad atom labels {bad}")
        return list(dict.fromkeys(value))

    @property
    def nthreebody(self) -> int:
        """Three-body coefficients per label QWalk accepts for these basis sizes."""
        count = 0
        for k, l, m in THREEBODY_TERMS:
            if max(k, l) >= self.ei_nfunc or m >= self.ee_nfunc:
                break
            count += 1
        return count

    @model_validator(mode="after")
    def _lengths(self) -> Jastrow:
        for name, table, size in (("onebody", self.onebody, self.ei_nfunc),
                                  ("threebody_coefficients", self.threebody_coefficients, self.nthreebody)):
            for label, values in (table or {}).items():
                if label not in self.labels or len(values) != size:
                    raise ValueError(f"{name}[{label!r}] needs a listed label and {size} values")
        if self.twobody is not None and len(self.twobody) != self.ee_nfunc:
            raise ValueError(f"twobody needs {self.ee_nfunc} values")
        if self.threebody_coefficients and not self.threebody:
            raise ValueError("threebody_coefficients given but threebody is False")
        if self.threebody and self.nthreebody == 0:
            raise ValueError("threebody needs ei_nfunc >= 2 and ee_nfunc >= 1")
        return self

    def section(self) -> Section:
        flag = ["OPTIMIZEBASIS"] if self.optimizebasis else []
        cusp = Section("EEBASIS", ["EE", "CUTOFF_CUSP", "GAMMA", format_number(self.cusp_gamma),
                                   "CUSP", "1.0", "CUTOFF", format_number(self.cusp_cutoff)])
        spin = Section("TWOBODY_SPIN", ["FREEZE", Section("LIKE_COEFFICIENTS", ["0.25", "0.0"]),
                                        Section("UNLIKE_COEFFICIENTS", ["0.0", "0.5"])])
        body: list[str | Section] = [*flag]
        body += [Section("EIBASIS", [lab, "POLYPADE", "BETA0", format_number(self.ei_beta0), "NFUNC",
                                     str(self.ei_nfunc), "RCUT", format_number(self.rcut)])
                 for lab in self.labels]
        onebody = self.onebody or {}
        zeros = [0.0] * self.ei_nfunc
        body.append(Section("ONEBODY", [Section("COEFFICIENTS", [lab, *numbers(onebody.get(lab, zeros))])
                                        for lab in self.labels]))
        body.append(Section("EEBASIS", ["EE", "POLYPADE", "BETA0", format_number(self.ee_beta0), "NFUNC",
                                        str(self.ee_nfunc), "RCUT", format_number(self.rcut)]))
        twobody = numbers(self.twobody or [0.0] * self.ee_nfunc)
        body.append(Section("TWOBODY", [Section("COEFFICIENTS", twobody)]))
        if self.threebody:
            three = self.threebody_coefficients or {}
            body.append(Section("THREEBODY", [
                Section("COEFFICIENTS", [lab, *numbers(three.get(lab, [0.0] * self.nthreebody))])
                for lab in self.labels]))
        return Section("", ["JASTROW2", Section("GROUP", [*flag, cusp, cusp, spin]), Section("GROUP", body)])


def slater_jastrow(slater_file: str, jastrow_file: str | None) -> str:
    """A trial-function body: the Slater file alone, or SLATER-JASTROW including both."""
    if jastrow_file is None:
        return f"include {check_name(slater_file, 'QWalk file name')}\n"
    return (f"slater-jastrow\nwf1 {{ include {check_name(slater_file, 'QWalk file name')} }}\n"
            f"wf2 {{ include {check_name(jastrow_file, 'QWalk file name')} }}\n")


def write_orbfile(path: Path, coefficients: np.ndarray, aos_per_center: list[int]) -> str:
    """Write ``coefficients[mo, ao]`` (AOs center by center, QWalk order) as a ``.orb`` file."""
    coefficients = np.asarray(coefficients)
    nmo, nao = coefficients.shape
    if sum(aos_per_center) != nao:
        raise ValueError(f"{nao} AO coefficients per MO but the centers have {sum(aos_per_center)} functions")
    lines = []
    index = 0
    for mo in range(1, nmo + 1):
        for center, count in enumerate(aos_per_center, start=1):
            for ao in range(1, count + 1):
                index += 1
                lines.append(f"{mo} {ao} {center} {index}")
    lines.append("COEFFICIENTS")
    if np.iscomplexobj(coefficients):
        values = [f"({c.real!r},{c.imag!r})" for c in coefficients.ravel().tolist()]
    else:
        values = [repr(float(c)) for c in coefficients.ravel()]
    for start in range(0, len(values), 5):
        lines.append(" ".join(values[start:start + 5]))
    path = Path(path)
    check_name(path.name, "QWalk file name")
    path.write_text("\n".join(lines) + "\n")
    return path.name


def read_orbfile(path: Path) -> tuple[np.ndarray, list[int]]:
    """Read a ``.orb`` file back: ``(coefficients[mo, ao], aos_per_center)``."""
    words = Path(path).read_text().split()
    split = [w.upper() for w in words].index("COEFFICIENTS")
    table = np.array(words[:split], dtype=int).reshape(-1, 4)
    raw = words[split + 1:]
    if any(w.startswith("(") for w in raw):
        values = np.array([complex(*map(float, w.strip("()").split(","))) for w in raw])
    else:
        values = np.array(raw, dtype=float)
    nmo = int(table[:, 0].max())
    centers = int(table[:, 2].max())
    aos_per_center = [int(table[table[:, 2] == c + 1][:, 1].max()) for c in range(centers)]
    offsets = np.concatenate([[0], np.cumsum(aos_per_center)])
    out = np.zeros((nmo, offsets[-1]), dtype=values.dtype)
    for mo, ao, center, index in table:
        out[mo - 1, offsets[center - 1] + ao - 1] = values[index - 1]
    return out, aos_per_center
