"""The one sampling judge (autogenv2.sampling): the PyQMC, QWalk and toy Readers give one verdict and one
published estimate for one block series, under one set of limits.

Data: recorded real QWalk runs (tests/data/qwalk/cases); their block series are also fed to the PyQMC and
toy Readers' ``judge`` (which take a bare series), so the three Readers are compared on the same numbers.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from autogenv2 import errorbar, sampling, sampling_reader, stats
from autogenv2.codes.pyqmc.reader import MCReader
from autogenv2.codes.qwalk import logparse as lp
from autogenv2.codes.qwalk.estimates import sample
from autogenv2.codes.qwalk.reader import QWalkReader
from autogenv2.codes.toy.reader import ToyReader
from autogenv2.states import Verdict
from conftest import QWALK_CASES


def _case(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(QWALK_CASES / name, target)
    return target


def _series(name: str, label: str) -> lp.Series:
    return lp.parse_log(next((QWALK_CASES / name).glob("*.log"))).series[label]


def test_readers_are_one_judge_not_subclasses() -> None:
    assert not issubclass(ToyReader, MCReader)
    for reader in (MCReader, ToyReader, QWalkReader):
        assert issubclass(reader, sampling_reader.SamplingReader)
        fields = reader.model_fields
        assert (fields["min_blocks"].default, fields["max_blocks"].default) == (10, 20000)
        assert fields["target_confidence"].default == 0.95


@pytest.mark.parametrize("warmup", [2, 3])
def test_min_blocks_after_warmup_the_same_in_every_reader(tmp_path: Path, warmup: int) -> None:
    """10 planned blocks, all ran, warm-up 2 or 3: 8 or 7 blocks after warm-up are fewer than
    min_blocks=10 for every Reader (QWalk used to waive this when the warm-up was within the first
    fifth of the plan; the stricter rule is the one kept), each asks for warm-up + 10 in its own key."""
    series = _series("si_vmc_short", "vmc")
    assert series.nblocks == 10
    qwalk = QWalkReader(total_blocks=10, warmup=warmup).read(_case("si_vmc_short", tmp_path), 0)
    pyqmc = MCReader(warmup=warmup).judge(series.energy, None, 10, "vmc.hdf5")
    toy = ToyReader(warmup=warmup).judge(series.energy, None, 10, "blocks.json")
    reason = f"{10 - warmup} blocks after warm-up, fewer than min_blocks=10"
    for read in (qwalk, pyqmc, toy):
        assert read.verdict is Verdict.incomplete and reason in read.reason, read.reason
        assert read.results["energy"] == pytest.approx(series.energy[warmup:].mean(), rel=1e-14)
    assert qwalk.more == {"nblock": 10 + warmup}
    assert pyqmc.more == toy.more == {"nblocks": 10 + warmup}
    expected = errorbar.publish(series.energy, None, warmup)
    assert pyqmc.results == toy.results and pyqmc.results["error"] == expected.error


def test_target_error_is_planned_by_the_one_judge_and_capped_by_max_blocks(tmp_path: Path) -> None:
    """A recorded 20-block DMC and a 0.001 Ha target: QWalk's continuation is the one judge's total for
    the estimate it published; PyQMC and toy give one verdict for the same weighted series. With
    max_blocks at the blocks already run, QWalk (which had no cap) now fails with the reason."""
    series = _series("dmc_h2", "dmc")
    qwalk = QWalkReader(target_error=0.001).read(_case("dmc_h2", tmp_path / "a"), 0)
    cut = qwalk.results["warmup"]
    numbers, published = sample(series, cut)  # the DMC floor: 10 of 20 blocks
    assert published is not None and numbers["error"] == qwalk.results["error"]
    need = sampling.judge(published, 20, cut, sampling.Limits(target_error=0.001), 20)
    assert qwalk.verdict is Verdict.incomplete and need.verdict is sampling.Verdict.more
    assert qwalk.more == {"nblock": need.blocks} and need.blocks > 20 and need.why in qwalk.reason
    pyqmc = MCReader(target_error=0.001, warmup=cut).judge(series.energy, series.totweight, 20, "dmc.hdf5")
    toy = ToyReader(target_error=0.001, warmup=cut).judge(series.energy, series.totweight, 20, "blocks.json")
    assert pyqmc.verdict is toy.verdict is Verdict.incomplete and pyqmc.more == toy.more
    assert pyqmc.results == toy.results and pyqmc.more["nblocks"] > 20
    capped = QWalkReader(target_error=0.001, max_blocks=20).read(_case("dmc_h2", tmp_path / "b"), 0)
    assert capped.verdict is Verdict.failed and "at max_blocks 20" in capped.reason and not capped.more
    assert "_wanted" not in capped.results and not any(k.startswith("_") for k in capped.results)


def test_judge_takes_every_unmet_requirement() -> None:
    """A run stopped short of its plan whose target needs more than the plan continues to the larger total;
    one with no target and enough blocks is enough; error met says so."""
    rng = np.random.default_rng(3)
    x = rng.normal(-1.0, 0.05, 400)
    published = sampling.publish(x, None, 0)
    assert published is not None
    need = sampling.judge(published, 400, 0, sampling.Limits(target_error=published.estimate.error / 3), 500)
    assert need.verdict is sampling.Verdict.more and need.blocks > 500 and need.more == need.blocks - 400
    assert "stopped after 400 of 500 blocks" in need.why and "error" in need.why
    assert sampling.judge(published, 400, 0, sampling.Limits()).verdict is sampling.Verdict.enough
    met = sampling.judge(published, 400, 0, sampling.Limits(target_error=1.0))
    assert met.verdict is sampling.Verdict.error_met and met.done and met.more == 0
    est, prec = published.estimate, published.precision
    assert published.results()["error_bound"] == pytest.approx(prec.upper(stats.Z_95), rel=1e-12)
    assert est.error == pytest.approx(errorbar.publish(x).error, rel=1e-14)
    assert sampling.publish(x[:3], None, 3) is None
