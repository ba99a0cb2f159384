"""Import 1,000,000 transactions through the product vs. PostgreSQL's own COPY of the same file.

    DATABASE_URL=postgres://crm:crm@127.0.0.1/crm_importbench \
        python -m bench.import_transactions --rows 1000000 --repeat 5

Run it against a dedicated database (migrated; the script creates --clients clients and 300
products set-based when there are none). Each repetition times, in rotating order:

* product — the import job run end to end (read + validate + write, `import_job_run`, the
  service behind the upload page), with the read / validate / write phases split out from the
  job's own progress reports. Before each product run the bench's transactions are deleted,
  clients' purchase dates reset and both tables VACUUM ANALYZEd, so every run starts equal.
* constrained COPY — `COPY … FROM STDIN (FORMAT csv, HEADER)` of the very same file into a table
  of the file's shape carrying the destination's integrity: UNIQUE (txn_id), FOREIGN KEYs
  client_no → clients_client(client_no) and product_code → clients_product(product_code)
  (DEFERRABLE INITIALLY DEFERRED like Django's, so the timing includes the commit), CHECK
  (amount >= 0), CHECK (revenue >= 0), and the secondary indexes of clients_transaction
  (client + traded_at DESC, traded_at, product). This is the target's yardstick.
* bare COPY — the same file into the same shape with only UNIQUE (txn_id), for transparency.

Medians and both ratios are printed at the end.
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
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
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


def _reset() -> None:
    """Remove the bench's transactions, reset purchase dates, vacuum: every run starts equal."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM clients_transaction WHERE txn_id LIKE %s", [PREFIX + "%"])
        cursor.execute("UPDATE clients_client SET last_purchase_on = NULL, first_funded_on = NULL"
                       " WHERE last_purchase_on IS NOT NULL OR first_funded_on IS NOT NULL")
        cursor.execute(f"DROP TABLE IF EXISTS {BASELINE}")
        cursor.execute("VACUUM ANALYZE clients_transaction")
        cursor.execute("VACUUM ANALYZE clients_client")
        cursor.execute("CHECKPOINT")


def _time_product(path: Path) -> dict[str, float]:
    from django.core.files import File

    from clients.import_services import import_job_create, import_job_run
    from clients.models import JobStatus

    _reset()
    with path.open("rb") as handle:
        job = import_job_create(kind="transactions", file=File(handle, name=path.name),
                                queue=False)
    marks: dict[str, float] = {}

    def on_progress(phase: str, done: int, total: int) -> None:
        marks.setdefault(phase, time.perf_counter())

    began = time.perf_counter()
    job = import_job_run(job_id=job.pk, on_progress=on_progress)
    ended = time.perf_counter()
    if job.status != JobStatus.SUCCEEDED:
        sys.exit(f"import failed: {job.message} {job.errors[:5]}")
    job.file.delete(save=False)
    t = {"product": ended - began, "read": marks["validating"] - began,
         "validate": marks["writing"] - marks["validating"], "write": ended - marks["writing"]}
    print(f"  product:          {t['product']:7.2f} s  (read {t['read']:.2f}, validate "
          f"{t['validate']:.2f}, write {t['write']:.2f}; {job.rows_created:,} created)",
          flush=True)
    return t


def _time_copy(path: Path, constrained: bool) -> float:
    from django.db import connection, transaction

    _reset()
    fk = "REFERENCES {} DEFERRABLE INITIALLY DEFERRED"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {BASELINE} (txn_id varchar(40) NOT NULL UNIQUE,"
            f" client_no varchar(32) NOT NULL"
            f" {fk.format('clients_client (client_no)') if constrained else ''},"
            f" product_code varchar(32) NOT NULL"
            f" {fk.format('clients_product (product_code)') if constrained else ''},"
            f" traded_at timestamptz NOT NULL,"
            f" amount numeric(18, 2) NOT NULL {'CHECK (amount >= 0)' if constrained else ''},"
            f" revenue numeric(18, 2) NOT NULL {'CHECK (revenue >= 0)' if constrained else ''},"
            f" channel varchar(10) NOT NULL)")
        if constrained:
            cursor.execute(f"CREATE INDEX {BASELINE}_client ON {BASELINE}"
                           " (client_no, traded_at DESC)")
            cursor.execute(f"CREATE INDEX {BASELINE}_traded ON {BASELINE} (traded_at)")
            cursor.execute(f"CREATE INDEX {BASELINE}_product ON {BASELINE} (product_code)")
    began = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor, path.open("rb") as handle:
        cursor.execute("SET LOCAL TIME ZONE 'Asia/Shanghai'")
        cursor.copy_expert(f"COPY {BASELINE} FROM STDIN WITH (FORMAT csv, HEADER true)", handle)
    elapsed = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {BASELINE}")
        copied = cursor.fetchone()[0]
        cursor.execute(f"DROP TABLE {BASELINE}")
    label = "constrained COPY" if constrained else "bare COPY"
    print(f"  {label + ':':17} {elapsed:7.2f} s  ({copied:,} rows)", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--only", choices=["product", "constrained", "bare"], action="append")
    args = parser.parse_args()
    _setup()
    client_nos, product_codes = _ensure_reference_data(args.clients, 300)
    which = args.only or ["product", "constrained", "bare"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transactions.csv"
        _write_file(path, args.rows, client_nos, product_codes)
        print(f"{args.rows:,} transactions over {len(client_nos):,} clients and "
              f"{len(product_codes):,} products; file {path.stat().st_size / 1e6:.0f} MB; "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
        runs: dict[str, list] = {k: [] for k in which}
        for i in range(args.repeat):
            print(f"run {i + 1}/{args.repeat}  (load average {os.getloadavg()[0]:.2f})",
                  flush=True)
            order = which[i % len(which):] + which[:i % len(which)]
            for kind in order:
                if kind == "product":
                    runs[kind].append(_time_product(path))
                else:
                    runs[kind].append(_time_copy(path, constrained=kind == "constrained"))
        _reset()
    med = statistics.median
    print(f"\nmedians over {args.repeat} runs (load average now "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}):")
    if "product" in runs:
        p = {k: med(r[k] for r in runs["product"]) for k in runs["product"][0]}
        print(f"  product import {p['product']:.2f} s (read {p['read']:.2f}, validate "
              f"{p['validate']:.2f}, write {p['write']:.2f})")
    for kind in ("constrained", "bare"):
        if kind in runs:
            print(f"  {kind} COPY {med(runs[kind]):.2f} s")
            if "product" in runs:
                print(f"    ratio product / {kind} COPY: {p['product'] / med(runs[kind]):.2f}")


if __name__ == "__main__":
    main()
