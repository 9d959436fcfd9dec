"""autogenv2.stats: cross-checked against pyblock and against AR(1) series with a known error."""
from __future__ import annotations

import doctest

import numpy as np
import pytest
from pyblock.blocking import find_optimal_block, reblock as pyblock_reblock
from scipy.signal import lfilter

from autogenv2 import stats


def ar1(phi: float, n: int, seed: int) -> np.ndarray:
    """Stationary AR(1) with unit variance: x_t = φ x_{t-1} + √(1-φ²) ε_t."""
    rng = np.random.default_rng(seed)
    eps = rng.normal(size=n) * np.sqrt(1.0 - phi**2)
    eps[0] = rng.normal()  # start in the stationary distribution: no warm-up needed
    return lfilter([1.0], [1.0, -phi], eps)


def ar1_error(phi: float, n: int) -> float:
    """Asymptotic standard error of the mean of ``n`` samples of :func:`ar1`."""
    return float(np.sqrt((1.0 + phi) / (1.0 - phi) / n))


CASES = [(phi, n) for phi in (0.0, 0.5, 0.9, 0.99) for n in (17, 100, 1000, 10007)]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(("phi", "n"), CASES)
def test_levels_match_pyblock(phi: float, n: int, weighted: bool) -> None:
    x = ar1(phi, n, seed=n)
    w = np.random.default_rng(n + 1).uniform(0.2, 2.0, n) if weighted else None
    ours = stats.reblock(x, w)
    theirs = pyblock_reblock(x, weights=w)
    assert len(ours) == len(theirs)
    for k, (lv, pb) in enumerate(zip(ours, theirs, strict=True)):
        assert lv.size == 2**k and lv.nblocks == pb.ndata
        assert lv.error == pytest.approx(float(pb.std_err), rel=0, abs=1e-10)
        assert lv.error_error == pytest.approx(float(pb.std_err_err), rel=0, abs=1e-10)
    est = stats.estimate(x, w)
    assert est.mean == pytest.approx(float(theirs[0].mean), rel=0, abs=1e-10)
    assert est.mean == pytest.approx(float(np.average(x, weights=w)), rel=0, abs=1e-12)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(("phi", "n"), CASES)
def test_chosen_level_is_pyblocks_optimum(phi: float, n: int, weighted: bool) -> None:
    """Same level as pyblock whenever pyblock's optimum has ≥ MIN_BLOCKS blocks; else "unreliable".

    pyblock may choose a level with 2 or 3 blocks; ours never does (MIN_BLOCKS) and then
    reports ``reliable=False`` with the largest error among the usable levels instead.
    """
    x = ar1(phi, n, seed=n)
    w = np.random.default_rng(n + 1).uniform(0.2, 2.0, n) if weighted else None
    theirs = pyblock_reblock(x, weights=w)
    optimum = find_optimal_block(n, theirs)[0]
    est = stats.estimate(x, w)
    if not np.isnan(optimum) and theirs[optimum].ndata >= stats.MIN_BLOCKS:
        assert est.reliable
        assert est.block_size == 2**optimum
        assert est.error == pytest.approx(float(theirs[optimum].std_err), rel=0, abs=1e-10)
    else:
        usable = [float(pb.std_err) for pb in theirs if pb.ndata >= stats.MIN_BLOCKS] or [theirs[0].std_err]
        assert not est.reliable
        assert est.error == pytest.approx(max(usable), rel=0, abs=1e-10)


def test_pyblock_comparison_covers_both_branches() -> None:
    """The parametrised cases above include reliable and unreliable outcomes."""
    outcomes = {stats.estimate(ar1(phi, n, seed=n)).reliable for phi, n in CASES}
    assert outcomes == {True, False}


def test_uncorrelated_error_is_sigma_over_sqrt_n() -> None:
    n, seeds = 2048, 200
    ratios = np.array([stats.estimate(ar1(0.0, n, seed=s)).error * np.sqrt(n) for s in range(seeds)])
    # each ratio has a relative spread of ~1/√(2·blocks) ≈ 6 %; the mean over 200 seeds ~0.5 %
    assert ratios.mean() == pytest.approx(1.0, abs=0.03)
    assert 0.02 < ratios.std() < 0.15


@pytest.mark.parametrize("phi", [0.5, 0.8, 0.9, 0.95])
def test_ar1_error_matches_analytic(phi: float) -> None:
    n, seeds = 16384, 60
    ratios = [stats.estimate(ar1(phi, n, seed=s)).error / ar1_error(phi, n) for s in range(seeds)]
    assert np.mean(ratios) == pytest.approx(1.0, rel=0.15)


def test_ar1_autocorrelation_time() -> None:
    phi, n = 0.8, 65536
    taus = [stats.estimate(ar1(phi, n, seed=s)).autocorrelation_time for s in range(20)]
    assert np.mean(taus) == pytest.approx((1 + phi) / (1 - phi), rel=0.15)


def test_weights_are_scale_invariant_and_equal_weights_are_unweighted() -> None:
    x = ar1(0.7, 999, seed=3)
    w = np.random.default_rng(4).uniform(0.5, 1.5, x.size)
    a, b = stats.estimate(x, w), stats.estimate(x, 1000.0 * w)
    assert (a.mean, a.block_size) == pytest.approx((b.mean, b.block_size), rel=1e-12)
    assert a.error == pytest.approx(b.error, rel=1e-10)
    plain, ones = stats.estimate(x), stats.estimate(x, np.ones(x.size))
    assert (ones.mean, ones.error, ones.block_size) == pytest.approx(
        (plain.mean, plain.error, plain.block_size), rel=1e-10
    )


def test_weighted_mean_follows_weights() -> None:
    est = stats.estimate([1.0, 2.0, 3.0, 4.0], weights=[1.0, 1.0, 1.0, 5.0])
    assert est.mean == pytest.approx((1 + 2 + 3 + 20) / 8)


def test_reblock_rejects_mismatched_weights() -> None:
    with pytest.raises(ValueError, match="weights"):
        stats.reblock(np.arange(10.0), np.ones(9))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_warmup_drops_leading_samples(weighted: bool) -> None:
    x = ar1(0.5, 500, seed=5)
    x[:50] += 10.0  # a transient the warm-up must remove
    w = np.random.default_rng(6).uniform(0.5, 1.5, x.size) if weighted else None
    cut = stats.estimate(x, w, warmup=50)
    ref = stats.estimate(x[50:], None if w is None else w[50:])
    assert (cut.mean, cut.error, cut.n, cut.block_size) == (ref.mean, ref.error, ref.n, ref.block_size)
    assert cut.n == 450
    assert stats.estimate(x, w).mean > cut.mean + 0.5


def test_warmup_removing_everything_raises() -> None:
    with pytest.raises(ValueError, match="warm-up"):
        stats.estimate(np.arange(5.0), warmup=5)


def test_no_samples_raises() -> None:
    with pytest.raises(ValueError):
        stats.estimate([])
    with pytest.raises(ValueError):
        stats.optimal_level([], 0)


def test_one_sample_has_no_error_bar() -> None:
    est = stats.estimate([3.5])
    assert est.mean == 3.5 and est.n == 1 and not est.reliable
    assert np.isnan(est.error)


def test_two_samples() -> None:
    est = stats.estimate([1.0, 2.0])
    assert est.mean == 1.5 and est.n == 2 and est.block_size == 1
    assert est.error == pytest.approx(0.5)  # s/√2 with s² = 0.5
    assert not est.reliable


def test_constant_series_has_zero_error() -> None:
    est = stats.estimate(np.full(100, 0.1))
    assert est.mean == pytest.approx(0.1, abs=1e-15)
    assert est.error <= 1e-15


@pytest.mark.parametrize("weighted", [False, True], ids=["nan-data", "nan-weight"])
def test_nan_input_raises(weighted: bool) -> None:
    data = [1.0, 2.0, 3.0, 4.0] if weighted else [1.0, np.nan, 3.0, 4.0]
    weights = [1.0, np.nan, 1.0, 1.0] if weighted else None
    try:
        stats.estimate(data, weights)
    except ValueError:
        return
    raise AssertionError("no ValueError for NaN input")


def test_blocks_needed() -> None:
    assert stats.blocks_needed(0.002, 0.001, 100, safety=1.0) == 300
    assert stats.blocks_needed(0.001, 0.001, 100) == 0
    assert stats.blocks_needed(0.0005, 0.001, 100) == 0
    assert stats.blocks_needed(0.002, 0.001, 100, safety=1.2) == 380  # 100·(4·1.2 − 1)
    for error, n in [(0.0011, 7), (0.003, 50), (0.05, 1000)]:
        extra = stats.blocks_needed(error, 0.001, n, safety=1.0)
        assert error * np.sqrt(n / (n + extra)) <= 0.001 * (1 + 1e-12)  # σ ∝ 1/√N reaches the target
        assert error * np.sqrt(n / (n + extra - 1)) > 0.001  # ... and not with one sample fewer
    assert stats.blocks_needed(0.003, 0.001, 50, safety=1.3) > stats.blocks_needed(0.003, 0.001, 50)


def test_doctests_of_stats_module() -> None:
    """Same examples that ``pytest --doctest-modules src/autogenv2/stats.py`` runs."""
    result = doctest.testmod(stats, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3
    assert result.failed == 0


@pytest.mark.parametrize("kwargs", [{"weights": [1, -1, 1, 1]}, {"weights": [0, 0, 0, 0]}, {"warmup": -2}])
def test_bad_weights_and_warmup_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        stats.estimate([1.0, 2.0, 3.0, 4.0, 5.0][: len(kwargs.get("weights", [0] * 5))], **kwargs)


def test_weighted_variance_with_unit_weights_equals_unweighted() -> None:
    data = [1.0, 2.0, 3.0, 4.0]
    assert stats.estimate(data, [1.0] * 4).variance == pytest.approx(stats.estimate(data).variance)


@pytest.mark.parametrize("args", [(1.01, 1.0, 100, 0.9), (float("nan"), 1.0, 100, 1.1), (0.1, 0.0, 10, 1.1)])
def test_blocks_needed_rejects_nonsense(args: tuple) -> None:
    with pytest.raises(ValueError):
        stats.blocks_needed(*args)


# --- the windowed error used to plan sampling (stats.precision, stats.samples_to_target) -------

def ar1_exact_error(phi: float, n: int) -> float:
    """Exact (finite-n) standard error of the mean of n samples of :func:`ar1`."""
    if phi == 0.0:
        return 1.0 / np.sqrt(n)
    tau = (1 + phi) / (1 - phi) - 2 * phi * (1 - phi**n) / (n * (1 - phi) ** 2)
    return float(np.sqrt(tau / n))


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_windowed_error_is_unbiased_and_its_stated_noise_is_right(phi: float) -> None:
    """Over 200 seeds: mean of error/true within 2 %; its scatter within 0.6–1.5× the stated relative noise;
    and the windowed error scatters less than the reblocked one (why it is the one we plan with)."""
    n, true = 8000, ar1_exact_error(phi, 8000)
    window, reblocked, stated = [], [], []
    for seed in range(200):
        x = ar1(phi, n, seed=seed)
        prec = stats.precision(x)
        assert prec.reliable and prec.n == n
        window.append(prec.error / true)
        stated.append(prec.relative)
        reblocked.append(stats.estimate(x).error / true)
    window_arr = np.array(window)
    assert abs(window_arr.mean() - 1) < 0.02
    assert 0.6 < window_arr.std() / np.mean(stated) < 1.5
    assert window_arr.std() < np.std(reblocked)


def test_windowed_error_of_uncorrelated_data_is_the_standard_error() -> None:
    x = np.random.default_rng(3).normal(size=5000)
    prec = stats.precision(x)
    assert prec.error == pytest.approx(x.std(ddof=1) / np.sqrt(x.size), rel=0.05)
    assert prec.tau == pytest.approx(1.0, abs=0.1)


def test_windowed_error_weighted_equals_unweighted_for_equal_weights_and_drops_warmup() -> None:
    x = ar1(0.5, 3000, seed=4)
    equal = stats.precision(x, np.full(x.size, 2.5)).error
    assert equal == pytest.approx(stats.precision(x).error, rel=1e-12)
    shifted = np.concatenate([np.full(100, 50.0), x])
    assert stats.precision(shifted, warmup=100).error == pytest.approx(stats.precision(x).error, rel=1e-12)
    assert stats.precision(x[:3]).reliable is False


def test_samples_to_target_stops_only_within_the_95_percent_bound() -> None:
    x = ar1(0.5, 4000, seed=5)
    est, prec = stats.estimate(x), stats.precision(x)
    assert prec.upper() > prec.error > 0
    # a target between the published error and the upper bound: not done yet
    target = max(est.error, prec.error) * (1 + 0.5 * 1.645 * prec.relative)
    assert stats.samples_to_target(est, prec, target)[0] > 0
    assert stats.samples_to_target(est, prec, max(est.error, prec.upper()) * 1.0001) == (0, "")


def test_samples_to_target_plans_where_the_bound_meets_the_target() -> None:
    """At the planned N the expected upper bound σ√(n/N)(1 + z·rel·√(n/N)) equals the target."""
    x = ar1(0.5, 20000, seed=6)
    est, prec = stats.estimate(x), stats.precision(x)
    target = prec.error / 3
    total, why = stats.samples_to_target(est, prec, target)
    u = np.sqrt(x.size / total)
    assert prec.relative < stats.PILOT_NOISE and "95 % bound" in why
    assert prec.error * u * (1 + stats.Z_95 * prec.relative * u) == pytest.approx(target, rel=2e-3)
    assert total > 9 * x.size  # more than the naive (σ/target)²·n


def test_samples_to_target_noisy_pilot_aims_short_and_unreliable_doubles() -> None:
    x = ar1(0.5, 300, seed=7)
    est, prec = stats.estimate(x), stats.precision(x)
    assert prec.relative > stats.PILOT_NOISE
    target = prec.error / 2
    total, _ = stats.samples_to_target(est, prec, target)
    u = np.sqrt(x.size / total)
    assert prec.error * u * (1 + stats.Z_95 * prec.relative * u) > target  # short of the bound, by design
    short = ar1(0.99, 64, seed=8)  # τ ≈ 200 ≫ 64 samples: no plateau
    est, prec = stats.estimate(short), stats.precision(short)
    assert stats.samples_to_target(est, prec, est.error / 2)[0] == 128
    with pytest.raises(ValueError, match="target"):
        stats.samples_to_target(est, prec, 0.0)


def test_a_noisy_pilot_grows_at_most_noisy_growth_fold_a_sharp_estimate_goes_all_the_way() -> None:
    pilot = ar1(0.5, 300, seed=7)
    est, prec = stats.estimate(pilot), stats.precision(pilot)
    assert prec.relative > stats.PILOT_NOISE
    assert stats.samples_to_target(est, prec, prec.error / 10)[0] == int(stats.NOISY_GROWTH * pilot.size)
    sharp = ar1(0.5, 20000, seed=6)
    est, prec = stats.estimate(sharp), stats.precision(sharp)
    assert prec.relative < stats.PILOT_NOISE
    assert stats.samples_to_target(est, prec, prec.error / 10)[0] > 100 * sharp.size


def test_continuations_grow_by_at_least_min_growth() -> None:
    x = ar1(0.0, 10000, seed=9)
    est, prec = stats.estimate(x), stats.precision(x)
    total, _ = stats.samples_to_target(est, prec, max(est.error, prec.error) * 0.999)
    assert total >= int(10000 * (1 + stats.MIN_GROWTH)) + 1


def test_target_confidence_trades_blocks_for_certainty(tmp_path) -> None:
    """The Reader's target_confidence: 0.95 (default) keeps sampling a run whose estimated error is just
    within the target; 0.5 trusts the estimate and stops. Out-of-range values are a one-line plan error."""
    from autogenv2.codes.pyqmc.reader import MCReader
    from autogenv2.errors import PlanError
    from autogenv2.plan import load_plan
    from autogenv2.states import Verdict

    x = ar1(0.5, 4000, seed=11)
    est, prec = stats.estimate(x), stats.precision(x)
    assert est.reliable and prec.reliable
    target = max(est.error, prec.error) * 1.02
    sure = MCReader(target_error=target, warmup=0).judge(x, None, x.size, "x")
    plain = MCReader(target_error=target, target_confidence=0.5, warmup=0).judge(x, None, x.size, "x")
    assert sure.verdict is Verdict.incomplete and sure.more["nblocks"] > x.size
    assert plain.verdict is Verdict.complete
    assert plain.results["error_bound"] == pytest.approx(prec.error, rel=1e-12)
    assert sure.results["error_bound"] > plain.results["error_bound"]
    assert stats.confidence_z(0.95) == pytest.approx(stats.Z_95, rel=1e-12) and stats.confidence_z(0.5) == 0
    plan = tmp_path / "plan.toml"
    plan.write_text('[[steps]]\nname = "mc"\ncode = "toy"\nmethod = "mc"\ntarget_confidence = 1.0\n'
                    '[[jobs]]\nid = "a"\n')
    with pytest.raises(PlanError, match="target_confidence") as info:
        load_plan(plan)
    assert "\n" not in str(info.value)


# --- walker groups (stats.precision_walkers): VMC's independent walkers pooled -------------------

def ar1_columns(phi: float, n: int, groups: int, seed: int) -> np.ndarray:
    """``groups`` independent unit-variance AR(1) chains as the columns of an (n, groups) array."""
    return np.column_stack([ar1(phi, n, seed=1000 * seed + g) for g in range(groups)])


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_walker_error_is_unbiased_and_sqrt_g_surer_than_the_series_error(phi: float) -> None:
    """Over 150 seeds of 16 chains whose mean has a known error: the pooled error is within 2 % of it on
    average, scatters as it says (0.7–1.4× the stated noise), and about √16 = 4× less than the windowed
    error of the averaged series alone (at least 2.5× less)."""
    groups, n = 16, 2000
    true = ar1_exact_error(phi, n) / np.sqrt(groups)
    pooled, single, stated = [], [], []
    for seed in range(150):
        x = ar1_columns(phi, n, groups, seed)
        prec = stats.precision_walkers(x)
        assert prec.reliable
        pooled.append(prec.error / true)
        stated.append(prec.relative)
        single.append(stats.precision(x.mean(axis=1)).error / true)
    assert abs(np.mean(pooled) - 1) < 0.02
    assert 0.7 < np.std(pooled) / np.mean(stated) < 1.4
    assert np.std(single) / np.std(pooled) > 2.5


def test_walker_error_with_unequal_groups_weights_each_by_its_walkers() -> None:
    """Groups of 1 and 3 walkers (the mean over walkers weights them 1:3): unbiased against the exact
    error."""
    sizes = np.array([1.0, 3.0] * 8)
    ratios = []
    for seed in range(150):
        x = ar1_columns(0.5, 2000, sizes.size, seed) / np.sqrt(sizes)  # a group of k walkers: variance 1/k
        exact = ar1_exact_error(0.5, 2000) / np.sqrt(sizes.sum())
        ratios.append(stats.precision_walkers(x, sizes).error / exact)
    assert abs(np.mean(ratios) - 1) < 0.02
    equal = ar1_columns(0.5, 500, 4, 1)
    assert stats.precision_walkers(equal, [5, 5, 5, 5]).error == pytest.approx(
        stats.precision_walkers(equal).error, rel=1e-12), "equal groups: their size does not matter"


def test_walker_error_of_one_group_is_the_series_error_and_bad_shapes_are_named() -> None:
    x = ar1(0.5, 3000, seed=12)
    one = stats.precision_walkers(x[:, None])
    assert one.error == pytest.approx(stats.precision(x).error, rel=2 * one.relative)  # a longer window
    assert one.window >= stats.WALKER_WINDOW_C * one.tau
    shifted = np.vstack([np.full((50, 1), 9.0), x[:, None]])
    assert stats.precision_walkers(shifted, warmup=50).error == pytest.approx(one.error, rel=1e-12)
    assert stats.precision_walkers(x[:3, None]).reliable is False
    with pytest.raises(ValueError, match="shape"):
        stats.precision_walkers(x)
    with pytest.raises(ValueError, match="sizes"):
        stats.precision_walkers(x[:, None], [0.0])


def test_windowed_error_of_a_short_series_is_not_low() -> None:
    """Centring on the sample mean lowers the windowed sum by (2M+1)/N; stats divides that out, so
    100-sample white-noise series (M ≈ 5: 11 % low uncorrected, 0.870 measured) give a mean
    error²/true² within 3 % of 1 over 2,000 seeds."""
    ratios = [stats.precision(ar1(0.0, 100, seed=seed)).error ** 2 * 100 for seed in range(2000)]
    assert abs(np.mean(ratios) - 1) < 0.03


def test_walker_error_states_more_noise_for_heavy_tailed_data() -> None:
    """Local energies are heavy-tailed: with t(3) innovations (infinite kurtosis, like E_L near a node)
    the Gaussian formula understates the scatter of the pooled error by half (measured 0.048 against
    0.099); the stated noise adds the groups' own scatter (0.065) and so is at least 1.2× the formula."""
    phi, groups, n = 0.3, 16, 500
    ratios, stated, gaussian = [], [], []
    for seed in range(150):
        rng = np.random.default_rng(seed)
        eps = rng.standard_t(3, size=(n, groups)) / np.sqrt(3) * np.sqrt(1 - phi**2)
        prec = stats.precision_walkers(lfilter([1.0], [1.0, -phi], eps, axis=0))
        ratios.append(prec.error / np.sqrt((1 + phi) / (1 - phi) / (n * groups)))
        stated.append(prec.relative)
        gaussian.append(np.sqrt((2 * prec.window + 1) / (2 * n * groups)))
    assert abs(np.mean(ratios) - 1) < 0.03
    assert np.mean(stated) > 1.2 * np.mean(gaussian)
    assert np.mean(stated) > 0.55 * np.std(ratios)


def test_dmc_populations_always_take_their_scatter_which_covers_a_slow_mode(monkeypatch: pytest.MonkeyPatch
                                                                           ) -> None:
    """8 populations of 60 blocks: AR(1) φ = 0.5 plus a slow mode, an offset per population
    1.5× the blocks' whole-run error and constant over the run (the shape of PyQMC DMC's long memory). The
    window, pooled over the groups, cannot see it (2σ coverage far below 95 %); the populations' scatter
    (G − 1 = 7 dof) covers it at its stated rate, with the noise of 7 dof."""
    n, groups, seeds = 60, 8, 400
    z_window, z_populations, dof = [], [], []
    monkeypatch.setattr(stats, "SHORT_WINDOW", 10.0)  # VMC's groups: the window alone, never the scatter
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        x = ar1_columns(0.5, n, groups, seed) + rng.normal(0.0, 1.5 * ar1_exact_error(0.5, n), groups)
        window = stats.precision_walkers(x)
        populations = stats.precision_walkers(x, populations=True)
        assert populations.error == stats.between_groups_error(x.mean(axis=0), np.ones(groups))
        z_window.append(abs(x.mean()) / window.error)
        z_populations.append(abs(x.mean()) / populations.error)
        dof.append(1 / (2 * populations.relative**2))
    assert np.mean(np.array(z_window) <= 2) < 0.85, np.mean(np.array(z_window) <= 2)
    covered1, covered2 = np.mean(np.array(z_populations) <= 1), np.mean(np.array(z_populations) <= 2)
    assert 0.62 < covered1 < 0.76 and 0.91 < covered2 < 0.98, (covered1, covered2)
    assert np.median(dof) == pytest.approx(7.0)


def test_short_walker_group_runs_take_the_scatter_of_the_group_means(monkeypatch: pytest.MonkeyPatch) -> None:
    """15 blocks of 32 groups of AR(1) φ = 0.5 (τ = 3 blocks): the window reaches over half the series,
    where centring takes out what it should sum (real PyQMC VMC: 87 % at 2σ); the groups' run means
    keep all of it (stats._between_groups)."""
    def coverage() -> float:
        rng = np.random.default_rng(5)
        hits = []
        for _ in range(400):
            eps = rng.normal(size=(15, 32)) * np.sqrt(1 - 0.25)
            eps[0] = rng.normal(size=32)
            x = lfilter([1.0], [1.0, -0.5], eps, axis=0)
            prec = stats.precision_walkers(x)
            hits.append(abs(x.mean()) <= 2 * prec.error)
        return float(np.mean(hits))

    short = coverage()
    monkeypatch.setattr(stats, "SHORT_WINDOW", 10.0)  # the window alone, as before
    window = coverage()
    assert window < 0.9 and short >= 0.93, (window, short)
