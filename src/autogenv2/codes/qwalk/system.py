"""QWalk SYSTEM and PSEUDO sections (the ``.sys`` file), as validated models.

Units are bohr and hartree. Atom labels must be the same in ATOM, PSEUDO, BASIS and the
Jastrow; the charge of an atom with a PSEUDO is its valence charge.

>>> sys_ = System(nspin=(1, 1), atoms=[Atom(label="H", charge=1, coor=(0, 0, 0)),
...                                     Atom(label="H", charge=1, coor=(0, 0, 1.4))])
>>> print(sys_.render().splitlines()[1])
  MOLECULE
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...naming import check_name
from ..base import Options
from .syntax import Item, Section, dumps, format_number

LABEL = r"^[A-Za-z][A-Za-z0-9_+\-.]{0,30}$"
"""Atom labels: one word, no braces or '#'."""

Vector = tuple[float, float, float]
Aip = Literal[4, 6, 12, 18, 26, 32]
"""The angular integration point counts QWalk's PSEUDO accepts."""


def numbers(values: Iterable[float]) -> list[Item]:
    """QWalk words for a flat list of numbers (as section items)."""
    return [format_number(v) for v in values]


class QWalkFile(Options):
    """A model that renders to QWalk text; ``write`` puts it into a file."""

    def section(self) -> Section:
        """The parsed form of the text this model renders (a file-level Section)."""
        raise NotImplementedError

    def render(self) -> str:
        """The QWalk text."""
        return dumps(self.section())

    def write(self, path: Path) -> str:
        """Write ``render()`` to ``path`` (its name must be a safe file name); return the name."""
        path = Path(path)
        check_name(path.name, "QWalk file name")
        path.write_text(self.render())
        return path.name


class Atom(Options):
    """``ATOM { label charge COOR x y z }``."""

    label: str = Field(pattern=LABEL)
    charge: float = Field(gt=0, description="nuclear charge, or valence charge with a PSEUDO")
    coor: Vector

    def section(self) -> Section:
        charge = int(self.charge) if float(self.charge).is_integer() else self.charge
        return Section("ATOM", [self.label, format_number(charge), "COOR", *numbers(self.coor)])


def default_aip(nchannels: int) -> int:
    """QWalk's own choice of AIP: 12 points for more than two channels (local included), else 6.

    Source: QWalk mainline b12ea36 ``src/converter/Pseudo_writer.cpp`` (``if(numL > 2) naip=12``),
    the same rule in ``utils/autogen/crystal2qmc.py`` and ``utils/getpsp.py``. So ccECP Li (s +
    local) gets 6, ccECP C/Si (s, p + local) and Fe (s, p, d + local) get 12.

    >>> default_aip(2), default_aip(3), default_aip(4)
    (6, 12, 12)
    """
    return 12 if nchannels > 2 else 6


class Pseudo(QWalkFile):
    """``PSEUDO { label AIP n BASIS { label RGAUSSIAN OLDQMC { ... } } }``.

    ``channels[l]`` lists the terms ``(n, exponent, coefficient)`` of the semilocal channel
    l = 0, 1, ...; the **last** channel is the local potential. A term is
    ``coefficient * r**(n-2) * exp(-exponent r**2)`` (PySCF's ECP convention too).
    """

    label: str = Field(pattern=LABEL)
    aip: Aip | None = None
    """Angular integration points of the nonlocal part; None: :func:`default_aip` of the channels."""
    channels: list[list[tuple[int, float, float]]] = Field(min_length=1)

    def section(self) -> Section:
        aip = self.aip if self.aip is not None else default_aip(len(self.channels))
        oldqmc: list[Item] = ["0.0", str(len(self.channels)), *(str(len(c)) for c in self.channels)]
        for channel in self.channels:
            for n, exponent, coefficient in channel:
                oldqmc.extend([str(n), format_number(exponent), format_number(coefficient)])
        basis = Section("BASIS", [self.label, "RGAUSSIAN", Section("OLDQMC", oldqmc)])
        return Section("PSEUDO", [self.label, "AIP", str(aip), basis])


class System(QWalkFile):
    """The ``.sys`` file: one SYSTEM section (MOLECULE or PERIODIC) and the PSEUDO sections."""

    kind: Literal["molecule", "periodic"] = "molecule"
    nspin: tuple[int, int]
    atoms: list[Atom] = Field(min_length=1)
    pseudos: list[Pseudo] = []
    latticevec: tuple[Vector, Vector, Vector] | None = None
    """PERIODIC only: rows are the lattice vectors (bohr)."""
    kpoint: Vector | None = None
    """PERIODIC only: twist in units where 1 = antiperiodic along that lattice vector."""
    cutoff_divider: float | None = Field(None, gt=0)
    ewald_gmax: int | None = Field(None, gt=0)
    origin: Vector | None = None
    electric_field: Vector | None = None

    @field_validator("nspin")
    @classmethod
    def _nspin(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 0 or sum(value) == 0:
            raise ValueError("NSPIN needs two non-negative electron counts, not both zero")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> System:
        periodic_only = {"latticevec": self.latticevec, "kpoint": self.kpoint,
                         "cutoff_divider": self.cutoff_divider, "ewald_gmax": self.ewald_gmax}
        if self.kind == "periodic" and self.latticevec is None:
            raise ValueError("a PERIODIC system needs latticevec")
        if self.kind == "molecule":
            extra = [k for k, v in periodic_only.items() if v is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)} only apply to kind='periodic'")
        if self.kind == "periodic" and self.electric_field is not None:
            raise ValueError("electric_field only applies to kind='molecule'")
        labels = {a.label for a in self.atoms}
        stray = [p.label for p in self.pseudos if p.label not in labels]
        if stray:
            raise ValueError(f"PSEUDO for {', '.join(stray)} but no ATOM has that label")
        if len({p.label for p in self.pseudos}) != len(self.pseudos):
            raise ValueError("more than one PSEUDO for the same label")
        return self

    @property
    def nelectrons(self) -> int:
        """Total electrons (NSPIN up + down)."""
        return sum(self.nspin)

    def labels(self) -> list[str]:
        """Distinct atom labels in order of first appearance."""
        return list(dict.fromkeys(a.label for a in self.atoms))

    def section(self) -> Section:
        items: list[str | Section] = [self.kind.upper()]
        if self.kind == "periodic":
            if self.cutoff_divider is not None:
                items += ["CUTOFF_DIVIDER", format_number(self.cutoff_divider)]
            if self.ewald_gmax is not None:
                items += ["EWALD_GMAX", str(self.ewald_gmax)]
            items.append(Section("LATTICEVEC", [w for row in self.latticevec or () for w in numbers(row)]))
            if self.kpoint is not None:
                items.append(Section("KPOINT", numbers(self.kpoint)))
        if self.origin is not None:
            items.append(Section("ORIGIN", numbers(self.origin)))
        if self.electric_field is not None:
            items.append(Section("ELECTRIC_FIELD", numbers(self.electric_field)))
        items.append(Section("NSPIN", [str(n) for n in self.nspin]))
        items.extend(atom.section() for atom in self.atoms)
        return Section("", [Section("SYSTEM", items), *(p.section() for p in self.pseudos)])
