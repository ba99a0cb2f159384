"""`manage.py seed_demo`: deterministic demo clients, products, holdings and purchases."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clients.demo import DemoDataExists, DemoSpec, demo_seed


class Command(BaseCommand):
    help = (
        "Generate deterministic demo data (same --clients and --seed give the same rows). "
        "Refuses to run on a database that already holds clients, products, holdings or "
        "transactions unless --reset is given, which deletes them first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--clients", type=int, default=3000)
        parser.add_argument("--seed", type=int, default=42)
        volume = parser.add_mutually_exclusive_group()
        volume.add_argument("--transactions-per-client", type=float, default=None,
                            help="average purchases per client (default 20)")
        volume.add_argument("--transactions", type=int, default=None,
                            help="total purchases over all clients")
        parser.add_argument("--months", type=int, default=24,
                            help="purchases fall in this many months up to yesterday")
        parser.add_argument("--reset", action="store_true",
                            help="delete existing clients, products, holdings and transactions")

    def handle(self, *args, **opts) -> None:
        if opts["clients"] < 1:
            raise CommandError("--clients must be at least 1.")
        spec = DemoSpec(clients=opts["clients"], seed=opts["seed"],
                        transactions=opts["transactions"],
                        transactions_per_client=opts["transactions_per_client"],
                        months=opts["months"])
        log = (lambda msg: self.stdout.write(msg)) if opts["verbosity"] > 1 else None
        try:
            report = demo_seed(spec=spec, reset=opts["reset"], log=log)
        except DemoDataExists as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"Seeded {report.clients:,} clients, {report.transactions:,} transactions, "
            f"{report.holdings:,} holdings, {report.products} products, {report.rms} RMs in "
            f"{report.branches} branches in {report.total_seconds:.1f}s."))
