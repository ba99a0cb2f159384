"""Band edges, as properties: a value at a bound is in the upper band, just below in the lower."""

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from clients.scoring.engine import band, tiers

V1_BOUNDS = {
    "amount": [10000, 50000, 100000, 500000, 1000000],
    "frequency": [2, 5, 10, 50, 100],
    "benefit": [10000, 30000, 100000, 300000, 500000],
}
dimension = st.sampled_from(sorted(V1_BOUNDS))
edge = st.integers(min_value=0, max_value=4)

valid_bounds = st.lists(
    st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False),
    min_size=5, max_size=5, unique=True).map(sorted)


@given(dimension, edge)
def test_a_value_exactly_at_a_v1_bound_falls_in_the_upper_band(name, i):
    bounds = V1_BOUNDS[name]
    assert band(np.array([bounds[i]]), bounds)[0] == i + 2


@given(dimension, edge)
def test_a_value_just_below_a_v1_bound_falls_in_the_lower_band(name, i):
    bounds = V1_BOUNDS[name]
    just_below = math.nextafter(bounds[i], -math.inf)
    cent_below = bounds[i] - 0.01
    assert band(np.array([just_below, cent_below]), bounds).tolist() == [i + 1, i + 1]


@given(dimension, st.floats(min_value=0, max_value=1e13, allow_nan=False))
def test_every_value_gets_the_band_whose_range_holds_it(name, value):
    bounds = V1_BOUNDS[name]
    score = int(band(np.array([value]), bounds)[0])
    lower = 0 if score == 1 else bounds[score - 2]
    upper = math.inf if score == 6 else bounds[score - 1]
    assert 1 <= score <= 6 and lower <= value < upper


@given(valid_bounds, edge)
def test_bound_edges_hold_for_any_valid_scheme(bounds, i):
    at = bounds[i]
    below = math.nextafter(at, -math.inf)
    scores = band(np.array([at, below]), bounds).tolist()
    assert scores == [i + 2, i + 1]


@given(valid_bounds, st.lists(st.floats(min_value=0, max_value=1e13), min_size=1, max_size=50))
def test_bands_never_decrease_as_values_grow(bounds, values):
    ordered = np.sort(np.array(values))
    scores = band(ordered, bounds)
    assert np.all(np.diff(scores) >= 0) and scores.min() >= 1 and scores.max() <= 6


@given(st.permutations(["guiding", "development", "potential", "long_tail"]),
       st.integers(1, 6), st.integers(1, 6), st.one_of(st.none(), st.integers(0, 400)))
def test_the_first_matching_rule_of_the_precedence_decides_the_tier(precedence, a, f, recency):
    got = tiers(amount_score=np.array([a]), frequency_score=np.array([f]),
                recency_days=np.array([np.nan if recency is None else recency], dtype=float),
                high_score=4, recent_days=30, precedence=list(precedence))[0]
    rules = {"guiding": f >= 4, "development": a >= 4,
             "potential": recency is not None and recency <= 30, "long_tail": True}
    assert got == next(rule for rule in precedence if rules[rule])
