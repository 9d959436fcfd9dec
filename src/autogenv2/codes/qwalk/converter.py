"""PySCF -> QWalk: system, basis, orbitals, Slater determinant(s) and a Jastrow template.

Works from a PySCF chkfile: molecules and cells (``a`` set), all-electron or with ``mol._ecp``
pseudopotentials (GTH pseudopotentials cannot be written for QWalk), RHF/ROHF/UHF and their
k-point versions (one k-point per conversion; complex orbitals away from Gamma), and
multi-determinant CASCI/CASSCF expansions from the chkfile's ``mcscf`` group plus
``mcscf/ci`` (save it with ``lib.chkfile.save(chk, "mcscf/ci", mc.ci)``).

Orbital coefficients: a PySCF spherical AO is ``R(r) Y_lm``; QWalk's function is
``R(r)/r**l * P_m(x, y, z)`` with the same normalized radial part, so each coefficient is
multiplied by the constant ``r**l Y_lm / P_m``, determined numerically from PySCF itself
(which also proves that the m-order of the shell symbols matches PySCF's).
"""
from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

from ...errors import AutogenError
from .system import Aip, Atom, Pseudo, System, Vector
from .wavefunction import (
    AtomBasis,
    BasisFile,
    Jastrow,
    MoType,
    Orbitals,
    Shell,
    Slater,
    slater_jastrow,
    write_orbfile,
)

SYMBOLS = {0: "S", 1: "P", 2: "5D_siesta", 3: "7F_siesta", 4: "9G_pyscf"}
"""QWalk shell symbols whose function order is PySCF's (p: x y z; l >= 2: m = -l..l)."""

Poly = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
_R2: Callable[..., np.ndarray] = lambda x, y, z: x * x + y * y + z * z  # noqa: E731
POLYNOMIALS: dict[int, list[Poly]] = {
    0: [lambda x, y, z: np.ones_like(x)],
    1: [lambda x, y, z: x, lambda x, y, z: y, lambda x, y, z: z],
    2: [lambda x, y, z: x * y, lambda x, y, z: y * z, lambda x, y, z: 2 * z * z - x * x - y * y,
        lambda x, y, z: x * z, lambda x, y, z: x * x - y * y],
    3: [lambda x, y, z: y * (3 * x * x - y * y), lambda x, y, z: x * y * z,
        lambda x, y, z: y * (4 * z * z - x * x - y * y),
        lambda x, y, z: z * (2 * z * z - 3 * x * x - 3 * y * y),
        lambda x, y, z: x * (4 * z * z - x * x - y * y), lambda x, y, z: z * (x * x - y * y),
        lambda x, y, z: x * (x * x - 3 * y * y)],
    4: [lambda x, y, z: (x * x - y * y) * x * y, lambda x, y, z: (3 * x * x - y * y) * y * z,
        lambda x, y, z: x * y * (7 * z * z - _R2(x, y, z)),
        lambda x, y, z: y * z * (7 * z * z - 3 * _R2(x, y, z)),
        lambda x, y, z: 35 * z ** 4 - 30 * z * z * _R2(x, y, z) + 3 * _R2(x, y, z) ** 2,
        lambda x, y, z: x * z * (7 * z * z - 3 * _R2(x, y, z)),
        lambda x, y, z: (x * x - y * y) * (7 * z * z - _R2(x, y, z)),
        lambda x, y, z: (x * x - 3 * y * y) * x * z,
        lambda x, y, z: (x * x - 3 * y * y) * x * x - (3 * x * x - y * y) * y * y],
}
"""QWalk's polynomials (Cubic_spline_calc.cpp) in the order of the symbols above."""

BASIS_TAIL = 1e-8
"""A periodic basis is cut where its most diffuse primitive falls below this (sets CUTOFF_DIVIDER)."""


class ConversionError(AutogenError, ValueError):
    """The PySCF calculation cannot be expressed in QWalk's input (or the chkfile lacks data)."""


@functools.cache
def angular_factors(l: int) -> tuple[float, ...]:
    """``r**l Y_lm / P_m`` for m in PySCF order, measured on PySCF's own AOs."""
    from pyscf import gto

    if l not in POLYNOMIALS:
        raise ConversionError(f"angular momentum l={l} has no QWalk shell symbol (only l <= 4)")
    mol = gto.M(atom=[["He", (0.0, 0.0, 0.0)]], basis={"He": [[l, [1.0, 1.0]]]}, verbose=0)
    points = np.random.default_rng(7).normal(size=(12, 3))
    pyscf_values = mol.eval_gto("GTOval_sph", points)
    r2 = np.sum(points ** 2, axis=1)
    radial = math.sqrt(2 * 2 ** (l + 1.5) / math.gamma(l + 1.5)) * np.exp(-r2)
    factors = []
    for m, poly in enumerate(POLYNOMIALS[l]):
        ratio = pyscf_values[:, m] / (radial * poly(*points.T))
        if not np.allclose(ratio, ratio[0], rtol=1e-8):
            raise ConversionError(f"l={l} m-index {m}: PySCF's function is not QWalk's {SYMBOLS[l]} one")
        factors.append(float(ratio[0]))
    return tuple(factors)


@dataclass
class Source:
    """What a chkfile holds: the molecule or cell and one set of determinants over its AOs."""

    mol: Any
    periodic: bool
    orbitals: np.ndarray                       # (nao, norb): the MOs QWalk gets, in order
    dets: list[tuple[float, list[int], list[int]]]   # (weight, up, down), 0-based into orbitals
    kpoint: np.ndarray                         # absolute k (1/bohr); zeros for molecules
    energy: float


def load_source(chkfile: Path, source: str = "scf", kpoint: int = 0, ci_threshold: float = 1e-4,
                supercell: tuple[int, int, int] | None = None) -> Source:
    """Read a chkfile into a :class:`Source` (with ``supercell``: twist ``kpoint`` of that supercell)."""
    from pyscf import lib

    with h5py.File(chkfile, "r") as handle:
        if "mol" not in handle:
            raise ConversionError(f"{chkfile}: no 'mol' record (not a PySCF chkfile?)")
        periodic = "a" in json.loads(handle["mol"][()])
        groups = set(handle.keys())
    if periodic:
        from pyscf.pbc.lib.chkfile import load_cell
        mol = load_cell(str(chkfile))
    else:
        mol = lib.chkfile.load_mol(str(chkfile))
    if mol.cart:
        raise ConversionError("cartesian basis (mol.cart=True) is not supported; use spherical functions")
    if source not in groups:
        raise ConversionError(f"{chkfile}: no '{source}' group in the chkfile")
    record = lib.chkfile.load(str(chkfile), source)
    if source == "mcscf":
        return _mcscf_source(mol, periodic, record, ci_threshold, chkfile)
    if supercell is not None:
        if not periodic or source != "scf":
            raise ConversionError("supercell needs the k-point SCF of a periodic cell (source='scf')")
        from .supercell import fold_source
        return fold_source(mol, record, kpoint, supercell)
    return _scf_source(mol, periodic, record, kpoint)


def _occupied(occ: np.ndarray, cutoff: float) -> list[int]:
    return [int(i) for i in np.nonzero(np.asarray(occ) > cutoff)[0]]


def _scf_source(mol: Any, periodic: bool, record: dict[str, Any], kpoint: int) -> Source:
    coeff = np.asarray(record["mo_coeff"])
    occ = np.asarray(record["mo_occ"])
    kpts = record.get("kpts")
    k = np.zeros(3)
    if kpts is not None:                      # KRHF (nk, nao, nmo) or KUHF (2, nk, nao, nmo)
        kpts = np.asarray(kpts).reshape(-1, 3)
        if not 0 <= kpoint < len(kpts):
            raise ConversionError(f"kpoint index {kpoint} out of range: the chkfile has {len(kpts)} k-points")
        k = kpts[kpoint]
        coeff, occ = (coeff[:, kpoint], occ[:, kpoint]) if coeff.ndim == 4 else (coeff[kpoint], occ[kpoint])
    elif record.get("kpt") is not None:
        k = np.asarray(record["kpt"]).reshape(3)
    if np.any(np.abs(occ - np.round(occ)) > 1e-6):
        raise ConversionError("fractional occupations (smearing) cannot be a Slater determinant")
    if coeff.ndim == 3:                       # unrestricted: alpha orbitals, then beta
        up, down = _occupied(occ[0], 0.5), _occupied(occ[1], 0.5)
        na, nb = max(up, default=-1) + 1, max(down, default=-1) + 1
        orbitals = np.concatenate([coeff[0][:, :na], coeff[1][:, :nb]], axis=1)
        dets = [(1.0, up, [na + i for i in down])]
    else:
        up, down = _occupied(occ, 0.5), _occupied(occ, 1.5)
        orbitals = coeff[:, :max(up + down, default=-1) + 1]
        dets = [(1.0, up, down)]
    nelectron = len(dets[0][1]) + len(dets[0][2])
    if nelectron != mol.nelectron:
        raise ConversionError(f"occupations hold {nelectron} electrons but the system has {mol.nelectron}")
    return Source(mol, periodic, orbitals, dets, k, float(np.ravel(record["e_tot"])[0]))


def _mcscf_source(mol: Any, periodic: bool, record: dict[str, Any], threshold: float,
                  chkfile: Path) -> Source:
    from pyscf.fci import cistring

    if "ci" not in record:
        raise ConversionError(f"{chkfile}: no mcscf/ci; save it with "
                              "lib.chkfile.save(chk, 'mcscf/ci', mc.ci)")
    ncore, ncas = int(record["ncore"]), int(record["ncas"])
    if "nelecas" in record:
        nelecas = np.ravel(record["nelecas"]).astype(int)
    else:  # PySCF < 2.9 does not dump it: the electrons outside the core, split by the spin
        active = mol.nelectron - 2 * ncore
        nelecas = np.array([(active + mol.spin) // 2, (active - mol.spin) // 2])
    ci = np.asarray(record["ci"])
    strings = [cistring.make_strings(range(ncas), int(n)) for n in nelecas]
    if ci.shape != (len(strings[0]), len(strings[1])):
        raise ConversionError(f"mcscf/ci has shape {ci.shape}; expected one CI vector of "
                              f"{len(strings[0])}x{len(strings[1])} (a single state)")
    core = list(range(ncore))
    dets = []
    for ia, ib in zip(*np.nonzero(np.abs(ci) > threshold), strict=True):
        up = core + [ncore + i for i in range(ncas) if int(strings[0][ia]) >> i & 1]
        down = core + [ncore + i for i in range(ncas) if int(strings[1][ib]) >> i & 1]
        dets.append((float(ci[ia, ib]), up, down))
    if not dets:
        raise ConversionError(f"no CI coefficient above ci_threshold={threshold}")
    dets.sort(key=lambda d: -abs(d[0]))
    orbitals = np.asarray(record["mo_coeff"])[:, :ncore + ncas]
    return Source(mol, periodic, orbitals, dets, np.zeros(3), float(np.ravel(record["e_tot"])[0]))


def basis_file(mol: Any) -> tuple[BasisFile, list[int], np.ndarray]:
    """The QWalk basis per atom label, AOs per atom, and the per-AO coefficient factor."""
    bases: dict[str, AtomBasis] = {}
    per_atom: list[int] = []
    factors: list[float] = []
    for atom in range(mol.natm):
        label = mol.atom_symbol(atom)
        shells = []
        for ib in mol.atom_shell_ids(atom):
            l = mol.bas_angular(ib)
            exps = [float(e) for e in mol.bas_exp(ib)]
            for column in np.asarray(mol.bas_ctr_coeff(ib)).T:
                factors.extend(angular_factors(l))
                keep = [i for i, c in enumerate(column) if c != 0.0]
                shells.append(Shell(symbol=SYMBOLS[l], exponents=[exps[i] for i in keep],
                                    coefficients=[float(column[i]) for i in keep]))
        model = AtomBasis(label=label, shells=shells)
        if label in bases and bases[label] != model:
            raise ConversionError(f"atoms labelled {label} have different basis sets; "
                                  "give them distinct labels")
        bases[label] = model
        per_atom.append(sum(s.size for s in shells))
    if sum(per_atom) != mol.nao_nr():
        raise ConversionError(f"{sum(per_atom)} basis functions written but PySCF has {mol.nao_nr()}")
    return BasisFile(bases=list(bases.values())), per_atom, np.array(factors)


def pseudos(mol: Any, aip: Aip | None = None) -> list[Pseudo]:
    """PSEUDO sections from ``mol._ecp`` (semilocal channels l = 0.., local channel last).

    ``aip=None``: QWalk's own rule from the channel count (:func:`.system.default_aip`).
    """
    from pyscf.data.elements import _std_symbol

    out: dict[str, Pseudo] = {}
    for atom in range(mol.natm):
        if mol.atom_nelec_core(atom) == 0:
            continue
        label = mol.atom_symbol(atom)
        key = label if label in mol._ecp else _std_symbol(label)
        if key not in mol._ecp:
            if getattr(mol, "pseudo", None):
                raise ConversionError(f"{label}: GTH pseudopotentials cannot be converted for QWalk")
            raise ConversionError(f"{label}: core electrons removed but no ECP found in mol._ecp")
        by_l = {int(l): terms for l, terms in mol._ecp[key][1]}
        channels = []
        for l in [*range(max(by_l) + 1), -1]:
            channel = []
            for n, terms in enumerate(by_l.get(l, [])):
                for exponent, coefficient in terms:
                    if isinstance(coefficient, (list, tuple)):
                        raise ConversionError(f"{label}: spin-orbit ECP terms are not supported")
                    channel.append((n, float(exponent), float(coefficient)))
            channels.append(channel)
        out[label] = Pseudo(label=label, aip=aip, channels=channels)
    return list(out.values())


def cell_heights(lattice: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell (bohr)."""
    volume = abs(np.linalg.det(lattice))
    return np.array([volume / np.linalg.norm(np.cross(lattice[(i + 1) % 3], lattice[(i + 2) % 3]))
                     for i in range(3)])


def system_model(src: Source, aip: Aip | None = None) -> System:
    """The SYSTEM (+ PSEUDO) model of a converted calculation."""
    mol = src.mol
    up, down = src.dets[0][1], src.dets[0][2]
    atoms = [Atom(label=mol.atom_symbol(i), charge=float(mol.atom_charge(i)),
                  coor=_vector(mol.atom_coord(i)))
             for i in range(mol.natm)]
    extra: dict[str, Any] = {}
    if src.periodic:
        lattice = np.asarray(mol.lattice_vectors())
        tightest = min(float(np.min(mol.bas_exp(ib))) for ib in range(mol.nbas))
        reach = math.sqrt(-math.log(BASIS_TAIL) / tightest)
        scaled = mol.get_scaled_kpts(src.kpoint.reshape(1, 3))[0]
        extra = dict(kind="periodic", latticevec=[tuple(map(float, row)) for row in lattice],
                     cutoff_divider=float(cell_heights(lattice).min() / reach),
                     kpoint=tuple(float(round(2 * s, 12)) for s in scaled))
    return System(nspin=(len(up), len(down)), atoms=atoms, pseudos=pseudos(mol, aip), **extra)


def _vector(values: Any) -> Vector:
    """Three floats (the coordinates PySCF gives as an array)."""
    x, y, z = (float(c) for c in values)
    return x, y, z


def _ncopy(values: Sequence[int]) -> tuple[int, int, int]:
    """A supercell's three copy counts as a tuple (a plan or params.json gives a list)."""
    n1, n2, n3 = values
    return n1, n2, n3


def convert(chkfile: Path, directory: Path, basename: str = "qw", *, source: str = "scf", kpoint: int = 0,
            jastrow: Literal["none", "twobody", "threebody"] = "twobody", optimizebasis: bool = False,
            ci_threshold: float = 1e-4, mo_type: MoType | None = None, aip: Aip | None = None,
            optimize_det: bool = False, supercell: tuple[int, int, int] | None = None) -> dict[str, Any]:
    """Write the QWalk files of ``chkfile`` into ``directory``; return the artifact table.

    The table maps artifact names (``qwalk_system``, ``qwalk_wavefunction``, ``qwalk_slater``,
    ``qwalk_orb``, ``qwalk_basis``, ``qwalk_jastrow``) to file names, plus ``energy`` (the
    PySCF energy) and ``ndet``.
    """
    directory = Path(directory)
    src = load_source(Path(chkfile), source, kpoint, ci_threshold,
                      None if supercell is None else _ncopy(supercell))
    system = system_model(src, aip)
    basis, per_atom, factors = basis_file(src.mol)
    coefficients = (src.orbitals * factors[:, None]).T
    if np.iscomplexobj(coefficients) and np.max(np.abs(coefficients.imag)) < 1e-12:
        coefficients = coefficients.real
    orbitals = Orbitals(complex=bool(np.iscomplexobj(coefficients)), mo_type=mo_type, nmo=len(coefficients),
                        orbfile=f"{basename}.orb", basis_file=f"{basename}.basis")
    if optimize_det and len(src.dets) < 2:
        raise ConversionError(f"optimize_det needs several determinants; this {source} has one "
                              "(convert a CASSCF with source='mcscf', or lower ci_threshold)")
    slater = Slater(orbitals=orbitals, detwt=[d[0] for d in src.dets], optimize_det=optimize_det,
                    states=[([i + 1 for i in up], [i + 1 for i in down]) for _, up, down in src.dets])
    files = {"qwalk_system": system.write(directory / f"{basename}.sys"),
             "qwalk_basis": basis.write(directory / f"{basename}.basis"),
             "qwalk_orb": write_orbfile(directory / f"{basename}.orb", coefficients, per_atom),
             "qwalk_slater": slater.write(directory / f"{basename}.slater")}
    files["qwalk_wavefunction"] = files["qwalk_slater"]
    if jastrow != "none":
        rcut = 7.5   # QWalk's converters: 7.5 bohr for molecules, half the smallest cell height for
        if src.periodic:  # crystals (src/converter/converter.cpp find_basis_cutoff, crystal2qmc.cpp)
            rcut = float(cell_heights(np.asarray(src.mol.lattice_vectors())).min() / 2.000001)
        # 4 electron-ion POLYPADE functions as pyscf2qwalk writes them (case pyscf_h2_pbc_gamma_vmc) and
        # QWalk's print_3b_jastrow2; its C++ print_std_jastrow2 and autogen crystal2qmc.py use 3
        model = Jastrow(labels=system.labels(), threebody=jastrow == "threebody", optimizebasis=optimizebasis,
                        rcut=rcut, cusp_cutoff=rcut)
        suffix = "jast3" if model.threebody else "jast2"
        files["qwalk_jastrow"] = model.write(directory / f"{basename}.{suffix}")
        wavefunction = slater_jastrow(files["qwalk_slater"], files["qwalk_jastrow"])
        (directory / f"{basename}.wf").write_text(wavefunction)
        files["qwalk_wavefunction"] = f"{basename}.wf"
    return {**files, "energy": src.energy, "ndet": len(src.dets)}
