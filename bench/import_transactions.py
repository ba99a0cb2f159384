"""Import 1,000,000 transactions through the product vs. PostgreSQL's own COPY of the same file.

    DATABASE_URL=postgres://crm:crm@127.0.0.1/crm python -m bench.import_transactions --rows 1000000

Uses the database's clients and products (seed them with `manage.py seed_demo`); when there are
none it creates --clients clients and 300 products set-based. Each repeat times (a) the import
job run end to end — read, validate, write — through the service the upload page uses, and
(b) COPY of the same file into a table of the file's shape with the same unique index on
txn_id; the runs alternate and the medians and their ratio are printed.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

BASELINE = "bench_txn_copy"
PREFIX = "BENCH"


def _setup() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs DATABASE_URL pointing to PostgreSQL.")


def _ensure_reference_data(n_clients: int, n_products: int) -> tuple[np.ndarray, np.ndarray]:
    from django.db import connection, transaction

    from clients.models import Client, Product

    def fill(model, count: int, exprs: dict[str, str]) -> None:
        columns, selects, params = [], [], []
        for f in model._meta.concrete_fields:
            if f.primary_key:
                continue
            columns.append(connection.ops.quote_name(f.column))
            if f.attname in exprs:
                selects.append(exprs[f.attname])
            elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                selects.append("now()")
            else:
                selects.append(f"%s::{f.db_type(connection)}")
                params.append(f.get_db_prep_save(f.get_default(), connection))
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
                           f"SELECT {', '.join(selects)} FROM generate_series(1, {count}) g",
                           params)

    with transaction.atomic():
        if not Client.objects.exists():
            print(f"creating {n_clients:,} clients", flush=True)
            fill(Client, n_clients, {"client_no": "'BC' || lpad(g::text, 8, '0')",
                                     "name": "'客户' || g", "risk_level": "'C3'"})
        if not Product.objects.exists():
            print(f"creating {n_products:,} products", flush=True)
            fill(Product, n_products, {"product_code": "'BP' || lpad(g::text, 5, '0')",
                                       "name": "'产品' || g", "product_type": "'fund'",
                                       "risk_level": "'R3'"})
    return (np.array(Client.objects.values_list("client_no", flat=True)),
            np.array(Product.objects.values_list("product_code", flat=True)))


def _write_file(path: Path, rows: int, client_nos: np.ndarray, product_codes: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    start = pd.Timestamp("2024-11-21").value // 10**9
    seconds = rng.integers(0, 2 * 365 * 86400, rows)
    frame = pd.DataFrame({
        "txn_id": pd.Series(np.arange(rows)).map(f"{PREFIX}{{:012d}}".format),
        "client_no": client_nos[rng.integers(0, len(client_nos), rows)],
        "product_code": product_codes[rng.integers(0, len(product_codes), rows)],
        "traded_at": pd.to_datetime(start + seconds, unit="s"),
        "amount": (rng.integers(1_000_00, 500_000_00, rows) / 100).round(2),
        "revenue": (rng.integers(0, 2_000_00, rows) / 100).round(2),
        "channel": rng.choice(["app", "web", "branch", "rm", "phone"], rows),
    })
    frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S", float_format="%.2f")


def _clear_imported() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM clients_transaction WHERE txn_id LIKE %s", [PREFIX + "%"])
        cursor.execute("VACUUM ANALYZE clients_transaction") if not connection.in_atomic_block \
            else None


def _time_product(path: Path) -> float:
    from django.core.files import File

    from clients.import_services import import_job_create, import_job_run
    from clients.models import JobStatus

    _clear_imported()
    with path.open("rb") as handle:
        job = import_job_create(kind="transactions", file=File(handle, name=path.name),
                                queue=False)
    began = time.perf_counter()
    job = import_job_run(job_id=job.pk)
    elapsed = time.perf_counter() - began
    if job.status != JobStatus.SUCCEEDED:
        sys.exit(f"import failed: {job.message} {job.errors[:5]}")
    job.file.delete(save=False)
    print(f"  product: {elapsed:7.2f} s  ({job.rows_created:,} created)", flush=True)
    return elapsed


def _time_copy(path: Path) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {BASELINE}")
        cursor.execute(f"CREATE TABLE {BASELINE} (txn_id varchar(40) NOT NULL, client_no"
                       " varchar(32) NOT NULL, product_code varchar(32) NOT NULL, traded_at"
                       " timestamptz NOT NULL, amount numeric(18, 2) NOT NULL, revenue"
                       " numeric(18, 2) NOT NULL, channel varchar(10) NOT NULL)")
        cursor.execute(f"CREATE UNIQUE INDEX {BASELINE}_txn_id ON {BASELINE} (txn_id)")
        cursor.execute("SET TIME ZONE 'Asia/Shanghai'")
        began = time.perf_counter()
        with path.open("rb") as handle:
            cursor.copy_expert(f"COPY {BASELINE} FROM STDIN WITH (FORMAT csv, HEADER true)",
                               handle)
        elapsed = time.perf_counter() - began
        cursor.execute("SET TIME ZONE 'UTC'")
        cursor.execute(f"DROP TABLE {BASELINE}")
    print(f"  COPY:    {elapsed:7.2f} s", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=100_000)
    args = parser.parse_args()
    _setup()
    client_nos, product_codes = _ensure_reference_data(args.clients, 300)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transactions.csv"
        _write_file(path, args.rows, client_nos, product_codes)
        print(f"{args.rows:,} transactions over {len(client_nos):,} clients and "
              f"{len(product_codes):,} products; file {path.stat().st_size / 1e6:.0f} MB",
              flush=True)
        product, baseline = [], []
        for i in range(args.repeat):
            print(f"run {i + 1}/{args.repeat}", flush=True)
            if i % 2 == 0:
                product.append(_time_product(path))
                baseline.append(_time_copy(path))
            else:
                baseline.append(_time_copy(path))
                product.append(_time_product(path))
        _clear_imported()
    p, b = statistics.median(product), statistics.median(baseline)
    print(f"median product import: {p:.2f} s; median COPY baseline: {b:.2f} s; "
          f"ratio {p / b:.2f}")


if __name__ == "__main__":
    main()
