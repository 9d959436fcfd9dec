"""autogenv2.errorbar: the published error bar covers the truth at its stated rate (issue 14).

The figures asserted were measured with benchmarks/calibration.py; each test also checks that the error
before issue 14 (pyblock's reblocked choice, stats.estimate) fails where the published one passes, so the
test would catch a regression to it."""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import lfilter

from autogenv2 import errorbar, stats


def ar1(phi: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    eps = rng.normal(size=n) * np.sqrt(1.0 - phi**2)
    eps[0] = rng.normal()
    return lfilter([1.0], [1.0, -phi], eps)


def coverage(phi: float, n: int, seeds: int, published: bool) -> tuple[float, float, float]:
    """(share within 1σ, within 2σ, std(E)/mean(σ)) of ``seeds`` series whose true mean is 0."""
    means, errors = [], []
    for seed in range(seeds):
        x = ar1(phi, n, seed)
        est = errorbar.publish(x) if published else stats.estimate(x)
        means.append(est.mean)
        errors.append(est.error)
    z = np.abs(np.array(means)) / np.array(errors)
    return float(np.mean(z <= 1)), float(np.mean(z <= 2)), float(np.std(means) / np.mean(errors))


@pytest.mark.parametrize("n", [20, 40, 60])
def test_short_uncorrelated_series_are_covered_at_the_stated_rate(n: int) -> None:
    """QWalk-like: 20–60 uncorrelated blocks. Reblocked: 62–66 % / 90–91 % (over-confident); published:
    67–72 % / 95–97 %, std/σ 0.92–0.95 (1,000 seeds; binomial sd 1.5 % / 0.7 %)."""
    c1, c2, ratio = coverage(0.0, n, 1000, published=True)
    assert 0.63 <= c1 <= 0.77 and 0.93 <= c2 <= 0.985 and 0.85 <= ratio <= 1.1, (c1, c2, ratio)
    _, b2, _ = coverage(0.0, n, 1000, published=False)
    assert b2 < 0.925 and b2 < c2 - 0.03, "the reblocked error alone is over-confident on short series"


def test_correlated_dmc_like_series_are_covered() -> None:
    """AR(1) φ = 0.5 (τ = 3 blocks), 60 blocks: reblocked 87 % at 2σ, std/σ 1.19; published ≥ 90 %."""
    c1, c2, ratio = coverage(0.5, 60, 1000, published=True)
    _, b2, bratio = coverage(0.5, 60, 1000, published=False)
    assert c2 >= 0.90 and 0.6 <= c1 <= 0.8 and 0.85 <= ratio <= 1.1, (c1, c2, ratio)
    assert b2 < c2 and bratio > 1.1, (b2, bratio)


def test_never_below_the_plain_standard_error_and_small_samples_are_marked() -> None:
    for seed in range(200):
        x = ar1(0.0, 40, seed)
        pub = errorbar.publish(x)
        assert pub.error >= pub.naive * (1 - 1e-12)
        assert pub.reblocked == pytest.approx(stats.estimate(x).error, rel=1e-12)
    short = errorbar.publish(ar1(0.9, 60, 1))  # τ ≈ 19 blocks: a handful of blocks behind the error
    assert not short.reliable and "degrees of freedom" in short.reason and short.dof < errorbar.MIN_DOF
    long = errorbar.publish(ar1(0.0, 2000, 1))
    assert long.reliable and long.reason == "" and 1900 < long.dof <= 1999  # Gaussian: κ ≈ 0
    assert long.bound95 == pytest.approx(1.96 * long.naive, rel=1e-3)
    json.dumps(short.results(), allow_nan=False)
    one = errorbar.publish([1.0, 2.0], warmup=1)
    assert not one.reliable and math.isnan(one.error)


def test_heavy_tailed_blocks_have_fewer_degrees_of_freedom() -> None:
    """Skewed, heavy-tailed blocks (gamma 0.75: skewness −2.3, excess kurtosis 8) of 20: with N − 1 dof
    they covered 84 % at 2σ (2,000 seeds, calibration.py); with the kurtosis in the dof, 92 %."""
    rng = np.random.default_rng(0)
    z = []
    for _ in range(2000):
        x = -(rng.gamma(0.75, size=20) - 0.75)
        pub = errorbar.publish(x)
        z.append(abs(pub.mean) / pub.error)
        assert pub.dof <= 19
    assert np.mean(np.array(z) <= 2) > 0.9
    gauss = np.random.default_rng(1).normal(size=1000)
    assert errorbar.heavy_tailed_dof(gauss, 999) > 900
    assert errorbar.heavy_tailed_dof(np.r_[np.zeros(99), 10.0], 99) < 5


def test_small_sample_factor_shrinks_to_one() -> None:
    factors = [errorbar.small_sample_factor(nu) for nu in (1, 2, 4, 9, 29, 1000)]
    assert all(a > b for a, b in itertools.pairwise(factors)) and factors[-1] == pytest.approx(1.0, abs=2e-3)


def test_weighted_series_use_the_effective_count_for_their_dof() -> None:
    x = ar1(0.0, 100, 3)
    equal = errorbar.publish(x, np.ones(100))
    skewed = errorbar.publish(x, np.r_[np.full(50, 9.0), np.ones(50)])
    assert equal.dof == pytest.approx(errorbar.publish(x).dof) and skewed.dof < 0.85 * equal.dof


def test_walker_group_error_gets_dof_and_a_95_bound() -> None:
    prec = stats.precision(ar1(0.0, 4000, 2))
    fields = errorbar.from_precision(prec)
    assert fields["reliable"] and fields["error_dof"] > 100  # type: ignore[operator]
    assert fields["error_95"] == pytest.approx(1.96 * prec.error, rel=0.01)


# --- optimization traces ------------------------------------------------------------------------

def test_a_trace_swinging_by_many_sigma_cannot_pass() -> None:
    """He-like: stated errors 0.004, the trace swings ±0.04 Ha. The old test (range of the last 3 ≤
    2√2σ) passed whenever three iterations fell close; the scatter test never lets it pass."""
    energy = np.array([-2.86, -2.94, -2.87, -2.93, -2.89, -2.95, -2.88, -2.923, -2.9225, -2.9228])
    error = np.full(energy.size, 0.004)
    last = energy[-3:]
    assert last.max() - last.min() <= 2 * math.sqrt(2) * 0.004, "the old test would have passed"
    trace = errorbar.trace_convergence(energy, error, 3, 2.0)
    assert not trace.converged and "scatter" in trace.reason and trace.scatter > 5
    passes = 0
    for seed in range(300):  # at every look from 10 to 40 iterations
        rng = np.random.default_rng(seed)
        swing = -2.90 + 0.04 * rng.normal(size=40)
        passes += any(errorbar.trace_convergence(swing[:n], np.full(n, 0.004), 3, 2.0).converged
                      for n in range(10, 41, 3))
    assert passes == 0


def test_a_flat_trace_with_honest_errors_converges_and_keeps_its_error() -> None:
    ok, errors = 0, []
    for seed in range(500):
        rng = np.random.default_rng(seed)
        flat = -1.17 + 0.001 * rng.normal(size=12)
        trace = errorbar.trace_convergence(flat, np.full(12, 0.001), 3, 2.0)
        ok += trace.converged
        errors.append(trace.error)
    assert ok / 500 > 0.8  # measured 89 % at one look (2,000 seeds), as the range test alone (89 %)
    assert np.median(errors) == pytest.approx(0.001)
    assert not errorbar.trace_convergence(np.ones(2), np.ones(2), 3, 2.0).converged


# --- what the Readers publish ----------------------------------------------------------------------

def test_the_mc_reader_publishes_the_calibrated_error_with_its_dof_and_bound() -> None:
    from autogenv2.codes.pyqmc.reader import MCReader

    x = -1.17 + 0.01 * ar1(0.0, 45, 5)
    read = MCReader(warmup=5).judge(x, None, 45, "vmc.hdf5")
    pub = errorbar.publish(x, warmup=5)
    res = read.results
    assert res["error"] == pytest.approx(pub.error) and res["error"] > res["error_naive"]
    assert res["error_reblocked"] == pytest.approx(stats.estimate(x, warmup=5).error)
    assert res["error_dof"] == 39 and res["error_method"] == "blocks" and res["warmup"] == 5
    assert res["error_95"] == pytest.approx(pub.naive * 2.0227, rel=1e-3)  # t_39(0.975)
    assert res["reliable"] is True and res["unreliable_reason"] == ""
    json.dumps(res, allow_nan=False)


def test_the_optimize_reader_does_not_accept_a_swinging_trace(tmp_path: Path) -> None:
    import h5py

    from autogenv2.codes.pyqmc.reader import OptimizeReader

    energy = np.array([-2.86, -2.94, -2.87, -2.93, -2.89, -2.95, -2.88, -2.923, -2.9225, -2.9228])
    params = {"output": "opt.hdf5", "options": {"max_iterations": 10}}
    (tmp_path / "params.json").write_text(json.dumps(params))
    with h5py.File(tmp_path / "opt.hdf5", "w") as handle:
        handle["energy"], handle["energy_error"] = energy, np.full(10, 0.004)
    read = OptimizeReader().read(tmp_path, 0)
    assert read.verdict.value == "incomplete" and "scatter" in read.reason
    assert read.more == {"max_iterations": 13}
    assert read.results["error_stated"] == 0.004 and read.results["error"] > 5 * 0.004
    assert read.results["reliable"] is False


def test_results_show_the_warmup_used_the_95_bound_and_reliable(tmp_path: Path) -> None:
    from autogenv2 import results_table as store
    from autogenv2.states import State
    from autogenv2.status import ElementStatus, JobStatus

    result = {"energy": -1.17, "error": 0.001, "warmup": 20, "error_95": 0.0021, "reliable": False,
              "unreliable_reason": "only 6 degrees of freedom", "blocks": 80}
    element = ElementStatus(name="dmc", code="pyqmc", method="dmc", state=State.done, result=result,
                            spec={"name": "dmc", "options": {"warmup": 5}})
    (tmp_path / "h2").mkdir()
    JobStatus(job_id="h2", elements=[element]).save(tmp_path / "h2")
    (row,) = store.rows(tmp_path, rescan=True)
    assert row["warmup"] == 20 and row["parameters"]["warmup"] == 5, "the warm-up used, beside the plan's"
    assert row["error_95"] == 0.0021 and row["reliable"] is False
    assert "reliable" in store.csv_text(store.rows(tmp_path, decode=False)).splitlines()[0]


def test_doctests_of_errorbar_module() -> None:
    import doctest

    assert doctest.testmod(errorbar).failed == 0


def test_heavy_tailed_samples_are_told_by_their_block_variances() -> None:
    """Gaussian samples (block variances scattering as χ² of 999 dof) keep their own kurtosis; blocks
    with one rare huge sample get the floor; so does the recorded QWalk VMC of H2."""
    rng = np.random.default_rng(2)
    gauss = rng.normal(size=(20, 1000))
    means, variances = gauss.mean(axis=1), gauss.var(axis=1, ddof=1)
    assert errorbar.tail_floor(means, variances) == 0.0
    plain = errorbar.publish(means)
    assert errorbar.publish(means, sample_variance=variances).error == plain.error
    gauss[3, 7] -= 60.0  # one local energy near an unmet cusp
    assert errorbar.tail_floor(gauss.mean(axis=1), gauss.var(axis=1, ddof=1)) > 2.0
    recorded = np.load(Path(__file__).parent / "data" / "calibration" / "qwalk_vmc_h2_20_blocks.npz")
    energy, variance = recorded["energy"][0], recorded["variance"][0]
    assert errorbar.tail_floor(energy, variance) > 2.0
    assert errorbar.publish(energy, sample_variance=variance).dof < errorbar.publish(energy).dof


def test_twenty_heavy_tailed_qwalk_blocks_are_covered() -> None:
    """Fresh QWalk VMC runs of H2 (vmc_h2_sj, 100 walkers × 10 steps a block), first 20 blocks, read as
    the QWalk Reader does (gosling's warm-up), against a 3,000-block reference: their own kurtosis covered
    90 % at 2σ (300 runs; 87 % on the first 150, docs/benchmarks.md); with the floor their block variances
    call for, 92.7 %."""
    from autogenv2.codes.qwalk.estimates import gosling_warmup

    recorded = np.load(Path(__file__).parent / "data" / "calibration" / "qwalk_vmc_h2_20_blocks.npz")
    truth, truth_error = float(recorded["reference"][0]), float(recorded["reference"][1])
    z: dict[bool, list[float]] = {False: [], True: []}
    for energy, variance in zip(recorded["energy"], recorded["variance"], strict=True):
        cut = gosling_warmup(energy)
        for tails in (False, True):
            pub = errorbar.publish(energy, None, cut, sample_variance=variance if tails else None)
            z[tails].append(abs(pub.mean - truth) / math.hypot(pub.error, truth_error))
    own, floored = np.array(z[False]), np.array(z[True])
    assert np.mean(own <= 2) <= 0.9  # 270 of 300
    assert np.mean(floored <= 2) >= 0.92 and 0.63 <= np.mean(floored <= 1) <= 0.75


def test_the_inspect_path_shortcuts_give_what_they_replace() -> None:
    """Normal quantiles from the table, the median without numpy.ma and the FFT correlations kept for the
    next test of the same series are the values of statistics.NormalDist, np.median and a fresh FFT."""
    from statistics import NormalDist

    for p, z in stats.NORMAL_QUANTILES.items():
        assert z == NormalDist().inv_cdf(p) == stats.normal_quantile(p)
    assert stats.normal_quantile(0.8) == NormalDist().inv_cdf(0.8)
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 10, 11, 5000):
        w = rng.gamma(2.0, 1.0, n)
        assert stats.median(w) == float(np.median(w))
    assert stats.median(np.array([1.0, np.inf, np.inf, 2.0])) == float(np.median([1.0, np.inf, np.inf, 2.0]))
    assert math.isnan(stats.median(np.array([1.0, np.nan, 2.0])))
    x = np.cumsum(rng.normal(size=9000)) * 0.01 + rng.normal(size=9000)
    y, lags = x - x.mean(), math.isqrt(x.size)
    errorbar._LAST_FFT.clear()
    first = errorbar._fft_correlations(x, y, lags)
    again = errorbar._fft_correlations(x.copy(), y, lags)
    assert again is first and not again.flags.writeable
    other = x[::-1].copy()
    centred = other - other.mean()
    fresh = errorbar._fft_correlations(other, centred, lags)
    expected = stats._autocovariance(centred[:, None])[1:lags + 1, 0] * other.size / (centred @ centred)
    assert fresh is not first and np.array_equal(fresh, expected + 1.0 / other.size)


def _pyqmc_run(directory: Path, energy: np.ndarray, weight: np.ndarray | None) -> None:
    """A finished PyQMC run directory: params.json and a block file in PyQMC's layout."""
    import h5py

    output = "dmc.hdf5" if weight is not None else "vmc.hdf5"
    directory.mkdir()
    params = {"output": output, "options": {"nblocks": energy.size}}
    (directory / "params.json").write_text(json.dumps(params))
    with h5py.File(directory / output, "w") as handle:
        handle["energytotal"], handle["block"] = energy, np.arange(energy.size)
        if weight is not None:
            handle["weight"] = weight


def test_pyqmc_dmc_error_is_published_as_not_reliable_with_the_reason(tmp_path: Path) -> None:
    """Fresh PyQMC DMC runs of H2 scatter more than each run's error says (87–90 % at 2σ on 101 runs,
    docs/benchmarks.md): the number is kept, marked unreliable with the reason; VMC (no weights) is not."""
    from autogenv2.codes.pyqmc.reader import DMC_SLOW_MODE, MCReader

    x = -1.17 + 0.01 * ar1(0.3, 65, 8)
    _pyqmc_run(tmp_path / "dmc", x, 1.0 + 0.001 * ar1(0.9, 65, 9))
    _pyqmc_run(tmp_path / "vmc", x, None)
    dmc, vmc = MCReader(warmup=5).read(tmp_path / "dmc", 0), MCReader(warmup=5).read(tmp_path / "vmc", 0)
    assert dmc.verdict.value == vmc.verdict.value == "complete", "never stops a run"
    pub = errorbar.publish(x, 1.0 + 0.001 * ar1(0.9, 65, 9), 5)
    assert dmc.results["error"] == pytest.approx(pub.error), "the number is unchanged"
    assert dmc.results["reliable"] is False and DMC_SLOW_MODE in dmc.results["unreliable_reason"]
    assert vmc.results["reliable"] is errorbar.publish(x, None, 5).reliable
    assert DMC_SLOW_MODE not in vmc.results["unreliable_reason"]
    json.dumps(dmc.results, allow_nan=False)
