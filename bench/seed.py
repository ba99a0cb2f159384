"""Benchmark the demo-data generator at scale against DATABASE_URL (PostgreSQL).

    DATABASE_URL=postgres://crm:crm@127.0.0.1/crm_bench \
        .venv/bin/python -m bench.seed --clients 1000000 --transactions 20000000

Replaces the database's clients, products, holdings and transactions (--reset semantics):
point it at a benchmark database, never at one whose data matters.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--transactions", type=int, default=20_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from django.db import connection

    from clients.demo import DemoSpec, demo_seed

    if connection.vendor != "postgresql":
        print("warning: not PostgreSQL; the figures say nothing about COPY", file=sys.stderr)
    started = time.perf_counter()
    report = demo_seed(
        spec=DemoSpec(clients=args.clients, seed=args.seed, transactions=args.transactions),
        reset=True,
        log=lambda msg: print(f"[{time.perf_counter() - started:7.1f}s] {msg}", flush=True),
    )
    total = time.perf_counter() - started
    rows = report.clients + report.transactions + report.holdings + report.products
    print("\nphase                          seconds")
    for phase, seconds in report.timings.items():
        print(f"{phase:<30} {seconds:8.1f}")
    print(f"{'total':<30} {total:8.1f}")
    print(f"\nclients {report.clients:,}  transactions {report.transactions:,}  "
          f"holdings {report.holdings:,}  products {report.products}  RMs {report.rms}")
    print(f"rows/s overall {rows / total:,.0f}; transactions/s (their phase) "
          f"{report.transactions / report.timings['generate+write transactions']:,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
