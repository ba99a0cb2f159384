"""The rule language of segments (API.md): validate a rule tree, compile it to a Q over Client.

A rule is `{"all": [...]}`, `{"any": [...]}`, `{"not": node}` or a condition
`{"field", "op", "value"}`. Fields are a whitelist (`FIELDS`): each declares its type, the
operators it accepts and, for choices, the allowed values (taken from the models' TextChoices).
A rule only ever becomes a Django `Q`; no text of a rule reaches SQL except as a bound parameter.

Semantics:
- Comparisons (eq, ne, lt, ..., in, not_in) match clients that *have* a value: `ne "F"` does not
  match a client whose gender is unknown; `is_null` tests for the missing value (a blank string
  for text and choice fields). `{"not": ...}` is the complement of its node.
- `age` and `birth_year` are computed against today (Asia/Shanghai): `age between [60, 69]`
  is a range of birth dates, so it uses an index and needs no function per row.
- `holds_product_type` / `holds_product`: the client holds it in their own latest holdings
  snapshot (the client's greatest `as_of`); `ne` / `not_in` mean "does not hold".
- `days_since_last_purchase` comes from `Client.last_purchase_on`; it is empty (`is_null`)
  when the client never bought.
- Score fields use the client's current score (CurrentScore); a client never scored has none.
- `segment`: a member of another segment (its materialised membership); `ne` / `not_in` mean
  "not a member". References to unknown segments and cycles are refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef, Q, Subquery
from django.db.models.lookups import IsNull
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from clients.models import (
    ClientRiskLevel,
    ClientStatus,
    Gender,
    Holding,
    Industry,
    InvestorType,
    Occupation,
    ProductType,
    ServiceLevel,
    service_level_q,
)
from clients.scoring.models import Tier
from core.errors import ApplicationError

MAX_DEPTH = 10
MAX_NODES = 200
MAX_LIST = 1000
MAX_STRING = 100
GROUPS = ("all", "any", "not")
OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "is_null",
             "contains")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

ORDERED = ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "is_null")
CHOICE_OPS = ("eq", "ne", "in", "not_in", "is_null")
MEMBER_OPS = ("eq", "ne", "in", "not_in")


class RuleError(ApplicationError):
    """An invalid rule; `node` is the path of the offending node, e.g. "/all/2/value"."""

    def __init__(self, message: str, *, node: str = ""):
        super().__init__(message, code="invalid_rule", fields={"rule": [str(message)]})
        self.node = node or "/"


@dataclass(frozen=True)
class FieldSpec:
    """One field of the rule language: its value type, operators and (for choices) values."""

    name: str
    type: str  # integer | number | string | choice | boolean | date
    ops: tuple[str, ...]
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    label: str = ""
    extra: dict = field(default_factory=dict)


def _spec(name: str, type_: str, ops: tuple[str, ...], *, choices=None, minimum=None,
          maximum=None, label: str = "") -> FieldSpec:
    return FieldSpec(name=name, type=type_, ops=ops,
                     choices=tuple(choices.values) if choices is not None else (),
                     minimum=minimum, maximum=maximum, label=label)


# The whitelist. Labels are English msgids (translated where shown).
FIELDS: dict[str, FieldSpec] = {s.name: s for s in (
    _spec("age", "integer", ORDERED, minimum=0, maximum=150, label="Age"),
    _spec("birth_year", "integer", ORDERED, minimum=1900, maximum=2100, label="Birth year"),
    _spec("gender", "choice", CHOICE_OPS, choices=Gender, label="Gender"),
    _spec("occupation", "choice", CHOICE_OPS, choices=Occupation, label="Occupation"),
    _spec("industry", "choice", CHOICE_OPS, choices=Industry, label="Industry"),
    _spec("has_children", "boolean", ("eq", "ne", "is_null"), label="Has children"),
    _spec("city", "string", ("eq", "ne", "in", "not_in", "is_null", "contains"), label="City"),
    _spec("branch", "string", ("eq", "ne", "in", "not_in", "is_null"), label="Branch (code)"),
    _spec("rm", "string", ("eq", "ne", "in", "not_in", "is_null"), label="RM (username)"),
    _spec("risk_level", "choice", ORDERED[:6] + CHOICE_OPS[2:], choices=ClientRiskLevel,
          label="Risk level"),
    _spec("investor_type", "choice", ("eq", "ne", "in", "not_in"), choices=InvestorType,
          label="Investor type"),
    _spec("status", "choice", ("eq", "ne", "in", "not_in"), choices=ClientStatus,
          label="Status"),
    _spec("opened_on", "date", ORDERED[:7] + ("is_null",), label="Opened on"),
    _spec("aum", "number", ORDERED[:7], minimum=0, maximum=10**15, label="AUM (CNY)"),
    _spec("service_level", "choice", ("eq", "ne", "in", "not_in"), choices=ServiceLevel,
          label="Service level"),
    _spec("tier", "choice", CHOICE_OPS, choices=Tier, label="Value tier"),
    _spec("total_score", "integer", ORDERED, minimum=0, maximum=18, label="Total score"),
    _spec("amount_score", "integer", ORDERED, minimum=0, maximum=6, label="Amount score"),
    _spec("frequency_score", "integer", ORDERED, minimum=0, maximum=6, label="Frequency score"),
    _spec("benefit_score", "integer", ORDERED, minimum=0, maximum=6, label="Benefit score"),
    _spec("holds_product_type", "choice", MEMBER_OPS, choices=ProductType,
          label="Holds a product of type"),
    _spec("holds_product", "string", MEMBER_OPS, label="Holds the product (code)"),
    _spec("days_since_last_purchase", "integer", ORDERED, minimum=0, maximum=100_000,
          label="Days since the last purchase"),
    _spec("segment", "string", MEMBER_OPS, label="Member of the segment (code)"),
    _spec("consent_email", "boolean", ("eq", "ne"), label="Email marketing consent"),
    # Scenario fields (API.md "Scenario data"); days are calendar days unless said otherwise.
    _spec("days_since_opened", "integer", ORDERED, minimum=0, maximum=100_000,
          label="Days since the account was opened"),
    _spec("funded", "boolean", ("eq", "ne"), label="Funded (has made a deposit)"),
    _spec("days_to_risk_expiry", "integer", ORDERED, minimum=-100_000, maximum=100_000,
          label="Days to the risk assessment's expiry (negative: expired)"),
    _spec("days_to_birthday", "integer", ORDERED[:-1], minimum=0, maximum=365,
          label="Days to the birthday"),
    _spec("inflow_5d", "number", ("lt", "lte", "gt", "gte", "between"), minimum=0,
          maximum=10**15, label="Deposits in the last 5 trading days (CNY)"),
    _spec("inflow_5d_pct_aum", "number", ("gt", "gte"), minimum=0, maximum=1_000_000,
          label="Deposits in the last 5 trading days (percentage of AUM)"),
    _spec("days_to_maturity", "integer", ("eq", "ne", "lt", "lte", "gt", "gte", "between",
                                          "is_null"), minimum=0, maximum=10_000,
          label="Trading days to the nearest maturing holding"),
    _spec("purchases_total", "integer", ("eq", "ne", "lt", "lte", "gt", "gte", "between"),
          minimum=0, maximum=10_000_000, label="Number of purchases (all time)"),
)}


def rule_fields() -> list[dict[str, Any]]:
    """The whitelist as data, for the builder page and the API docs."""
    return [{"field": s.name, "type": s.type, "ops": list(s.ops), "choices": list(s.choices),
             "minimum": s.minimum, "maximum": s.maximum, "label": _(s.label)}
            for s in FIELDS.values()]


# --- validation ------------------------------------------------------------------------------

class _Walk:
    def __init__(self) -> None:
        self.nodes = 0
        self.segment_refs: list[tuple[str, str]] = []  # (code, node path of the value)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    if value is None:
        return "null"
    return type(value).__name__


def _check_scalar(spec: FieldSpec, value: Any, path: str) -> None:
    """One value of `spec`'s type, or RuleError at `path`."""
    if value is None:
        raise RuleError(_("%(field)s needs a value.") % {"field": _label(spec)}, node=path)
    got = _type_name(value)
    if spec.type in ("integer", "number"):
        if got != "number" or (spec.type == "integer" and not (
                isinstance(value, int) or (isinstance(value, float) and value.is_integer()))):
            kind = _("a whole number") if spec.type == "integer" else _("a number")
            raise RuleError(_("%(field)s needs %(kind)s here.")
                            % {"field": _label(spec), "kind": kind}, node=path)
        if isinstance(value, float) and not math.isfinite(value):
            raise RuleError(_("%(field)s needs a finite number.") % {"field": _label(spec)},
                            node=path)
        if spec.minimum is not None and value < spec.minimum:
            raise RuleError(_("%(field)s must be at least %(lo)s.")
                            % {"field": _label(spec), "lo": _num(spec.minimum)}, node=path)
        if spec.maximum is not None and value > spec.maximum:
            raise RuleError(_("%(field)s must be at most %(hi)s.")
                            % {"field": _label(spec), "hi": _num(spec.maximum)}, node=path)
        return
    if spec.type == "boolean":
        if got != "boolean":
            raise RuleError(_("%(field)s needs true or false, not %(got)s.")
                            % {"field": _label(spec), "got": got}, node=path)
        return
    if got != "string":
        raise RuleError(_("%(field)s needs a text value, not %(got)s.")
                        % {"field": _label(spec), "got": got}, node=path)
    if spec.type == "date":
        if not _DATE.match(value):
            raise RuleError(_("%(field)s needs a date written YYYY-MM-DD; got %(value)r.")
                            % {"field": _label(spec), "value": value[:40]}, node=path)
        try:
            date.fromisoformat(value)
        except ValueError:
            raise RuleError(_("%(value)s is not a valid date.") % {"value": value},
                            node=path) from None
        return
    if spec.type == "choice":
        if value not in spec.choices:
            raise RuleError(_("%(value)r is not a value of %(field)s; use one of: %(choices)s.")
                            % {"value": value[:40], "field": _label(spec),
                               "choices": ", ".join(spec.choices)}, node=path)
        return
    if not value.strip() or len(value) > MAX_STRING:
        raise RuleError(_("%(field)s needs a non-empty text of at most %(n)d characters.")
                        % {"field": _label(spec), "n": MAX_STRING}, node=path)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise RuleError(_("Control characters are not allowed in values."), node=path)


def _num(value: Any) -> str:
    """A bound as people read it: 1,000,000,000,000,000, not 1000000000000000."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return number_format(value, force_grouping=True)


def _label(spec: FieldSpec) -> str:
    """The field as the builder shows it (translated), not its internal key."""
    return str(_(spec.label))


def _check_condition(node: dict, path: str, walk: _Walk) -> None:
    extra = set(node) - {"field", "op", "value"}
    if extra:
        raise RuleError(_("A condition has only field, op and value; remove: %(keys)s.")
                        % {"keys": ", ".join(sorted(str(k) for k in extra))}, node=path or "/")
    name = node.get("field")
    if not isinstance(name, str) or name not in FIELDS:
        raise RuleError(_("Unknown field %(field)s; use one of: %(fields)s.")
                        % {"field": repr(name)[:60], "fields": ", ".join(FIELDS)},
                        node=f"{path}/field")
    spec = FIELDS[name]
    op = node.get("op")
    if not isinstance(op, str) or op not in OPERATORS:
        raise RuleError(_("Unknown operator %(op)s; use one of: %(ops)s.")
                        % {"op": repr(op)[:60], "ops": ", ".join(spec.ops)}, node=f"{path}/op")
    if op not in spec.ops:
        raise RuleError(_("The operator %(op)s does not fit %(field)s; use one of: %(ops)s.")
                        % {"op": op, "field": name, "ops": ", ".join(spec.ops)},
                        node=f"{path}/op")
    if "value" not in node:
        raise RuleError(_("The condition needs a value."), node=path or "/")
    value = node["value"]
    vpath = f"{path}/value"
    if op == "is_null":
        if not isinstance(value, bool):
            raise RuleError(_("is_null needs true or false."), node=vpath)
        return
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise RuleError(_("between needs a list of two values [low, high]."), node=vpath)
        for i, item in enumerate(value):
            _check_scalar(spec, item, f"{vpath}/{i}")
        low, high = value
        if spec.type == "choice":
            low, high = spec.choices.index(low), spec.choices.index(high)
        if low > high:
            raise RuleError(_("%(field)s: the first value must not be greater than the second.")
                            % {"field": _label(spec)}, node=vpath)
        return
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise RuleError(_("%(op)s needs a non-empty list of values.") % {"op": op},
                            node=vpath)
        if len(value) > MAX_LIST:
            raise RuleError(_("%(op)s takes at most %(n)d values.") % {"op": op, "n": MAX_LIST},
                            node=vpath)
        for i, item in enumerate(value):
            _check_scalar(spec, item, f"{vpath}/{i}")
            if name == "segment":
                walk.segment_refs.append((item, f"{vpath}/{i}"))
        return
    if op == "contains" and not isinstance(value, str):
        raise RuleError(_("contains needs a text value."), node=vpath)
    _check_scalar(spec, value, vpath)
    if name == "segment":
        walk.segment_refs.append((value, vpath))


def _check_node(node: Any, path: str, depth: int, walk: _Walk) -> None:
    walk.nodes += 1
    shown = path or "/"
    if walk.nodes > MAX_NODES:
        raise RuleError(_("A rule has at most %(n)d nodes.") % {"n": MAX_NODES}, node=shown)
    if depth > MAX_DEPTH:
        raise RuleError(_("A rule nests at most %(n)d levels deep.") % {"n": MAX_DEPTH},
                        node=shown)
    if not isinstance(node, dict):
        raise RuleError(_("Each node is an object: {\"all\": [...]}, {\"any\": [...]}, "
                          "{\"not\": ...} or a condition {\"field\", \"op\", \"value\"}."),
                        node=shown)
    groups = [k for k in GROUPS if k in node]
    if not groups:
        if not node:
            raise RuleError(_("An empty node; add a condition or a group."), node=shown)
        _check_condition(node, path, walk)
        return
    if len(node) != 1:
        raise RuleError(_("A group node has exactly one key (all, any or not); remove: "
                          "%(keys)s.") % {"keys": ", ".join(sorted(str(k) for k in node
                                                                   if k != groups[0]))},
                        node=shown)
    key = groups[0]
    child = node[key]
    if key == "not":
        _check_node(child, f"{path}/not", depth + 1, walk)
        return
    if not isinstance(child, list):
        raise RuleError(_("%(key)s needs a list of nodes.") % {"key": key},
                        node=f"{path}/{key}")
    if not child:
        raise RuleError(_("An empty group; add at least one condition to %(key)s.")
                        % {"key": key}, node=f"{path}/{key}")
    for i, item in enumerate(child):
        _check_node(item, f"{path}/{key}/{i}", depth + 1, walk)


def rule_validate(rule: Any, *, segment_code: str | None = None) -> None:
    """Raise RuleError (naming the node) unless `rule` is a valid rule.

    Segment references must name existing segments, and saving `rule` as the rule of
    `segment_code` must not close a cycle (A uses B uses A, or A uses A).
    """
    walk = _Walk()
    _check_node(rule, "", 1, walk)
    if not walk.segment_refs:
        return
    from .models import Segment

    codes = {code for code, _path in walk.segment_refs}
    known = set(Segment.objects.filter(code__in=codes).values_list("code", flat=True))
    for code, path in walk.segment_refs:
        if code not in known:
            raise RuleError(_("There is no segment %(code)s.") % {"code": code[:64]}, node=path)
    if segment_code is None:
        return
    graph = segment_graph()
    graph[segment_code] = codes
    for code, path in walk.segment_refs:
        if code == segment_code or _reaches(graph, code, segment_code):
            raise RuleError(_("Using segment %(code)s here makes a cycle: it depends on "
                              "%(self)s.") % {"code": code, "self": segment_code}, node=path)


def rule_segment_refs(rule: Any) -> set[str]:
    """Codes of the segments a (valid or stored) rule references."""
    refs: set[str] = set()

    def visit(node: Any, depth: int) -> None:
        if depth > MAX_DEPTH + 1 or not isinstance(node, dict):
            return
        for key in ("all", "any"):
            if isinstance(node.get(key), list):
                for item in node[key]:
                    visit(item, depth + 1)
        if "not" in node:
            visit(node["not"], depth + 1)
        if node.get("field") == "segment":
            value = node.get("value")
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str):
                    refs.add(v)

    visit(rule, 0)
    return refs


def segment_graph() -> dict[str, set[str]]:
    """code -> codes its rule references, over every segment with a rule."""
    from .models import Segment

    return {code: rule_segment_refs(rule) for code, rule in
            Segment.objects.exclude(rule=None).values_list("code", "rule")}


def _reaches(graph: dict[str, set[str]], start: str, target: str) -> bool:
    seen: set[str] = set()
    stack = [start]
    while stack:
        code = stack.pop()
        if code == target:
            return True
        if code in seen:
            continue
        seen.add(code)
        stack.extend(graph.get(code, ()))
    return False


# --- compilation -----------------------------------------------------------------------------

def _years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (28 February for 29 February in a common year)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _age_q(op: str, value: Any, today: date) -> Q:
    """Age as birth-date ranges: age >= a  <=>  birth_date <= today minus a years."""

    def at_least(a: int) -> Q:
        return Q(birth_date__lte=_years_before(today, int(a)))

    def at_most(a: int) -> Q:
        return Q(birth_date__gt=_years_before(today, int(a) + 1))

    def exactly(a: int) -> Q:
        return at_least(a) & at_most(a)

    if op == "eq":
        return exactly(value)
    if op == "ne":
        return Q(birth_date__isnull=False) & ~exactly(value)
    if op == "gte":
        return at_least(value)
    if op == "gt":
        return at_least(int(value) + 1)
    if op == "lte":
        return at_most(value)
    if op == "lt":
        return at_most(int(value) - 1) if int(value) > 0 else _NOBODY
    if op == "between":
        return at_least(value[0]) & at_most(value[1])
    if op == "in":
        return _any(exactly(v) for v in set(map(int, value)))
    if op == "not_in":
        return Q(birth_date__isnull=False) & ~_any(exactly(v) for v in set(map(int, value)))
    raise AssertionError(op)


def _offset_q(column: str, op: str, value: Any, today: date, *, sign: int) -> Q:
    """A whole number of days between today and a date column, as date ranges on the column.

    sign -1: days since (`days_since_last_purchase gt 90` <=> last_purchase_on < today - 90);
    sign +1: days to (`days_to_risk_expiry lte 30` <=> risk_expires_on <= today + 30).
    """

    def day(n: Any) -> date:
        return today + timedelta(days=sign * int(n))

    def at_least(n: Any) -> Q:
        return Q(**{f"{column}__{'gte' if sign > 0 else 'lte'}": day(n)})

    def at_most(n: Any) -> Q:
        return Q(**{f"{column}__{'lte' if sign > 0 else 'gte'}": day(n)})

    present = Q(**{f"{column}__isnull": False})
    if op == "is_null":
        return Q(**{f"{column}__isnull": bool(value)})
    if op == "eq":
        return Q(**{column: day(value)})
    if op == "ne":
        return present & ~Q(**{column: day(value)})
    if op == "gte":
        return at_least(value)
    if op == "gt":
        return at_least(int(value) + 1)
    if op == "lte":
        return at_most(value)
    if op == "lt":
        return at_most(int(value) - 1)
    if op == "between":
        return at_least(value[0]) & at_most(value[1])
    days = sorted({day(v) for v in value})
    if op == "in":
        return Q(**{f"{column}__in": days})
    if op == "not_in":
        return present & ~Q(**{f"{column}__in": days})
    raise AssertionError(op)


def _int_set(op: str, value: Any, universe: range) -> set[int]:
    """The whole numbers of `universe` that satisfy `op value` (for fields with few values)."""
    test = {
        "eq": lambda n: n == value, "ne": lambda n: n != value, "lt": lambda n: n < value,
        "lte": lambda n: n <= value, "gt": lambda n: n > value, "gte": lambda n: n >= value,
        "between": lambda n: value[0] <= n <= value[1],
        "in": lambda n: n in set(value), "not_in": lambda n: n not in set(value),
    }[op]
    return {n for n in universe if test(n)}


def _birthday_q(op: str, value: Any, today: date) -> Q:
    """Days to the next birthday (0 on the day itself), as (month, day) pairs of birth_date.

    Someone born on 29 February celebrates on 28 February in a common year.
    """
    if op == "is_null":
        return Q(birth_date__isnull=bool(value))
    # One year of days from today (365 or 366), each month and day once.
    year_later = _years_before(today, -1)
    horizon = (year_later - today).days
    wanted = _int_set(op, value, range(0, horizon))
    by_month: dict[int, set[int]] = {}
    for n in range(0, horizon):
        target = today + timedelta(days=n)
        if n not in wanted:
            continue
        by_month.setdefault(target.month, set()).add(target.day)
        if target.month == 2 and target.day == 28 and not _leap(target.year):
            by_month[2].add(29)
    if not by_month:
        return _NOBODY
    matched = _any(Q(birth_date__month=m, birth_date__day__in=sorted(days))
                   for m, days in sorted(by_month.items()))
    return Q(birth_date__isnull=False) & matched


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


# The trading calendar's data lives in outreach (a layer above): outreach registers its
# `trading_days(start, end)` here when the apps load (outreach.apps). Weekdays stand in for it
# only where outreach is not installed.
_trading_days: Callable[[date, date], list[date]] | None = None


def trading_calendar_register(trading_days: Callable[[date, date], list[date]]) -> None:
    global _trading_days
    _trading_days = trading_days


def _trading_days_between(start: date, end: date) -> list[date]:
    if _trading_days is not None:
        return _trading_days(start, end)
    days = (start + timedelta(days=i) for i in range((end - start).days + 1))
    return [d for d in days if d.weekday() < 5]


def inflow_window_start(today: date, count: int = 5) -> date:
    """The first of the last `count` trading days before `today`: deposits from its start
    count as "in the last `count` trading days" (`inflow_5d`), and so do today's."""
    span = 3 * count + 30
    while True:
        days = _trading_days_between(today - timedelta(days=span), today - timedelta(days=1))
        if len(days) >= count:
            return days[-count]
        span *= 2


def trading_day_ahead(today: date, count: int) -> date:
    """The `count`-th trading day after `today` (`today` itself for 0)."""
    if count <= 0:
        return today
    span = 2 * count + 30
    while True:
        days = _trading_days_between(today + timedelta(days=1), today + timedelta(days=span))
        if len(days) >= count:
            return days[count - 1]
        span *= 2


def _inflow_q(op: str, value: Any, today: date, *, share_of_aum: bool = False) -> Q:
    """Deposits since the start of the fifth-last trading day before today (CNY, or as a
    percentage of the client's AUM), as one aggregate over the window's deposits; a client
    with none has 0."""
    from django.db.models import F, Max, Sum

    from clients.models import CashFlow, CashFlowKind

    start = timezone.make_aware(datetime.combine(inflow_window_start(today), time.min))
    window = (CashFlow.objects.filter(kind=CashFlowKind.DEPOSIT, at__gte=start)
              .values("client").annotate(total=Sum("amount")))
    if share_of_aum:
        window = window.annotate(aum=Max("client__aum"))

    def over(lookup: str, bound: Any) -> Q:
        bound = Decimal(str(bound))
        if share_of_aum:
            rows = window.filter(**{f"total__{lookup}": F("aum") * bound / 100})
        else:
            rows = window.filter(**{f"total__{lookup}": bound})
        return Q(pk__in=rows.values("client"))

    def holds(lookup: str, bound: Any) -> Q:
        """total <lookup> bound, counting clients with no deposit as 0."""
        zero_matches = {"gte": 0 >= bound, "gt": 0 > bound, "lte": 0 <= bound,
                        "lt": 0 < bound}[lookup]
        if lookup in ("gte", "gt"):
            return over(lookup, bound) if not zero_matches else ~over(
                {"gte": "lt", "gt": "lte"}[lookup], bound)
        opposite = {"lte": "gt", "lt": "gte"}[lookup]
        return ~over(opposite, bound) if zero_matches else over(lookup, bound)

    if op in ("gte", "gt", "lte", "lt"):
        return holds(op, value)
    if op == "between":
        return holds("gte", value[0]) & holds("lte", value[1])
    raise AssertionError(op)


def _maturity_q(op: str, value: Any, today: date) -> Q:
    """Trading days to the nearest future maturity among the holdings of the client's latest
    snapshot (a position's own maturity_date, else its product's); empty when none matures."""
    from django.db.models import Max
    from django.db.models.functions import Coalesce

    from clients.models import Holding

    latest = (Holding.objects.filter(client=OuterRef("client")).values("client")
              .annotate(last=Max("as_of")).values("last"))

    def maturing(low: int, high: int | None) -> Q:
        """Some holding matures between `low` and `high` trading days from today."""
        rows = (Holding.objects.annotate(matures=Coalesce("maturity_date",
                                                          "product__maturity_date"))
                .filter(matures__gte=trading_day_ahead(today, low) if low > 0 else today))
        if high is not None:
            rows = rows.filter(matures__lt=trading_day_ahead(today, high + 1))
        rows = rows.filter(as_of=Subquery(latest[:1]))
        return Q(pk__in=rows.values("client"))

    def nearest_at_least(n: int) -> Q:
        return maturing(n, None) & ~maturing(0, n - 1) if n > 0 else maturing(0, None)

    if op == "is_null":
        return ~maturing(0, None) if value else maturing(0, None)
    if op == "lte":
        return maturing(0, int(value))
    if op == "lt":
        return maturing(0, int(value) - 1) if int(value) > 0 else _NOBODY
    if op == "gte":
        return nearest_at_least(int(value))
    if op == "gt":
        return nearest_at_least(int(value) + 1)
    if op == "between":
        return nearest_at_least(int(value[0])) & maturing(0, int(value[1]))
    if op == "eq":
        return nearest_at_least(int(value)) & maturing(0, int(value))
    if op == "ne":
        return maturing(0, None) & ~(nearest_at_least(int(value)) & maturing(0, int(value)))
    raise AssertionError(op)


def _purchases_q(op: str, value: Any) -> Q:
    """The number of purchases the client ever made. "At least n" probes the client's
    purchases index for an n-th row (a scalar subquery per client, like holds_product); at
    least one is the maintained `last_purchase_on`."""
    from clients.models import Transaction

    def at_least(n: int) -> Q:
        if n <= 0:
            return _EVERYBODY
        if n == 1:
            return Q(last_purchase_on__isnull=False)
        nth = Transaction.objects.filter(client=OuterRef("pk")).values("pk")[n - 1:n]
        return Q(IsNull(Subquery(nth), False))

    n = int(value[0]) if op == "between" else None
    if op == "gte":
        return at_least(int(value))
    if op == "gt":
        return at_least(int(value) + 1)
    if op == "lt":
        return ~at_least(int(value))
    if op == "lte":
        return ~at_least(int(value) + 1)
    if op == "eq":
        return at_least(int(value)) & ~at_least(int(value) + 1)
    if op == "ne":
        return ~(at_least(int(value)) & ~at_least(int(value) + 1))
    if op == "between":
        return at_least(n) & ~at_least(int(value[1]) + 1)
    raise AssertionError(op)


def _any(qs) -> Q:
    result = Q(pk__in=[])  # nobody (an empty "any" never reaches here: groups are non-empty)
    first = True
    for q in qs:
        result = q if first else result | q
        first = False
    return result


def _plain_q(column: str, op: str, value: Any, *, blank: Any = None) -> Q:
    """Comparisons on a column of Client; `blank` is its "no value" ('' for text, None else)."""
    present = Q(**{f"{column}__isnull": False}) if blank is None else ~Q(**{column: blank})
    if op == "eq":
        return Q(**{column: value})
    if op == "ne":
        return present & ~Q(**{column: value})
    if op in ("lt", "lte", "gt", "gte"):
        return Q(**{f"{column}__{op}": value})
    if op == "between":
        return Q(**{f"{column}__gte": value[0], f"{column}__lte": value[1]})
    if op == "in":
        return Q(**{f"{column}__in": list(dict.fromkeys(value))})
    if op == "not_in":
        return present & ~Q(**{f"{column}__in": list(dict.fromkeys(value))})
    if op == "is_null":
        empty = Q(**{f"{column}__isnull": True}) if blank is None else Q(**{column: blank})
        return empty if value else ~empty
    if op == "contains":
        return Q(**{f"{column}__contains": value})
    raise AssertionError(op)


def _ordered_choices(spec: FieldSpec, op: str, value: Any) -> list[str]:
    """risk_level lt/lte/gt/gte/between as the list of choices in that range (C1 < ... < C5)."""
    order = spec.choices
    if op == "between":
        lo, hi = order.index(value[0]), order.index(value[1])
        return list(order[lo:hi + 1])
    i = order.index(value)
    return {"lt": list(order[:i]), "lte": list(order[:i + 1]), "gt": list(order[i + 1:]),
            "gte": list(order[i:])}[op]


_NOBODY = Q(pk__in=[])
_EVERYBODY = Q(pk__isnull=False)


def _holds_q(name: str, op: str, value: Any) -> Q:
    """Holds (eq/in) or does not hold (ne/not_in) a product in the client's latest snapshot.

    A scalar subquery (`(SELECT id … LIMIT 1) IS NOT NULL`) rather than EXISTS: PostgreSQL
    cannot turn it into a hash semi-join over every holding, so it probes the holdings index
    only for the clients the other conditions leave (1.5 s -> 0.3 s for the example rule at a
    million clients). Product ids are resolved when the rule is compiled.
    """
    from clients.models import Product

    values = [value] if op in ("eq", "ne") else list(dict.fromkeys(value))
    column = "product_type" if name == "holds_product_type" else "product_code"
    product_ids = list(Product.objects.filter(**{f"{column}__in": values})
                       .values_list("pk", flat=True))
    holds = op in ("eq", "in")
    if not product_ids:
        return _NOBODY if holds else _EVERYBODY
    latest = (Holding.objects.filter(client=OuterRef(OuterRef("pk"))).order_by("-as_of")
              .values("as_of")[:1])
    held = Holding.objects.filter(client=OuterRef("pk"), as_of=Subquery(latest),
                                  product_id__in=product_ids).values("pk")[:1]
    return Q(IsNull(Subquery(held), not holds))


def _score_q(column: str, op: str, value: Any) -> Q:
    """A field of the client's current score (CurrentScore), as EXISTS over ClientScore.

    The current-score pointer is read when the rule is compiled and the scores are addressed
    by its (as_of, scheme) directly: through the view, PostgreSQL cannot use the score index
    and hashes every score of the table for each statement (bench/RESULTS.md, segments).
    """
    from clients.scoring.models import ClientScore, ScoringCurrent

    pointer = ScoringCurrent.objects.filter(pk=1).values_list("as_of", "scheme_id").first()
    if pointer is None:  # nobody has a current score
        return (_EVERYBODY if value else _NOBODY) if op == "is_null" else _NOBODY
    current = ClientScore.objects.filter(client=OuterRef("pk"), as_of=pointer[0],
                                         scheme_id=pointer[1])
    if op == "is_null":
        return ~Q(Exists(current)) if value else Q(Exists(current))
    inner = _plain_q(column, op, value)
    return Q(Exists(current.filter(inner)))


def _condition_q(node: dict, today: date) -> Q:
    name, op, value = node["field"], node["op"], node.get("value")
    spec = FIELDS[name]
    if name == "age":
        if op == "is_null":
            return Q(birth_date__isnull=bool(value))
        return _age_q(op, value, today)
    if name == "birth_year":
        if op == "is_null":
            return Q(birth_date__isnull=bool(value))
        if op == "between":
            return Q(birth_date__gte=date(int(value[0]), 1, 1),
                     birth_date__lte=date(int(value[1]), 12, 31))
        if op in ("in", "not_in"):
            years = sorted({int(v) for v in value})
            q = _any(Q(birth_date__gte=date(y, 1, 1), birth_date__lte=date(y, 12, 31))
                     for y in years)
            return q if op == "in" else Q(birth_date__isnull=False) & ~q
        year = int(value)
        bounds = {"eq": Q(birth_date__gte=date(year, 1, 1), birth_date__lte=date(year, 12, 31)),
                  "lt": Q(birth_date__lt=date(year, 1, 1)),
                  "lte": Q(birth_date__lte=date(year, 12, 31)),
                  "gt": Q(birth_date__gt=date(year, 12, 31)),
                  "gte": Q(birth_date__gte=date(year, 1, 1))}
        if op == "ne":
            return Q(birth_date__isnull=False) & ~bounds["eq"]
        return bounds[op]
    if name == "days_since_last_purchase":
        if op == "is_null":
            return Q(last_purchase_on__isnull=bool(value))
        return _offset_q("last_purchase_on", op, value, today, sign=-1)
    if name == "days_since_opened":
        return _offset_q("opened_on", op, value, today, sign=-1)
    if name == "days_to_risk_expiry":
        return _offset_q("risk_expires_on", op, value, today, sign=1)
    if name == "days_to_birthday":
        return _birthday_q(op, value, today)
    if name == "funded":
        funded = bool(value) if op == "eq" else not bool(value)
        return Q(first_funded_on__isnull=not funded)
    if name in ("inflow_5d", "inflow_5d_pct_aum"):
        return _inflow_q(op, value, today, share_of_aum=name == "inflow_5d_pct_aum")
    if name == "days_to_maturity":
        return _maturity_q(op, value, today)
    if name == "purchases_total":
        return _purchases_q(op, value)
    if name == "service_level":
        levels = [value] if op in ("eq", "ne") else list(dict.fromkeys(value))
        q = _any(service_level_q(level) for level in levels)
        return q if op in ("eq", "in") else ~q
    if name == "risk_level" and op in ("lt", "lte", "gt", "gte", "between"):
        return Q(risk_level__in=_ordered_choices(spec, op, value) or [""]) & ~Q(risk_level="")
    if name in ("gender", "occupation", "industry", "city", "risk_level", "investor_type",
                "status"):
        return _plain_q(name, op, value, blank="")
    if name in ("has_children", "opened_on", "aum", "consent_email"):
        if name == "aum" and op != "is_null":
            value = ([Decimal(str(v)) for v in value] if isinstance(value, list)
                     else Decimal(str(value)))
        return _plain_q(name, op, value)
    if name == "branch":
        return _fk_q("branch_id", "core.Branch", "code", op, value)
    if name == "rm":
        return _fk_q("rm_id", "core.User", "username", op, value)
    if name == "tier":
        return _score_q("tier", op, value)
    if name == "total_score":
        return _score_q("total_score", op, value)
    if name in ("amount_score", "frequency_score", "benefit_score"):
        return _score_q(name, op, value)
    if name in ("holds_product_type", "holds_product"):
        return _holds_q(name, op, value)
    if name == "segment":
        from .models import Segment, SegmentMembership

        values = [value] if op in ("eq", "ne") else list(dict.fromkeys(value))
        ids = list(Segment.objects.filter(code__in=values).values_list("pk", flat=True))
        member = SegmentMembership.objects.filter(client=OuterRef("pk"), segment_id__in=ids)
        if not ids:
            return _NOBODY if op in ("eq", "in") else _EVERYBODY
        return Q(Exists(member)) if op in ("eq", "in") else ~Q(Exists(member))
    raise AssertionError(name)


def _fk_q(column: str, model_label: str, key: str, op: str, value: Any) -> Q:
    """A foreign key addressed by its natural key, resolved inside the same statement."""
    from django.apps import apps

    model = apps.get_model(model_label)
    if op == "is_null":
        return Q(**{f"{column}__isnull": bool(value)})
    values = [value] if op in ("eq", "ne") else list(dict.fromkeys(value))
    ids = model.objects.filter(**{f"{key}__in": values}).values("pk")
    q = Q(**{f"{column}__in": ids})
    return q if op in ("eq", "in") else Q(**{f"{column}__isnull": False}) & ~q


def _compile(node: dict, today: date) -> Q:
    if "all" in node:
        result = Q()
        for child in node["all"]:
            result &= _compile(child, today)
        return result
    if "any" in node:
        return _any(_compile(child, today) for child in node["any"])
    if "not" in node:
        return ~_compile(node["not"], today)
    return _condition_q(node, today)


def rule_compile(rule: Any, *, today: date | None = None) -> Q:
    """The Q over Client that `rule` means (validated first; RuleError when invalid)."""
    rule_validate(rule)
    return _compile(rule, today or timezone.localdate())
