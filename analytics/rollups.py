"""The rollup engine: set-based SQL that (re)computes the per-client rows of a set of clients
and moves their contribution in the aggregates (docs/architecture.md "Analytics").

Refreshing a set of clients is one routine, whatever the set (a chunk of ids in a full
rebuild, the clients touched since the last refresh): take the clients' stored contribution out
of the aggregates (an upsert of negated sums), delete their per-client rows, recompute them
from the base tables, add the new contribution back, drop aggregate rows that became zero. Run
in one transaction per chunk, it is idempotent: a chunk redone after a killed worker takes out
exactly what it put in. So an incremental refresh gives the same tables as a full rebuild.

Every statement runs on PostgreSQL and SQLite (3.35+: window functions, UPDATE … FROM,
INSERT … ON CONFLICT); the few expressions that differ come from `_Sql`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from clients.models import ProductType

from .models import UNKNOWN_OPENED

FUNNEL = "analytics_clientfunnel"
DAY = "analytics_clientday"
MONTH = "analytics_clientmonthactivity"
DAILY = "analytics_dailyfigures"
COHORT = "analytics_cohortactivity"
DAILY_BRANCH = "analytics_dailybranchfigures"
COHORT_BRANCH = "analytics_cohortbranch"
TOUCHED = "analytics_touchedclient"
SEGMENT_DAILY = "analytics_segmentdailyfigures"
SEGMENT_COHORT = "analytics_segmentcohortactivity"
SEGMENT_PAIR = "analytics_segmentpairfigures"
MEMBER = "analytics_segmentmember"  # the memberships the segment figures were computed with
MEMBERSHIP = "segments_segmentmembership"
SEGMENT = "segments_segment"
PERSONA = "persona"  # segments.models.SegmentKind.PERSONA (analytics reads segments' tables)
NEW_DAYS = "analytics_new_days"  # temporary, inside compute_client_rows

ACTIVE_WINDOW_DAYS = 30  # DOMAIN.md: active on d = a purchase in the 30 days ending on d


class _Sql:
    """The expressions that differ between PostgreSQL and SQLite."""

    @staticmethod
    def pg() -> bool:
        return connection.vendor == "postgresql"

    @classmethod
    def add_days(cls, expr: str, days: int) -> str:
        if cls.pg():
            return f"({expr} + {int(days)})"
        return f"date({expr}, '{int(days):+d} days')"

    @classmethod
    def month_of(cls, expr: str) -> str:
        if cls.pg():  # date arithmetic: date_trunc would go through timestamptz per row
            return f"({expr} - CAST(EXTRACT(DAY FROM {expr}) AS integer) + 1)"
        return f"date({expr}, 'start of month')"

    @classmethod
    def local_date(cls, expr: str) -> tuple[str, tuple]:
        return connection.ops.datetime_cast_date_sql(expr, (), settings.TIME_ZONE)

    @classmethod
    def days_between(cls, later: str, earlier: str) -> str:
        if cls.pg():
            return f"({later} - {earlier})"
        return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"

    @classmethod
    def distinct(cls, a: str, b: str) -> str:
        return f"{a} IS DISTINCT FROM {b}" if cls.pg() else f"{a} IS NOT {b}"


@dataclass(frozen=True)
class Scope:
    """Which clients a step works on: an id range, or the touched ids within a range."""

    low: int
    high: int
    touched: bool = False
    everyone: bool = False

    def on(self, column: str) -> tuple[str, list]:
        if self.everyone:
            return "1 = 1", []
        if self.touched:
            return (f"{column} IN (SELECT client_id FROM {TOUCHED} "
                    f"WHERE client_id BETWEEN %s AND %s)", [self.low, self.high])
        return f"{column} BETWEEN %s AND %s", [self.low, self.high]


def _run(sql: str, params: list | tuple = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.rowcount


MONEY = {"new_aum", "amount", "revenue"}


def _upsert(table: str, keys: list[str], measures: list[str], select_sql: str,
            params: list) -> None:
    columns = ", ".join(keys + measures)
    # Money is rounded to the cent after each addition: SQLite adds decimals as floats, and
    # a contribution taken out must leave an exact zero behind.
    updates = ", ".join(
        f"{m} = ROUND({table}.{m} + excluded.{m}, 2)" if m in MONEY
        else f"{m} = {table}.{m} + excluded.{m}" for m in measures)
    _run(f"INSERT INTO {table} ({columns}) {select_sql} "
         f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}", params)


DAILY_KEYS = ["day", "branch_id", "rm_id", "tier"]
DAILY_MEASURES = ["new_accounts", "new_funded", "new_aum", "purchases", "amount", "revenue",
                  "active_delta"]
COHORT_KEYS = ["cohort", "month", "branch_id", "rm_id", "tier"]
DAILY_BRANCH_KEYS = ["day", "branch_id"]
COHORT_BRANCH_KEYS = ["cohort", "month", "branch_id"]
SEGMENT_DAILY_KEYS = ["segment_id", "day", "branch_id", "tier"]
SEGMENT_COHORT_KEYS = ["segment_id", "cohort", "month", "branch_id", "tier"]
SEGMENT_PAIR_KEYS = ["segment_id", "other_id", "day", "branch_id", "tier"]


def persona_pairs(members: str) -> str:
    """The (segment, persona) pairs of the clients in `members` (a table of segment_id,
    client_id, persona): each membership with each of the client's other personas."""
    return (f"(SELECT a.segment_id, b.segment_id AS other_id, a.client_id "
            f"FROM {members} a JOIN {members} b ON b.client_id = a.client_id "
            f"WHERE b.persona AND b.segment_id <> a.segment_id)")


def _pairs_join(pairs: str | None, column: str) -> str:
    """Each row once per segment (or pair of segments) of its client, or as it is."""
    return f" JOIN {pairs} p ON p.client_id = {column}" if pairs else ""


def _dim(key: str) -> str:
    return f"p.{key}" if key in ("segment_id", "other_id") else f"f.{key}"


def _daily_select(scope: Scope, sign: int, keys: list[str],
                  pairs: str | None = None) -> tuple[str, list]:
    """A client's contribution to the daily figures: the day of opening (accounts, funded,
    AUM) and each day row (purchases, amount, revenue, active change). With `pairs` (a table
    of segment_id, client_id), once per pair: the segment figures."""
    s = int(sign)
    opened_where, opened_params = scope.on("f.client_id")
    day_where, day_params = scope.on("d.client_id")
    inner = [k for k in keys if k != "day"]
    dims = ", ".join(_dim(k) + f" AS {k}" for k in inner)
    key_list = ", ".join(keys)
    sums = ", ".join(f"{s} * SUM({m})" for m in DAILY_MEASURES)
    return (f"SELECT {key_list}, {sums} FROM ("
            f"SELECT f.opened_on AS day, {dims}, 1 AS new_accounts, "
            f"CASE WHEN f.first_funded_on IS NOT NULL THEN 1 ELSE 0 END AS new_funded, "
            f"f.aum AS new_aum, 0 AS purchases, 0 AS amount, 0 AS revenue, "
            f"0 AS active_delta FROM {FUNNEL} f{_pairs_join(pairs, 'f.client_id')} "
            f"WHERE {opened_where} "
            f"UNION ALL SELECT d.day, {dims}, 0, 0, 0, d.purchases, d.amount, d.revenue, "
            f"d.active_delta FROM {DAY} d JOIN {FUNNEL} f ON f.client_id = d.client_id"
            f"{_pairs_join(pairs, 'd.client_id')} "
            f"WHERE {day_where}) u WHERE 1 = 1 GROUP BY {key_list}",
            opened_params + day_params)


def _cohort_select(scope: Scope, sign: int, keys: list[str],
                   pairs: str | None = None) -> tuple[str, list]:
    """A client's months with a purchase, by the month of opening (clients opened on an
    unknown day are in no cohort)."""
    exprs = {"cohort": _Sql.month_of("f.opened_on"), "month": "m.month"}
    columns = ", ".join(exprs.get(k) or _dim(k) for k in keys)
    where, params = scope.on("m.client_id")
    return (f"SELECT {columns}, {int(sign)} * COUNT(*) "
            f"FROM {MONTH} m JOIN {FUNNEL} f ON f.client_id = m.client_id"
            f"{_pairs_join(pairs, 'm.client_id')} "
            f"WHERE {where} AND f.opened_on > %s "
            f"GROUP BY {columns}", params + [UNKNOWN_OPENED])


@dataclass(frozen=True)
class _Aggregate:
    table: str
    keys: list[str]
    daily: bool  # the daily measures, or the cohorts' one count
    # "" (each client once), "segment" (once per segment of the client) or "pair" (once per
    # pair of a segment and another persona of the client): which pairs table is joined.
    per: str = ""

    @property
    def measures(self) -> list[str]:
        return DAILY_MEASURES if self.daily else ["clients"]

    @property
    def stage_table(self) -> str:
        return (f"analytics_stage_{self.per + '_' if self.per else ''}"
                f"{'daily' if self.daily else 'cohort'}")

    @property
    def stage_keys(self) -> list[str]:
        if self.per == "pair":
            return SEGMENT_PAIR_KEYS
        if self.per == "segment":
            return SEGMENT_DAILY_KEYS if self.daily else SEGMENT_COHORT_KEYS
        return DAILY_KEYS if self.daily else COHORT_KEYS

    def select(self, scope: Scope, sign: int, keys: list[str],
               pairs: dict[str, str]) -> tuple[str, list]:
        build = _daily_select if self.daily else _cohort_select
        return build(scope, sign, keys, pairs.get(self.per))


AGGREGATES = (
    _Aggregate(DAILY, DAILY_KEYS, daily=True),
    _Aggregate(DAILY_BRANCH, DAILY_BRANCH_KEYS, daily=True),
    _Aggregate(COHORT, COHORT_KEYS, daily=False),
    _Aggregate(COHORT_BRANCH, COHORT_BRANCH_KEYS, daily=False),
    _Aggregate(SEGMENT_DAILY, SEGMENT_DAILY_KEYS, daily=True, per="segment"),
    _Aggregate(SEGMENT_COHORT, SEGMENT_COHORT_KEYS, daily=False, per="segment"),
    _Aggregate(SEGMENT_PAIR, SEGMENT_PAIR_KEYS, daily=True, per="pair"),
)
# The stored memberships and their persona pairs: what the segment figures were computed with.
STORED = {"segment": MEMBER, "pair": persona_pairs(MEMBER)}
# The staging tables, one per measure set and segment-ness (the per-branch tables are summed
# from the same stage as the per-(branch, RM, tier) ones).
STAGES = {a.stage_table: a for a in AGGREGATES if a.keys == a.stage_keys}


def contribute(scope: Scope, sign: int) -> None:
    """Add (+1) or take out (-1) the stored per-client rows of `scope` to the aggregates
    (each figure per branch, RM and tier, per branch only, and per segment of the client)."""
    for agg in AGGREGATES:
        _upsert(agg.table, agg.keys, agg.measures, *agg.select(scope, sign, agg.keys, STORED))


def stage_start() -> None:
    """Temporary tables collecting a refresh's changes to the aggregates (old contributions
    negated, new ones added), so that only the net change is written: a client's unchanged
    history cancels out instead of being taken out and put back row by row."""
    for table, agg in STAGES.items():
        _run(f"DROP TABLE IF EXISTS {table}")
        columns = ", ".join(f"{name} {COLUMN_TYPES[name]}"
                            for name in agg.stage_keys + agg.measures)
        _run(f"CREATE TEMPORARY TABLE {table} ({columns})")


COLUMN_TYPES = {"segment_id": "bigint", "other_id": "bigint", "day": "date", "cohort": "date",
                "month": "date", "branch_id": "bigint", "rm_id": "bigint", "tier": "varchar(12)",
                "new_accounts": "integer", "new_funded": "integer",
                "new_aum": "numeric(22, 2)", "purchases": "integer",
                "amount": "numeric(22, 2)", "revenue": "numeric(22, 2)",
                "active_delta": "integer", "clients": "integer"}


def stage(scope: Scope, sign: int, *, pairs: dict[str, str] | None = None,
          segments_only: bool = False) -> None:
    """Collect the contribution of `scope` (its clients' rows; for the segment figures, once
    per row of `pairs["segment"]` and `pairs["pair"]`, by default the stored memberships and
    their persona pairs)."""
    for table, agg in STAGES.items():
        if segments_only and not agg.per:
            continue
        sql, params = agg.select(scope, sign, agg.stage_keys, pairs or STORED)
        _run(f"INSERT INTO {table} ({', '.join(agg.stage_keys + agg.measures)}) {sql}",
             params)


def stage_apply() -> None:
    """Write the net changes collected by `stage` into the aggregates."""
    for agg in AGGREGATES:
        key_list = ", ".join(agg.keys)
        sums = ", ".join(f"SUM({m})" for m in agg.measures)
        nonzero = " OR ".join(f"SUM({m}) <> 0" for m in agg.measures)
        _upsert(agg.table, agg.keys, agg.measures,
                f"SELECT {key_list}, {sums} FROM {agg.stage_table} WHERE 1 = 1 "
                f"GROUP BY {key_list} HAVING {nonzero}", [])
    for table in STAGES:
        _run(f"DROP TABLE {table}")


def aggregate_all() -> None:
    """The aggregates from every client's rows at once (the end of a full rebuild): plain
    inserts into emptied tables, no conflicts to resolve; the segment figures with the
    memberships of this moment."""
    for agg in AGGREGATES:
        _run(f"DELETE FROM {agg.table}")
    _run(f"DELETE FROM {MEMBER}")
    _run(f"INSERT INTO {MEMBER} (segment_id, client_id, persona) {_present_members()}")
    contribute(Scope(0, 0, everyone=True), +1)


def _present_members() -> str:
    """The segments' present memberships of clients with rows, flagged persona or not."""
    return (f"SELECT m.segment_id, m.client_id, s.kind = '{PERSONA}' AS persona "
            f"FROM {MEMBERSHIP} m "
            f"JOIN {SEGMENT} s ON s.id = m.segment_id "
            f"JOIN {FUNNEL} f ON f.client_id = m.client_id")


JOINED = "analytics_segment_joined"
LEFT = "analytics_segment_left"
OLD = "analytics_segment_old"  # the stored memberships of the clients whose memberships moved
NEW = "analytics_segment_new"  # … and their present ones
PAIRS_JOINED = "analytics_pair_joined"
PAIRS_LEFT = "analytics_pair_left"
SYNC_TABLES = (JOINED, LEFT, OLD, NEW, PAIRS_JOINED, PAIRS_LEFT)


def sync_memberships() -> int:
    """Bring the segment figures to the segments' present members: take out the figures of
    the (segment, client) memberships that ended since the last refresh and of the persona
    pairs that ended with them, add those that began, and store the memberships. Returns the
    number of memberships moved."""
    for table in SYNC_TABLES:
        _run(f"DROP TABLE IF EXISTS {table}")
    _run(f"CREATE TEMPORARY TABLE {JOINED} AS {_present_members()} "
         f"EXCEPT SELECT segment_id, client_id, persona FROM {MEMBER}")
    _run(f"CREATE TEMPORARY TABLE {LEFT} AS SELECT segment_id, client_id, persona "
         f"FROM {MEMBER} EXCEPT {_present_members()}")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT (SELECT COUNT(*) FROM {JOINED}) + (SELECT COUNT(*) FROM {LEFT})")
        moved = int(cursor.fetchone()[0])
    if moved:
        # The pairs that began or ended are among those of the clients whose memberships moved:
        # their pairs before (stored) and after (stored, less those that left, plus those that
        # joined), each set less the other.
        _run(f"CREATE TEMPORARY TABLE {OLD} AS SELECT segment_id, client_id, persona "
             f"FROM {MEMBER} WHERE client_id IN (SELECT client_id FROM {JOINED} "
             f"UNION SELECT client_id FROM {LEFT})")
        _run(f"CREATE TEMPORARY TABLE {NEW} AS SELECT segment_id, client_id, persona FROM {OLD} "
             f"EXCEPT SELECT segment_id, client_id, persona FROM {LEFT} "
             f"UNION SELECT segment_id, client_id, persona FROM {JOINED}")
        pairs = "SELECT segment_id, other_id, client_id FROM "
        _run(f"CREATE TEMPORARY TABLE {PAIRS_JOINED} AS {pairs}{persona_pairs(NEW)} n "
             f"EXCEPT {pairs}{persona_pairs(OLD)} o")
        _run(f"CREATE TEMPORARY TABLE {PAIRS_LEFT} AS {pairs}{persona_pairs(OLD)} o "
             f"EXCEPT {pairs}{persona_pairs(NEW)} n")
        everyone = Scope(0, 0, everyone=True)
        stage_start()
        stage(everyone, -1, pairs={"segment": LEFT, "pair": PAIRS_LEFT}, segments_only=True)
        stage(everyone, +1, pairs={"segment": JOINED, "pair": PAIRS_JOINED},
              segments_only=True)
        stage_apply()
        _run(f"DELETE FROM {MEMBER} WHERE EXISTS (SELECT 1 FROM {LEFT} l "
             f"WHERE l.segment_id = {MEMBER}.segment_id AND l.client_id = {MEMBER}.client_id)")
        _run(f"INSERT INTO {MEMBER} (segment_id, client_id, persona) "
             f"SELECT segment_id, client_id, persona FROM {JOINED}")
        drop_zero_rows()
    for table in SYNC_TABLES:
        _run(f"DROP TABLE IF EXISTS {table}")
    return moved


def drop_zero_rows() -> None:
    zero = " AND ".join(f"{m} = 0" for m in DAILY_MEASURES)
    for agg in AGGREGATES:
        _run(f"DELETE FROM {agg.table} WHERE "
             + (zero if agg.daily else "clients = 0"))


def delete_client_rows(scope: Scope) -> None:
    for table in (DAY, MONTH, FUNNEL):
        where, params = scope.on("client_id")
        _run(f"DELETE FROM {table} WHERE {where}", params)


def compute_client_rows(scope: Scope) -> None:
    """The per-client rows of `scope` from clients, current scores and transactions."""
    where, params = scope.on("c.id")
    _run(f"INSERT INTO {FUNNEL} (client_id, branch_id, rm_id, tier, opened_on, first_funded_on,"
         f" aum) SELECT c.id, COALESCE(c.branch_id, 0), COALESCE(c.rm_id, 0), "
         f"COALESCE(cs.tier, ''), COALESCE(c.opened_on, %s), c.first_funded_on, c.aum "
         f"FROM clients_client c LEFT JOIN clients_currentscore cs ON cs.client_id = c.id "
         f"WHERE {where}", [UNKNOWN_OPENED, *params])

    day_sql, day_params = _Sql.local_date("t.traded_at")
    where, params = scope.on("t.client_id")
    window = "PARTITION BY client_id ORDER BY day"
    # The scope's day rows are built in a temporary table that the month rows and the funnel
    # dates then read (not the big day table, where the scope's rows lie scattered), and go
    # into the day table in one insert at the end.
    _run(f"DROP TABLE IF EXISTS {NEW_DAYS}")
    # A run of activity starts on a purchase more than 30 days after the previous one.
    _run(f"CREATE TEMPORARY TABLE {NEW_DAYS} AS "
         f"SELECT client_id, day, n AS purchases, amount, revenue, CASE WHEN prev_day IS NULL OR "
         f"day > {_Sql.add_days('prev_day', ACTIVE_WINDOW_DAYS)} THEN 1 ELSE 0 END "
         f"AS active_delta, advisory FROM (SELECT client_id, day, n, amount, revenue, advisory, "
         f"LAG(day) OVER ({window}) AS prev_day "
         f"FROM (SELECT t.client_id AS client_id, {day_sql} AS day, COUNT(*) AS n, "
         f"SUM(t.amount) AS amount, SUM(t.revenue) AS revenue, "
         f"SUM(CASE WHEN p.product_type = %s THEN 1 ELSE 0 END) AS advisory "
         f"FROM clients_transaction t LEFT JOIN clients_product p ON p.id = t.product_id "
         f"WHERE {where} GROUP BY 1, 2) g) w",
         [*day_params, ProductType.ADVISORY_SERVICE.value, *params])
    # ... and ends (-1) on the 30th day after its last purchase.
    end = _Sql.add_days("day", ACTIVE_WINDOW_DAYS)
    _run(f"INSERT INTO {NEW_DAYS} (client_id, day, purchases, amount, revenue, active_delta) "
         f"SELECT client_id, {end}, 0, 0, 0, -1 FROM (SELECT client_id, day, "
         f"LEAD(day) OVER ({window}) AS next_day FROM {NEW_DAYS} WHERE purchases > 0) w "
         f"WHERE next_day IS NULL OR next_day > {end}")

    _run(f"INSERT INTO {MONTH} (client_id, month, purchases, amount, revenue) "
         f"SELECT client_id, {_Sql.month_of('day')}, SUM(purchases), SUM(amount), SUM(revenue) "
         f"FROM {NEW_DAYS} WHERE purchases > 0 GROUP BY client_id, {_Sql.month_of('day')}")

    _run(f"UPDATE {FUNNEL} SET first_purchase_on = s.first_day, repeat_on = s.second_day FROM ("
         f"SELECT client_id, MIN(day) AS first_day, "
         f"MIN(CASE WHEN bought >= 2 THEN day END) AS second_day FROM ("
         f"SELECT client_id, day, SUM(purchases) OVER ({window}) AS bought FROM {NEW_DAYS} "
         f"WHERE purchases > 0) w GROUP BY client_id) s "
         f"WHERE {FUNNEL}.client_id = s.client_id")

    # The repeat step is also reached by the first advisory service, if that came sooner.
    _run(f"UPDATE {FUNNEL} SET repeat_on = CASE WHEN {FUNNEL}.repeat_on IS NULL "
         f"OR s.day < {FUNNEL}.repeat_on THEN s.day ELSE {FUNNEL}.repeat_on END FROM ("
         f"SELECT client_id, MIN(day) AS day FROM {NEW_DAYS} WHERE advisory > 0 "
         f"GROUP BY client_id) s WHERE {FUNNEL}.client_id = s.client_id")

    _run(f"INSERT INTO {DAY} (client_id, day, purchases, amount, revenue, active_delta) "
         f"SELECT client_id, day, purchases, amount, revenue, active_delta FROM {NEW_DAYS}")
    _run(f"DROP TABLE {NEW_DAYS}")


def tune() -> None:
    """For the rest of the transaction (PostgreSQL): room for the chunk's hash aggregates in
    memory (JIT is off for every connection: settings, DATABASES options)."""
    if _Sql.pg():
        _run("SET LOCAL work_mem = '256MB'")


def refresh_scope(scope: Scope, *, fresh: bool = False,
                  timings: dict[str, float] | None = None) -> None:
    """Bring the rows of `scope` up to date (call inside one transaction). `fresh`: a full
    rebuild's chunk, into emptied tables: only the per-client rows are computed (the
    aggregates follow in one pass, `aggregate_all`). `timings` (seconds per step) is added to
    when given."""
    steps = [("tune", tune)]
    if not fresh:
        steps += [("take_out", lambda: (stage_start(), stage(scope, -1))),
                  ("delete", lambda: delete_client_rows(scope))]
    steps.append(("compute", lambda: compute_client_rows(scope)))
    if not fresh:
        steps += [("add", lambda: (stage(scope, +1), stage_apply())),
                  ("drop_zero", drop_zero_rows)]
    for name, step in steps:
        timed(timings, name, step)


def timed(timings: dict[str, float] | None, name: str, step) -> None:
    started = time.perf_counter()
    step()
    if timings is not None:
        timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - started, 3)


def analyze() -> None:
    """Fresh planner statistics after a rebuild rewrote every table (PostgreSQL)."""
    if _Sql.pg():
        for table in (FUNNEL, DAY, MONTH, MEMBER, *(a.table for a in AGGREGATES)):
            _run(f"ANALYZE {table}")


def truncate_all() -> None:
    for table in (*(a.table for a in AGGREGATES), MEMBER, MONTH, DAY, FUNNEL, TOUCHED):
        _run(f"DELETE FROM {table}")


def max_id(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
        return int(cursor.fetchone()[0])


def client_id_bounds() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM clients_client")
        low, high = cursor.fetchone()
        cursor.execute(f"SELECT COALESCE(MAX(client_id), 0) FROM {FUNNEL}")
        return int(low), max(int(high), int(cursor.fetchone()[0]))


def mark_touched(*, txn_after: int, txn_upto: int) -> list[int]:
    """Fill the touched table: clients with transactions in (txn_after, txn_upto], new or
    deleted clients, and clients whose branch, RM, tier, opening, funding or AUM differ from
    the stored row. Returns the touched ids in order."""
    _run(f"DELETE FROM {TOUCHED}")
    different = " OR ".join([
        "f.client_id IS NULL", "f.branch_id <> COALESCE(c.branch_id, 0)",
        "f.rm_id <> COALESCE(c.rm_id, 0)", "f.tier <> COALESCE(cs.tier, '')",
        "f.opened_on <> COALESCE(c.opened_on, %s)",
        _Sql.distinct("f.first_funded_on", "c.first_funded_on"), "f.aum <> c.aum"])
    _run(f"INSERT INTO {TOUCHED} (client_id) "
         f"SELECT client_id FROM clients_transaction WHERE id > %s AND id <= %s "
         f"UNION SELECT c.id FROM clients_client c "
         f"LEFT JOIN {FUNNEL} f ON f.client_id = c.id "
         f"LEFT JOIN clients_currentscore cs ON cs.client_id = c.id WHERE {different} "
         f"UNION SELECT f.client_id FROM {FUNNEL} f "
         f"LEFT JOIN clients_client c ON c.id = f.client_id WHERE c.id IS NULL",
         [txn_after, txn_upto, UNKNOWN_OPENED])
    _analyze_touched()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT client_id FROM {TOUCHED} ORDER BY client_id")
        return [row[0] for row in cursor.fetchall()]


def mark_clients(client_ids) -> list[int]:
    """Fill the touched table with the given ids (e.g. clients whose transactions were
    removed, which no watermark sees)."""
    _run(f"DELETE FROM {TOUCHED}")
    ids = sorted({int(i) for i in client_ids})
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {TOUCHED} (client_id) VALUES (%s)", [[i] for i in ids])
    _analyze_touched()
    return ids


def _analyze_touched() -> None:
    """Statistics of the freshly filled touched table (PostgreSQL): without them the planner
    guesses its size and reads the day table whole instead of the touched clients' rows."""
    if _Sql.pg():
        _run(f"ANALYZE {TOUCHED}")
