"""Defaults that follow QWalk practice (issue 18): T-moves for pseudopotential DMC, AIP from the channels.

The real-QWalk checks (a ccECP DMC with T-moves and AIP 6/12) are in tests/test_qwalk_real.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from autogenv2.codes.qwalk import syntax
from autogenv2.codes.qwalk.system import Atom, Pseudo, System, default_aip
from autogenv2.codes.qwalk.writer import DMCWriter
from conftest import QWALK_CASES

LOCAL = [(2, 1.0, -1.0)]


@pytest.mark.parametrize("nchannels, aip", [(1, 6), (2, 6), (3, 12), (4, 12)])
def test_aip_follows_qwalks_converter(nchannels: int, aip: int) -> None:
    pseudo = Pseudo(label="X", channels=[LOCAL] * nchannels)
    assert default_aip(nchannels) == aip and pseudo.section().get("AIP") == str(aip)
    fixed = Pseudo(label="X", aip=18, channels=[LOCAL] * nchannels)   # an explicit value wins
    assert fixed.section().get("AIP") == "18"


def _inputs(case: str) -> dict[str, Path]:
    directory = QWALK_CASES / case
    return {"qwalk_system": directory / "qw.sys", "qwalk_wavefunction": directory / "qw.slater",
            "qwalk_orb": directory / "qw.orb", "qwalk_basis": directory / "qw.basis"}


@pytest.mark.parametrize("case, options, tmoves", [
    ("pyscf_lih_ccecp_vmc_slater", {}, True),                  # ccECP on Li: on by default
    ("pyscf_lih_ccecp_vmc_slater", {"tmoves": False}, False),  # switched off
    ("pyscf_lih_ccecp_vmc_slater", {"tmovessc": True}, False),  # the size-consistent variant instead
    ("pyscf_lih_vmc_slater", {}, False),                       # all-electron: nothing to localize
    ("pyscf_lih_vmc_slater", {"tmoves": True}, True),
])
def test_tmoves_default_for_pseudopotentials(tmp_path: Path, case: str, options: dict[str, bool],
                                             tmoves: bool) -> None:
    DMCWriter(timestep=0.02, nconfig=10, **options).write(tmp_path, _inputs(case))
    method = syntax.load(tmp_path / "qw.dmc").section("METHOD")
    assert method.has("TMOVES") is tmoves
    assert method.has("TMOVESSC") is bool(options.get("tmovessc"))


def test_system_without_pseudo_renders_no_aip() -> None:
    system = System(nspin=(1, 1), atoms=[Atom(label="H", charge=1, coor=(0, 0, 0)),
                                         Atom(label="H", charge=1, coor=(0, 0, 1.4))])
    assert "AIP" not in system.render()
