"""Set-based upsert of a validated frame: COPY + one INSERT … ON CONFLICT on PostgreSQL,
batched bulk_create(update_conflicts=True) on SQLite. Callers wrap it in transaction.atomic."""

import datetime as dt
import io
from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection
from django.db.models import Model

from ..models import CashFlow, CashFlowKind, Client, Holding, Transaction
from .specs import KindSpec

Progress = Callable[[int, int], None]
STAGE = "ingest_stage"


def write_frame(
    spec: KindSpec,
    clean: pd.DataFrame,
    *,
    holdings_replace: bool = False,
    on_progress: Progress | None = None,
) -> tuple[int, int, int]:
    """Upsert `clean` (columns = attnames) by key; returns (created, updated, deleted)."""
    progress = on_progress or (lambda done, total: None)
    if clean.empty:
        return 0, 0, 0
    if connection.vendor == "postgresql":
        return _write_postgresql(spec, clean, holdings_replace, progress)
    return _write_generic(spec, clean, holdings_replace, progress)


def _key_attnames(spec: KindSpec) -> list[str]:
    return [spec.column(k).attname for k in spec.keys]


def _auto_fields(model: type[Model]) -> tuple[list[str], list[str]]:
    """(auto_now_add attnames, auto_now attnames) — set by the write since save() is bypassed."""
    fields = model._meta.concrete_fields
    return (
        [f.attname for f in fields if getattr(f, "auto_now_add", False)],
        [f.attname for f in fields if getattr(f, "auto_now", False)],
    )


# PostgreSQL ------------------------------------------------------------------------------


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _write_postgresql(
    spec: KindSpec, clean: pd.DataFrame, holdings_replace: bool, progress: Progress
) -> tuple[int, int, int]:
    model = spec.model
    table = model._meta.db_table
    n = len(clean)
    keys = _key_attnames(spec)
    staged = list(clean.columns)
    created_cols, now_cols = _auto_fields(model)
    insert_cols, select_exprs, params = [], [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        insert_cols.append(_q(f.column))
        if f.attname in staged:
            select_exprs.append(f"s.{_q(f.attname)}")
        elif f.attname in created_cols or f.attname in now_cols:
            select_exprs.append("statement_timestamp()")
        else:
            default = f.get_default()
            select_exprs.append(f"%s::{f.db_type(connection)}")
            params.append(f.get_db_prep_save(default, connection))
    compare = [c for c in staged if c not in keys]
    update_cols = compare + [c for c in now_cols if c not in staged]

    buffer, copy_null = _staging_csv(model, clean)
    with connection.cursor() as cursor:
        # Room for the statements' aggregates and sorts (the default 4 MB spills to disk).
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(f"DROP TABLE IF EXISTS {STAGE}")
        cursor.execute(
            f"CREATE TEMP TABLE {STAGE} ON COMMIT DROP AS SELECT "
            f"{', '.join(_q(c) for c in staged)} FROM {_q(table)} WITH NO DATA"
        )
        progress(n // 10, n)
        cursor.copy_expert(
            f"COPY {STAGE} ({', '.join(_q(c) for c in staged)}) FROM STDIN "
            f"WITH (FORMAT csv, NULL {copy_null})",
            buffer,
        )
        progress(n // 3, n)
        if compare:
            assignments = ", ".join(f"{_q(c)} = EXCLUDED.{_q(c)}" for c in update_cols)
            conflict = (
                f"DO UPDATE SET {assignments} WHERE"
                f" ROW({', '.join(f't.{_q(c)}' for c in compare)}) IS DISTINCT FROM"
                f" ROW({', '.join(f'EXCLUDED.{_q(c)}' for c in compare)})"
            )
        else:
            conflict = "DO NOTHING"
        # Transactions (cash flows) go in in the order of their (client, time DESC) index: that
        # index and the deferred foreign-key checks on clients then walk their pages in order.
        order = {Transaction: "ORDER BY s.client_id, s.traded_at DESC",
                 CashFlow: "ORDER BY s.client_id, s.at DESC"}.get(model, "")
        cursor.execute(
            f"WITH up AS (INSERT INTO {_q(table)} AS t ({', '.join(insert_cols)}) "
            f"SELECT {', '.join(select_exprs)} FROM {STAGE} s {order} "
            f"ON CONFLICT ({', '.join(_q(k) for k in keys)}) {conflict} "
            f"RETURNING (xmax = 0) AS inserted) "
            f"SELECT count(*) FILTER (WHERE inserted),"
            f" count(*) FILTER (WHERE NOT inserted) FROM up",
            params,
        )
        created, updated = cursor.fetchone()
        progress(n * 9 // 10, n)
        deleted = 0
        if model is Transaction:
            _purchase_dates_postgresql(cursor)
        if model is CashFlow:
            _funding_dates_postgresql(cursor)
        if model is Holding and holdings_replace:
            cursor.execute(
                f"DELETE FROM {_q(table)} h USING (SELECT DISTINCT client_id, as_of FROM {STAGE}) d"
                f" WHERE h.client_id = d.client_id AND h.as_of = d.as_of AND NOT EXISTS ("
                f"SELECT 1 FROM {STAGE} s WHERE s.client_id = h.client_id"
                f" AND s.product_id = h.product_id AND s.as_of = h.as_of)"
            )
            deleted = cursor.rowcount
        cursor.execute(f"DROP TABLE {STAGE}")
    progress(n, n)
    return created, updated, deleted


def _staging_csv(model: type[Model], clean: pd.DataFrame) -> tuple[io.BytesIO, str]:
    """The frame as CSV for COPY, and COPY's NULL marker.

    pyarrow writes it several times faster than DataFrame.to_csv: strings always quoted (so ""
    is an empty string), nulls as unquoted empty fields (COPY's default NULL in CSV). Types
    pyarrow can't take fall back to to_csv with \\N for NULL.
    """
    try:
        import pyarrow as pa
        from pyarrow import csv as pa_csv
    except ImportError:  # pragma: no cover - pyarrow is in requirements.txt
        return _staging_csv_pandas(clean)
    fields = model._meta.concrete_fields
    dates = {f.attname for f in fields if f.get_internal_type() == "DateField"}
    try:
        table = pa.Table.from_pandas(clean, preserve_index=False)
        for i, name in enumerate(table.column_names):
            kind = table.schema.field(i).type
            if pa.types.is_timestamp(kind) and name in dates:
                table = table.set_column(i, name, table.column(i).cast(pa.date32()))
            elif not (
                pa.types.is_string(kind)
                or pa.types.is_large_string(kind)
                or pa.types.is_integer(kind)
                or pa.types.is_boolean(kind)
                or pa.types.is_null(kind)
                or (pa.types.is_timestamp(kind) and kind.tz is None)
            ):
                raise TypeError(kind)
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
        return io.BytesIO(sink.getvalue().to_pybytes()), "''"
    except (TypeError, pa.ArrowException):
        return _staging_csv_pandas(clean)


def _staging_csv_pandas(clean: pd.DataFrame) -> tuple[io.BytesIO, str]:
    buffer = io.BytesIO()
    clean.to_csv(buffer, index=False, header=False, na_rep="\\N", date_format=None)
    buffer.seek(0)
    return buffer, "'\\N'"


def _purchase_dates_postgresql(cursor) -> None:
    clients = _q(Client._meta.db_table)
    cursor.execute(
        f"UPDATE {clients} c SET last_purchase_on = GREATEST(c.last_purchase_on, x.last_on),"
        f" first_funded_on = COALESCE(c.first_funded_on, x.first_on)"
        f" FROM (SELECT client_id, max((traded_at AT TIME ZONE %s)::date) AS last_on,"
        f" min((traded_at AT TIME ZONE %s)::date) AS first_on FROM {STAGE} GROUP BY client_id) x"
        f" WHERE c.id = x.client_id AND (c.first_funded_on IS NULL"
        f" OR c.last_purchase_on IS NULL OR c.last_purchase_on < x.last_on)",
        [settings.TIME_ZONE, settings.TIME_ZONE],
    )


def _funding_dates_postgresql(cursor) -> None:
    """A deposit funds the account: first_funded_on moves back to the earliest deposit day."""
    clients = _q(Client._meta.db_table)
    cursor.execute(
        f"UPDATE {clients} c SET first_funded_on = x.first_on"
        f" FROM (SELECT client_id, min((at AT TIME ZONE %s)::date) AS first_on FROM {STAGE}"
        f" WHERE kind = %s GROUP BY client_id) x"
        f" WHERE c.id = x.client_id"
        f" AND (c.first_funded_on IS NULL OR c.first_funded_on > x.first_on)",
        [settings.TIME_ZONE, CashFlowKind.DEPOSIT.value],
    )


# SQLite and anything else -----------------------------------------------------------------


def _python_value(value):
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _rows(spec: KindSpec, clean: pd.DataFrame) -> list[dict]:
    date_cols = {c.attname for c in spec.columns if c.type == "date"}
    datetime_cols = {c.attname for c in spec.columns if c.type == "datetime"}
    decimal_cols = {c.attname for c in spec.columns if c.type == "decimal"}
    rows = []
    for record in clean.to_dict("records"):
        row = {k: _python_value(v) for k, v in record.items()}
        for k in date_cols & row.keys():
            row[k] = row[k].date() if row[k] is not None else None
        for k in datetime_cols & row.keys():
            row[k] = row[k].replace(tzinfo=dt.UTC) if row[k] is not None else None
        for k in decimal_cols & row.keys():
            row[k] = Decimal(row[k]) if row[k] is not None else None
        rows.append(row)
    return rows


def _existing(spec: KindSpec, rows: list[dict], compare: list[str]) -> dict[tuple, dict]:
    keys = _key_attnames(spec)
    manager = spec.model._default_manager
    first = keys[0]
    values = list({row[first] for row in rows})
    chunk = min(connection.features.max_query_params or 10_000, 10_000) - 10
    found: dict[tuple, dict] = {}
    for start in range(0, len(values), chunk):
        for current in manager.filter(**{f"{first}__in": values[start : start + chunk]}).values(
            *keys, *compare
        ):
            found[tuple(current[k] for k in keys)] = current
    return found


def _write_generic(
    spec: KindSpec, clean: pd.DataFrame, holdings_replace: bool, progress: Progress
) -> tuple[int, int, int]:
    model = spec.model
    n = len(clean)
    keys = _key_attnames(spec)
    compare = [c for c in clean.columns if c not in keys]
    _, now_cols = _auto_fields(model)
    rows = _rows(spec, clean)
    existing = _existing(spec, rows, compare)
    changed, created = [], 0
    for row in rows:
        current = existing.get(tuple(row[k] for k in keys))
        if current is None:
            created += 1
            changed.append(row)
        elif any(current[c] != row[c] for c in compare):
            changed.append(row)
    updated = len(changed) - created
    field_names = {f.attname: f.name for f in model._meta.concrete_fields}
    unique_fields = [field_names[k] for k in keys]
    update_fields = [field_names[c] for c in compare] + [field_names[c] for c in now_cols]
    batch = 1000
    for start in range(0, len(changed), batch):
        objs = [model(**row) for row in changed[start : start + batch]]
        if update_fields:
            model._default_manager.bulk_create(
                objs,
                update_conflicts=True,
                unique_fields=unique_fields,
                update_fields=update_fields,
            )
        else:
            model._default_manager.bulk_create(objs, ignore_conflicts=True)
        progress(min(n, start + batch), n)
    deleted = 0
    if model is Transaction:
        _purchase_dates_generic(clean)
    if model is CashFlow:
        _funding_dates_generic(clean)
    if model is Holding and holdings_replace:
        deleted = _holdings_replace_generic(rows)
    progress(n, n)
    return created, updated, deleted


def _purchase_dates_generic(clean: pd.DataFrame) -> None:
    local = clean["traded_at"].dt.tz_localize("UTC").dt.tz_convert(settings.TIME_ZONE).dt.date
    per_client = (
        pd.DataFrame({"client_id": clean["client_id"].astype("int64"), "day": local})
        .groupby("client_id")["day"]
        .agg(["min", "max"])
    )
    clients = list(
        Client.objects.filter(pk__in=[int(i) for i in per_client.index]).only(
            "id", "first_funded_on", "last_purchase_on"
        )
    )
    for client in clients:
        first, last = per_client.loc[client.pk, "min"], per_client.loc[client.pk, "max"]
        client.first_funded_on = client.first_funded_on or first
        if client.last_purchase_on is None or client.last_purchase_on < last:
            client.last_purchase_on = last
    Client.objects.bulk_update(clients, ["first_funded_on", "last_purchase_on"], batch_size=500)


def _funding_dates_generic(clean: pd.DataFrame) -> None:
    deposits = clean[clean["kind"] == CashFlowKind.DEPOSIT.value]
    if deposits.empty:
        return
    local = deposits["at"].dt.tz_localize("UTC").dt.tz_convert(settings.TIME_ZONE).dt.date
    first = (pd.DataFrame({"client_id": deposits["client_id"].astype("int64"), "day": local})
             .groupby("client_id")["day"].min())
    clients = list(Client.objects.filter(pk__in=[int(i) for i in first.index])
                   .only("id", "first_funded_on"))
    changed = []
    for client in clients:
        day = first.loc[client.pk]
        if client.first_funded_on is None or client.first_funded_on > day:
            client.first_funded_on = day
            changed.append(client)
    Client.objects.bulk_update(changed, ["first_funded_on"], batch_size=500)


def _holdings_replace_generic(rows: list[dict]) -> int:
    kept: dict[tuple, list[int]] = {}
    for row in rows:
        kept.setdefault((row["client_id"], row["as_of"]), []).append(row["product_id"])
    deleted = 0
    for (client_id, as_of), product_ids in kept.items():
        deleted += (
            Holding.objects.filter(client_id=client_id, as_of=as_of)
            .exclude(product_id__in=product_ids)
            .delete()[0]
        )
    return deleted
