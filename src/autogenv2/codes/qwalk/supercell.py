"""Supercells: the k-point orbitals of a primitive-cell KRHF, folded into one determinant of a supercell.

A supercell of ``ncopy = [n1, n2, n3]`` primitive cells (PySCF's ``pbc.tools.super_cell``: images
in x-major order, the primitive atoms within each) has twists ``t``; the primitive k-points that
fold onto ``t`` are those equal to it modulo the supercell's reciprocal lattice, ``n1*n2*n3`` of them
in a full mesh. Each primitive Bloch orbital ``psi_kn = sum_T e^{ik.T} sum_mu C_k[mu, n] phi_mu(r - T)``
is, over the supercell, the orbital with coefficient ``e^{ik.L} C_k[mu, n]`` on the copy of AO ``mu``
in image ``L``; QWalk adds the supercell images with the phase of its KPOINT, which all the folded
k-points share. So a KRHF on the primitive mesh of a supercell twist gives exactly that supercell's
Slater determinant, and its energy (``e_tot`` per primitive cell, times the number of cells).

Twist ``i`` is the i-th group of the chkfile's k-points, in order of first appearance (group 0 holds
k-point 0); its weight is its share of the k-points (uniform over a full mesh).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .converter import Source

NCopy = tuple[int, int, int]


def _fractional(cell: Any, kpts: np.ndarray, ncopy: NCopy) -> np.ndarray:
    """k-points in units of the supercell's reciprocal vectors."""
    lattice = np.asarray(cell.lattice_vectors()) * np.asarray(ncopy)[:, None]
    fractional: np.ndarray = np.asarray(kpts).reshape(-1, 3) @ lattice.T / (2 * np.pi)
    return fractional


def twist_groups(cell: Any, kpts: np.ndarray, ncopy: NCopy) -> list[list[int]]:
    """Indices of the k-points folding onto each supercell twist, in order of first appearance."""
    frac = _fractional(cell, kpts, ncopy)
    keys = np.round(frac - np.floor(frac + 1e-6), 5) % 1.0
    groups: dict[tuple[float, ...], list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(tuple(float(x) for x in key), []).append(i)
    size = int(np.prod(ncopy))
    broken = [g for g in groups.values() if len(g) != size]
    if broken:
        from .converter import ConversionError
        raise ConversionError(f"the chkfile's {len(keys)} k-points do not fold into whole {ncopy} supercell "
                              f"twists (groups of {[len(g) for g in groups.values()]}; each needs {size}): "
                              "use a k-mesh that is a multiple of the supercell")
    return list(groups.values())


def twist_table(cell: Any, kpts: np.ndarray, ncopy: NCopy) -> list[tuple[np.ndarray, float]]:
    """(absolute k of the twist's first k-point, weight) per supercell twist."""
    groups = twist_groups(cell, kpts, ncopy)
    total = sum(len(g) for g in groups)
    return [(np.asarray(kpts).reshape(-1, 3)[g[0]], len(g) / total) for g in groups]


def fold_source(cell: Any, record: dict[str, Any], twist: int, ncopy: NCopy) -> Source:
    """The :class:`~.converter.Source` of supercell twist ``twist`` from a KRHF record of ``cell``."""
    from pyscf.pbc.tools import super_cell

    from .converter import ConversionError, Source

    if record.get("kpts") is None:
        raise ConversionError("a supercell needs a k-point SCF (KRHF) of the primitive cell")
    kpts = np.asarray(record["kpts"]).reshape(-1, 3)
    coeff, occ = np.asarray(record["mo_coeff"]), np.asarray(record["mo_occ"])
    if coeff.ndim != 3:
        raise ConversionError("supercells are converted from KRHF (restricted) only, not KUHF")
    groups = twist_groups(cell, kpts, ncopy)
    if not 0 <= twist < len(groups):
        raise ConversionError(f"supercell twist {twist} out of range: the k-points fold into {len(groups)}")
    if np.any(np.abs(occ - np.round(occ)) > 1e-6):
        raise ConversionError("fractional occupations (smearing) cannot be a Slater determinant")
    supcell = super_cell(cell, list(ncopy))
    images = np.indices(ncopy).reshape(3, -1).T               # x-major, as super_cell orders them
    shifts = images @ np.asarray(cell.lattice_vectors())   # image translations, in super_cell's order
    columns: list[np.ndarray] = []
    up: list[int] = []
    down: list[int] = []
    for k in groups[twist]:
        phases = np.exp(1j * shifts @ kpts[k])
        for n in np.nonzero(occ[k] > 0.5)[0]:
            orbital = (phases[:, None] * coeff[k][:, n][None, :]).reshape(-1)
            up.append(len(columns))
            if occ[k][n] > 1.5:
                down.append(len(columns))
            columns.append(orbital)
    if len(up) + len(down) != supcell.nelectron:
        raise ConversionError(f"occupations hold {len(up) + len(down)} electrons but the supercell has "
                              f"{supcell.nelectron}")
    orbitals = np.array(columns).T
    energy = float(np.ravel(record["e_tot"])[0]) * int(np.prod(ncopy))
    return Source(supcell, True, orbitals, [(1.0, up, down)], kpts[groups[twist][0]], energy)
