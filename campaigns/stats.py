"""The statistics of a campaign's results against its holdout (control) group.

Small lists are the norm (an RM call list may have 150 clients per arm), so a raw rate never
declares a winner: uplift comes with an exact p-value and a confidence interval for the
difference of the two rates, the minimum detectable effect is shown before launch, and a
sample-ratio mismatch (arms whose sizes are not what the design promised) is flagged, because
then the arms are not comparable whatever the rates say.

Pure functions of counts: no models, no database. Floats are rounded to 6 decimals; a value
that cannot be computed is None rather than nan, so templates and JSON never see nan.

Tests of the difference (`uplift`), by list size:
- Boschloo's exact unconditional test while it fits its time budget: the exact test for small
  lists, never larger than twice the smaller one-sided Fisher p-value, and unlike Fisher's
  it does not condition on the total number of conversions, which a campaign does not fix.
  Its cost grows with the number of possible 2x2 tables, (n1 + 1) * (n2 + 1), and with the
  larger group; the budget below keeps one call under about 0.45 s (scipy 1.17 on two
  cores, best of three: 200 + 200 members 0.28 s, 100 + 400 0.35 s, 67 + 600 0.40 s; beyond
  it 50 + 800 0.47 s, 250 + 250 0.51 s, 300 + 300 0.9 s, 20 + 2,000 1.0 s,
  1,000 + 1,000 20 s).
- Beyond it, Fisher's exact test while an expected cell count is below 5 (rare conversions,
  or a tiny holdout), where the normal approximation is not to be trusted; Fisher's exact
  test stays fast at any size.
- Otherwise the pooled two-proportion z-test.
The interval is always Newcombe's hybrid score interval (from the two Wilson intervals): well
behaved for small groups and for zero or full counts, where the score interval's solver fails.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

DECIMALS = 6
BOSCHLOO_MAX_TABLES = 41_000
BOSCHLOO_MAX_GROUP = 600
Z_MIN_EXPECTED = 5
SRM_THRESHOLD = 0.001
INSUFFICIENT = {"absolute": None, "ci_low": None, "ci_high": None, "p_value": None,
                "method": "insufficient"}


def rate(numerator: int, denominator: int) -> float | None:
    """A rate for display; None without a denominator. Never compare two of these to pick a
    winner: that is what `uplift` is for."""
    if denominator == 0:
        return None
    return _rounded(numerator / denominator)


def uplift(*, variant_conversions: int, variant_members: int, control_conversions: int,
           control_members: int, alpha: float = 0.05) -> dict:
    """The variant's rate minus the control's, its (1 - alpha) Newcombe interval and a
    two-sided p-value, with `method` naming the test and the interval ("boschloo+newcombe",
    "fisher+newcombe", "z+newcombe"); "insufficient" when either group is empty.

    `alpha` sets the interval's level only; the p-value is reported as it is. Impossible
    counts (negative, more conversions than members) are a caller's bug and raise ValueError.
    """
    _check_group(variant_conversions, variant_members)
    _check_group(control_conversions, control_members)
    _check_probability("alpha", alpha)
    if variant_members == 0 or control_members == 0:
        return dict(INSUFFICIENT)
    counts = (variant_conversions, variant_members, control_conversions, control_members)
    test, p_value = _difference_test(*counts)
    ci_low, ci_high = _newcombe_interval(*counts, alpha=alpha)
    difference = variant_conversions / variant_members - control_conversions / control_members
    return {
        "absolute": _rounded(difference),
        "ci_low": _rounded(ci_low),
        "ci_high": _rounded(ci_high),
        "p_value": _rounded(p_value),
        "method": f"{test}+newcombe",
    }


def srm(*, observed: dict[str, int], expected_shares: dict[str, float],
        threshold: float = SRM_THRESHOLD) -> dict:
    """Sample-ratio mismatch: a chi-square goodness-of-fit test of the arms' sizes against the
    design's shares. A mismatch means the assignment or the tracking is broken, so the arms
    are not comparable; 0.001 is the industry's threshold because the test runs on every
    campaign and a false alarm costs a campaign.

    Shares are relative weights (percents summing to 100 and fractions summing to 1 give the
    same answer). An arm missing from `observed` has no members; clients in an arm the design
    gives no share to are a mismatch (p 0). Without two arms the design gives a share to, or
    without members, there is no test: p_value None, not flagged.
    """
    arms = sorted(set(observed) | set(expected_shares))
    counts = [observed.get(arm, 0) for arm in arms]
    shares = [expected_shares.get(arm, 0) for arm in arms]
    if any(count < 0 for count in counts) or any(share < 0 for share in shares):
        raise ValueError("arm sizes and shares cannot be negative")
    sized = [(count, share) for count, share in zip(counts, shares, strict=True) if share > 0]
    if len(sized) < 2 or sum(counts) == 0:
        return {"p_value": None, "flagged": False}
    if any(count > 0 and share == 0 for count, share in zip(counts, shares, strict=True)):
        return {"p_value": 0.0, "flagged": True}
    p_value = _goodness_of_fit([count for count, _ in sized], [share for _, share in sized])
    return {"p_value": _rounded(p_value), "flagged": bool(p_value < threshold)}


def mde(*, members: int, holdout_pct: float, baseline_rate: float, alpha: float = 0.05,
        power: float = 0.8) -> float | None:
    """The minimum detectable effect before launch: the smallest rise of the conversion rate
    above `baseline_rate` that a two-sided test at `alpha` detects with probability `power`,
    when `members` clients are split into a holdout of `holdout_pct` percent (rounded to whole
    clients) and the treated rest. Shown so that nobody launches a list too small to tell.

    Solved with statsmodels' NormalIndPower on Cohen's h (arcsine-transformed proportions,
    whose variance does not depend on the rate), then turned back into a difference of
    proportions: p2 = sin(asin(sqrt(p)) + h / 2) ** 2, mde = p2 - p, at most 1 - p. None when
    either group would be empty or the baseline is not strictly between 0 and 1.
    """
    _check_probability("alpha", alpha)
    _check_probability("power", power)
    if power <= alpha:
        raise ValueError(f"power {power} must exceed alpha {alpha}: no effect already has it")
    control = _holdout_size(members, holdout_pct)
    treated = members - control
    if control <= 0 or treated <= 0 or not 0 < baseline_rate < 1:
        return None
    h = NormalIndPower().solve_power(effect_size=None, nobs1=treated, alpha=alpha, power=power,
                                     ratio=control / treated, alternative="two-sided")
    return _rounded(_difference_above(baseline_rate, h))


def _difference_test(x1: int, n1: int, x2: int, n2: int) -> tuple[str, float]:
    table = [[x1, x2], [n1 - x1, n2 - x2]]
    if (n1 + 1) * (n2 + 1) <= BOSCHLOO_MAX_TABLES and max(n1, n2) <= BOSCHLOO_MAX_GROUP:
        return "boschloo", stats.boschloo_exact(table, alternative="two-sided").pvalue
    if _smallest_expected_cell(x1, n1, x2, n2) < Z_MIN_EXPECTED:
        return "fisher", stats.fisher_exact(table, alternative="two-sided").pvalue
    return "z", proportions_ztest([x1, x2], [n1, n2], alternative="two-sided")[1]


def _smallest_expected_cell(x1: int, n1: int, x2: int, n2: int) -> float:
    pooled = (x1 + x2) / (n1 + n2)
    return min(n1, n2) * min(pooled, 1 - pooled)


def _newcombe_interval(x1: int, n1: int, x2: int, n2: int, *,
                       alpha: float) -> tuple[float, float]:
    # statsmodels also computes a ratio and an odds ratio it does not use here; with a zero
    # count they divide by zero, which is harmless for the difference.
    with np.errstate(divide="ignore", invalid="ignore"):
        return confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff",
                                          alpha=alpha)


def _goodness_of_fit(counts: list[int], shares: list[float]) -> float:
    total, share_total = sum(counts), float(sum(shares))
    expected = [total * float(share) / share_total for share in shares]
    return stats.chisquare(counts, expected).pvalue


def _holdout_size(members: int, holdout_pct: float) -> int:
    return math.floor(members * float(holdout_pct) / 100 + 0.5)


def _difference_above(p: float, h: float) -> float:
    angle = math.asin(math.sqrt(p)) + h / 2
    if not math.isfinite(angle):
        return math.nan
    if angle >= math.pi / 2:
        return 1 - p
    return math.sin(angle) ** 2 - p


def _check_group(conversions: int, members: int) -> None:
    if members < 0 or conversions < 0 or conversions > members:
        raise ValueError(f"impossible group: {conversions} conversions of {members} members")


def _check_probability(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{name} must be strictly between 0 and 1, not {value}")


def _rounded(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), DECIMALS)
