"""Pages of big lists without an exact COUNT(*) over the whole table.

An exact COUNT(*) over a million rows is a sequential (or full index-only) scan on PostgreSQL
and costs far more than the 25 rows we show. Lists therefore count at most COUNT_CAP + 1 rows
("10,000+"), and an unfiltered list of the whole table shows the planner's estimate from
pg_class.reltuples ("about N"), which costs nothing. OFFSET pagination costs grow with the page
number (page 2,000 of a million: ~350 ms of SQL), so a list pages through its first
MAX_ROWS_PAGED rows only; past that, users refine the search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet

COUNT_CAP = 10_000
MAX_ROWS_PAGED = COUNT_CAP


@dataclass
class ListPage:
    rows: list
    number: int
    per_page: int
    has_next: bool
    total: int
    total_kind: str  # "exact", "capped" or "estimate"
    at_depth_limit: bool = False

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def num_pages(self) -> int | None:
        if self.total_kind != "exact":
            return None
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def start_index(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.rows else 0

    @property
    def end_index(self) -> int:
        return (self.number - 1) * self.per_page + len(self.rows)


def table_estimate(model) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                       [model._meta.db_table])
        row = cursor.fetchone()
    return int(row[0]) if row else -1


def list_count(qs: QuerySet, *, whole_table: bool) -> tuple[int, str]:
    if whole_table and connection.vendor == "postgresql":
        estimate = table_estimate(qs.model)
        if estimate > COUNT_CAP:  # -1 when never analysed; small tables are counted exactly
            return estimate, "estimate"
    n = qs.order_by()[: COUNT_CAP + 1].count()
    return (COUNT_CAP, "capped") if n > COUNT_CAP else (n, "exact")


def paginate(qs: QuerySet, *, page: int, per_page: int, whole_table: bool,
             fetch=None) -> ListPage:
    """A page of `qs`; `fetch(offset, limit, total_kind)` reads the rows when slicing `qs` is
    not enough (it may choose its plan by the list's size)."""
    last_page = max(1, MAX_ROWS_PAGED // per_page)
    page = min(page, last_page)
    offset = (page - 1) * per_page
    total, kind = list_count(qs, whole_table=whole_table)
    if fetch is None:
        def fetch(start, limit, kind):
            return list(qs[start: start + limit])
    rows = fetch(offset, per_page + 1, kind)  # one extra row tells whether a next exists
    more = len(rows) > per_page
    return ListPage(rows=rows[:per_page], number=page, per_page=per_page,
                    has_next=more and page < last_page, total=total, total_kind=kind,
                    at_depth_limit=more and page >= last_page)
