"""Random rule trees (valid and invalid) sent to the preview and create endpoints: every answer
is a 200/201 or a 400 with the error envelope and a node path — never a 500."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segments.rules import FIELDS, OPERATORS

FIELD_NAMES = [*FIELDS, "shoe_size", "", "all", "FIELD"]
CHOICES = sorted({c for spec in FIELDS.values() for c in spec.choices})
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**20, max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False), st.integers(0, 120),
    st.sampled_from(CHOICES), st.sampled_from(["2026-01-01", "2026-02-30", "silver_haired",
                                               "上海", "SH01"]),
    st.text(max_size=20))
values = st.one_of(scalars, st.lists(scalars, max_size=4))
conditions = st.fixed_dictionaries(
    {"field": st.sampled_from(FIELD_NAMES), "op": st.sampled_from([*OPERATORS, "like", 1]),
     "value": values},
    optional={"extra": st.integers()})
rules = st.recursive(
    st.one_of(conditions, scalars, st.just({})),
    lambda children: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(children, max_size=4)),
        st.builds(lambda xs: {"any": xs}, st.lists(children, max_size=4)),
        st.builds(lambda x: {"not": x}, children),
        st.builds(lambda xs: {"all": xs, "any": xs}, st.lists(children, max_size=2))),
    max_leaves=25)
codes = itertools.count()


def _check(res, ok: int) -> None:
    assert res.status_code in (ok, 400, 409), (res.status_code, res.content[:500])
    if res.status_code != ok:
        error = res.json()["error"]
        assert {"code", "message", "fields"} <= error.keys()
        if error["code"] == "invalid_rule":
            assert error["node"].startswith("/")


@pytest.mark.django_db
@settings(max_examples=150)
@given(rule=rules)
def test_random_rules_never_cause_a_500(rule, api_as, ops_user):
    api = api_as(ops_user)
    _check(api.post("/api/v1/segments/preview/", {"rule": rule}, format="json"), 200)
    _check(api.post("/api/v1/segments/", {"code": f"fuzz{next(codes)}", "name": "Fuzz",
                                          "kind": "rule", "rule": rule}, format="json"), 201)
