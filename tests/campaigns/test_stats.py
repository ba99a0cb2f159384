"""campaigns.stats against independent computations: hand formulas (Wilson, Newcombe, the pooled
z-test, the hypergeometric distribution, chi-square with its closed forms, the normal-quantile
MDE) and a brute-force Boschloo p-value, so a wrong argument order or a swapped group fails."""

import math
from statistics import NormalDist
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import binom, fisher_exact, hypergeom

from campaigns import stats

KEYS = {"absolute", "ci_low", "ci_high", "p_value", "method"}


def groups(x1, n1, x2, n2, **kwargs):
    return stats.uplift(variant_conversions=x1, variant_members=n1, control_conversions=x2,
                        control_members=n2, **kwargs)


def wilson(x, n, alpha=0.05):
    z = NormalDist().inv_cdf(1 - alpha / 2)
    centre = (x + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(x * (n - x) / n + z * z / 4)
    return centre - half, centre + half


def newcombe(x1, n1, x2, n2, alpha=0.05):
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = wilson(x1, n1, alpha), wilson(x2, n2, alpha)
    return (p1 - p2 - math.hypot(p1 - l1, u2 - p2), p1 - p2 + math.hypot(u1 - p1, p2 - l2))


def fisher_one_sided_bound(x1, n1, x2, n2):
    table = [[x1, x2], [n1 - x1, n2 - x2]]
    less = fisher_exact(table, alternative="less").pvalue
    greater = fisher_exact(table, alternative="greater").pvalue
    return min(1.0, 2 * min(less, greater))


def brute_force_boschloo(x1, n1, x2, n2):
    """Twice the smaller one-sided p-value, each the supremum over a fine grid of the common
    conversion rate of the probability of the tables whose Fisher statistic is as extreme."""
    a = np.arange(n1 + 1).reshape(-1, 1)
    b = np.arange(n2 + 1).reshape(1, -1)
    total, conversions = n1 + n2, a + b
    less = hypergeom.cdf(a, total, conversions, n1)
    greater = hypergeom.cdf(b, total, conversions, n2)
    grid = np.linspace(0, 1, 4001).reshape(-1, 1)
    variant, control = binom.pmf(a.ravel(), n1, grid), binom.pmf(b.ravel(), n2, grid)
    sides = []
    for statistic in (less, greater):
        region = statistic <= statistic[x1, x2] * (1 + 1e-13)
        sides.append(np.einsum("ga,ab,gb->g", variant, region, control).max())
    return min(1.0, 2 * min(sides))


def two_sided_fisher_by_hand(x1, n1, x2, n2):
    conversions, total = x1 + x2, n1 + n2

    def probability(k):
        return math.comb(n1, k) * math.comb(n2, conversions - k) / math.comb(total, conversions)

    observed = probability(x1)
    support = range(max(0, conversions - n2), min(n1, conversions) + 1)
    return sum(p for p in map(probability, support) if p <= observed * (1 + 1e-7))


def test_rate_is_rounded_to_six_decimals_and_none_without_a_denominator():
    assert stats.rate(1, 3) == 0.333333
    assert stats.rate(2, 3) == 0.666667
    assert stats.rate(0, 150) == 0.0
    assert stats.rate(0, 0) is None
    assert stats.rate(5, 0) is None


def test_uplift_of_a_clear_effect_on_150_per_arm_is_significant():
    result = groups(30, 150, 15, 150)

    assert result["method"] == "boschloo+newcombe"
    assert result["absolute"] == 0.1
    assert result["p_value"] < 0.05
    assert result["p_value"] <= fisher_one_sided_bound(30, 150, 15, 150)
    assert result["p_value"] < fisher_exact([[30, 15], [120, 135]]).pvalue
    assert result["ci_low"] > 0
    assert result["ci_low"] == pytest.approx(newcombe(30, 150, 15, 150)[0], abs=1e-6)
    assert result["ci_high"] == pytest.approx(newcombe(30, 150, 15, 150)[1], abs=1e-6)


def test_uplift_of_a_small_effect_on_150_per_arm_is_not_significant():
    result = groups(20, 150, 15, 150)

    assert result["absolute"] == pytest.approx(5 / 150, abs=1e-6)
    assert result["p_value"] > 0.05
    assert result["ci_low"] < 0 < result["ci_high"]


def test_uplift_p_value_is_boschloos_supremum_over_the_common_rate():
    for counts in [(7, 12, 2, 10), (0, 10, 3, 6), (4, 9, 4, 9)]:
        assert groups(*counts)["p_value"] == pytest.approx(brute_force_boschloo(*counts),
                                                           abs=1e-4)


@pytest.mark.parametrize("counts", [(0, 10, 1, 6), (0, 10, 3, 6), (2, 10, 2, 6), (9, 12, 2, 8),
                                    (3, 40, 9, 35), (12, 150, 4, 150)])
def test_uplift_p_value_is_never_above_twice_the_smaller_one_sided_fisher_p_value(counts):
    assert groups(*counts)["p_value"] <= fisher_one_sided_bound(*counts) + 1e-6


def test_boschloo_two_sided_can_exceed_fishers_two_sided_p_value_on_unequal_groups():
    """Boschloo doubles the smaller one-sided p-value; Fisher's two-sided p-value sums the
    tables no likelier than the observed one. Only the doubled one-sided bound holds."""
    result = groups(0, 10, 1, 6)

    assert result["p_value"] > fisher_exact([[0, 1], [10, 5]]).pvalue == 0.375


@pytest.mark.parametrize("counts", [(7, 20, 0, 9), (150, 150, 149, 150),
                                    (1200, 10_000, 1100, 10_000)])
def test_uplift_interval_is_newcombes_hybrid_score_interval_from_two_wilson_intervals(counts):
    result = groups(*counts)
    low, high = newcombe(*counts)

    assert result["ci_low"] == pytest.approx(low, abs=1e-6)
    assert result["ci_high"] == pytest.approx(high, abs=1e-6)


def test_uplift_interval_widens_as_alpha_shrinks():
    wide = groups(12, 60, 4, 60, alpha=0.01)
    narrow = groups(12, 60, 4, 60, alpha=0.05)

    assert wide["ci_low"] < narrow["ci_low"] < narrow["ci_high"] < wide["ci_high"]
    assert wide["ci_low"] == pytest.approx(newcombe(12, 60, 4, 60, alpha=0.01)[0], abs=1e-6)
    assert wide["p_value"] == narrow["p_value"]


def test_uplift_on_large_lists_uses_the_pooled_two_proportion_z_test():
    result = groups(1200, 10_000, 1100, 10_000)
    pooled = 2300 / 20_000
    z = (0.12 - 0.11) / math.sqrt(pooled * (1 - pooled) * (2 / 10_000))

    assert result["method"] == "z+newcombe"
    assert result["absolute"] == 0.01
    assert result["p_value"] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), abs=1e-6)
    assert result["p_value"] == pytest.approx(0.026658, abs=1e-6)


def test_uplift_of_rare_conversions_beyond_boschloos_budget_uses_fishers_exact_test():
    result = groups(1, 3000, 6, 3000)

    assert result["method"] == "fisher+newcombe"
    assert result["p_value"] == pytest.approx(two_sided_fisher_by_hand(1, 3000, 6, 3000),
                                              abs=1e-6)
    assert result["p_value"] > 0.05


def test_uplift_of_a_small_holdout_of_a_large_list_uses_an_exact_test():
    assert groups(40, 2000, 1, 100)["method"] == "fisher+newcombe"


@pytest.mark.parametrize(("n1", "n2", "test"), [
    (200, 200, "boschloo"), (205, 205, "z"), (100, 400, "boschloo"), (66, 600, "boschloo"),
    (4, 601, "fisher"), (5, 5, "boschloo"), (1, 1, "boschloo"),
])
def test_uplift_uses_boschloo_only_within_its_time_budget(n1, n2, test, monkeypatch):
    """The choice only: a stand-in Boschloo keeps the test fast (200 + 200 takes 0.3 s)."""
    monkeypatch.setattr(stats.stats, "boschloo_exact",
                        lambda table, alternative: SimpleNamespace(pvalue=0.5))

    assert groups(n1 // 2, n1, n2 // 2, n2)["method"] == f"{test}+newcombe"


@pytest.mark.parametrize(("n1", "n2"), [(0, 150), (150, 0), (0, 0)])
def test_uplift_without_members_on_either_side_is_insufficient(n1, n2):
    assert groups(0, n1, 0, n2) == {"absolute": None, "ci_low": None, "ci_high": None,
                                    "p_value": None, "method": "insufficient"}


def test_uplift_with_no_conversions_on_either_side_is_zero_with_p_one():
    result = groups(0, 150, 0, 150)
    upper = wilson(0, 150)[1]

    assert result["absolute"] == 0.0
    assert result["p_value"] == 1.0
    assert result["ci_low"] == pytest.approx(-upper, abs=1e-6)
    assert result["ci_high"] == pytest.approx(upper, abs=1e-6)


def test_uplift_when_everyone_converted_on_both_sides_is_zero_with_p_one():
    result = groups(150, 150, 150, 150)

    assert result["absolute"] == 0.0
    assert result["p_value"] == 1.0
    assert result["ci_low"] == pytest.approx(-wilson(0, 150)[1], abs=1e-6)


def test_uplift_of_nobody_against_everyone_is_minus_one_and_significant():
    result = groups(0, 150, 150, 150)

    assert result["absolute"] == -1.0
    assert result["ci_low"] == -1.0
    assert result["ci_high"] == pytest.approx(newcombe(0, 150, 150, 150)[1], abs=1e-6)
    assert result["ci_high"] < -0.96
    assert result["p_value"] == 0.0


@pytest.mark.parametrize(("counts", "method", "p_value"), [
    ((0, 5000, 0, 5000), "fisher+newcombe", 1.0),
    ((5000, 5000, 5000, 5000), "fisher+newcombe", 1.0),
    ((0, 5000, 5000, 5000), "z+newcombe", 0.0),
])
def test_uplift_of_large_lists_with_nothing_or_everything_converted(counts, method, p_value):
    result = groups(*counts)

    assert (result["method"], result["p_value"]) == (method, p_value)


def test_uplift_of_every_table_of_tiny_groups_is_well_formed():
    for n1, n2 in [(1, 1), (3, 2)]:
        for x1 in range(n1 + 1):
            for x2 in range(n2 + 1):
                result = groups(x1, n1, x2, n2)
                assert set(result) == KEYS
                assert 0 <= result["p_value"] <= 1
                assert -1 <= result["ci_low"] <= result["absolute"] <= result["ci_high"] <= 1


@pytest.mark.parametrize("counts", [(151, 150, 0, 150), (0, 150, -1, 150), (0, -1, 0, 150)])
def test_uplift_refuses_impossible_counts(counts):
    with pytest.raises(ValueError):
        groups(*counts)


def test_srm_flags_a_55_45_split_of_10000():
    result = stats.srm(observed={"A": 5500, "control": 4500},
                       expected_shares={"A": 50, "control": 50})

    assert result == {"p_value": 0.0, "flagged": True}


def test_srm_does_not_flag_a_503_497_split_of_10000():
    result = stats.srm(observed={"A": 5030, "control": 4970},
                       expected_shares={"A": 50, "control": 50})
    chi2 = 2 * 30**2 / 5000

    assert result["flagged"] is False
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(chi2 / 2)), abs=1e-6)


def test_srm_of_a_ten_percent_holdout_of_an_rm_list():
    fine = stats.srm(observed={"A": 1350, "control": 150},
                     expected_shares={"A": 90, "control": 10})
    short = stats.srm(observed={"A": 1400, "control": 100},
                      expected_shares={"A": 90, "control": 10})
    chi2 = 50**2 / 1350 + 50**2 / 150

    assert fine == {"p_value": 1.0, "flagged": False}
    assert short["flagged"] is True
    assert short["p_value"] == pytest.approx(math.erfc(math.sqrt(chi2 / 2)), abs=1e-6)


def test_srm_reads_shares_as_percents_or_fractions():
    observed = {"A": 460, "B": 430, "control": 110}

    assert stats.srm(observed=observed, expected_shares={"A": 45, "B": 45, "control": 10}) == \
        stats.srm(observed=observed, expected_shares={"A": 0.45, "B": 0.45, "control": 0.1})


def test_srm_of_three_arms_has_two_degrees_of_freedom():
    result = stats.srm(observed={"A": 420, "B": 480, "control": 100},
                       expected_shares={"A": 45, "B": 45, "control": 10})
    chi2 = 30**2 / 450 + 30**2 / 450 + 0

    assert result["p_value"] == pytest.approx(math.exp(-chi2 / 2), abs=1e-6)
    assert result["flagged"] is False


def test_srm_threshold_is_the_callers():
    observed, shares = {"A": 5100, "control": 4900}, {"A": 50, "control": 50}

    assert stats.srm(observed=observed, expected_shares=shares)["flagged"] is False
    assert stats.srm(observed=observed, expected_shares=shares, threshold=0.05)["flagged"]


def test_srm_counts_an_arm_missing_from_the_observed_sizes_as_empty():
    result = stats.srm(observed={"A": 1000}, expected_shares={"A": 50, "control": 50})

    assert result == {"p_value": 0.0, "flagged": True}


def test_srm_flags_members_in_an_arm_the_design_has_no_share_for():
    result = stats.srm(observed={"A": 500, "B": 500, "C": 3},
                       expected_shares={"A": 50, "B": 50})

    assert result == {"p_value": 0.0, "flagged": True}


@pytest.mark.parametrize(("observed", "shares"), [
    ({"A": 1000}, {"A": 100}),
    ({}, {}),
    ({"A": 0, "control": 0}, {"A": 90, "control": 10}),
    ({"A": 1000, "control": 0}, {"A": 100, "control": 0}),
    ({"A": 10, "control": 10}, {"A": 0, "control": 0}),
])
def test_srm_without_two_arms_with_members_to_compare_is_not_tested(observed, shares):
    assert stats.srm(observed=observed, expected_shares=shares) == {"p_value": None,
                                                                    "flagged": False}


def normal_quantile_mde(treated, control, p, alpha=0.05, power=0.8):
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    h = z * math.sqrt(1 / treated + 1 / control)
    return math.sin(math.asin(math.sqrt(p)) + h / 2) ** 2 - p


def test_mde_of_150_per_arm_at_ten_percent_matches_the_normal_quantile_formula():
    result = stats.mde(members=300, holdout_pct=50, baseline_rate=0.1)

    assert result == pytest.approx(normal_quantile_mde(150, 150, 0.1), abs=1e-3)
    assert result == pytest.approx(0.1161, abs=1e-3)


def test_mde_of_a_ten_percent_holdout_matches_the_normal_quantile_formula():
    result = stats.mde(members=2000, holdout_pct=10, baseline_rate=0.05, alpha=0.1, power=0.9)

    assert result == pytest.approx(normal_quantile_mde(1800, 200, 0.05, 0.1, 0.9), abs=1e-3)


def test_mde_shrinks_as_members_grow():
    sizes = [stats.mde(members=n, holdout_pct=10, baseline_rate=0.05)
             for n in (300, 1000, 5000, 50_000)]

    assert sizes == sorted(sizes, reverse=True)
    assert len(set(sizes)) == len(sizes)


def test_mde_grows_as_the_holdout_shrinks_and_is_smallest_at_half():
    sizes = [stats.mde(members=1500, holdout_pct=pct, baseline_rate=0.05)
             for pct in (50, 30, 20, 10, 5, 1)]

    assert sizes == sorted(sizes)
    assert len(set(sizes)) == len(sizes)
    assert stats.mde(members=1500, holdout_pct=90, baseline_rate=0.05) == pytest.approx(
        sizes[3], abs=1e-6)


def test_mde_is_capped_at_the_room_above_the_baseline():
    assert stats.mde(members=4, holdout_pct=50, baseline_rate=0.9) == 0.1


@pytest.mark.parametrize(("members", "holdout_pct", "baseline_rate"), [
    (1000, 0, 0.05), (1000, 100, 0.05), (0, 10, 0.05), (4, 10, 0.05), (1000, 10, 0.0),
    (1000, 10, 1.0), (1000, 10, -0.1),
])
def test_mde_without_two_groups_or_a_baseline_strictly_between_0_and_1_is_none(
        members, holdout_pct, baseline_rate):
    assert stats.mde(members=members, holdout_pct=holdout_pct, baseline_rate=baseline_rate) \
        is None


@pytest.mark.parametrize("call", [
    lambda: groups(1, 10, 1, 10, alpha=0),
    lambda: stats.mde(members=300, holdout_pct=10, baseline_rate=0.05, power=0.05),
    lambda: stats.mde(members=300, holdout_pct=10, baseline_rate=0.05, alpha=1),
    lambda: stats.srm(observed={"A": -1, "control": 5}, expected_shares={"A": 1, "control": 1}),
])
def test_parameters_no_test_can_honour_are_refused(call):
    with pytest.raises(ValueError):
        call()
