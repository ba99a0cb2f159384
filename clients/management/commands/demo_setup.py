"""`manage.py demo_setup`: the demo logins plus, the first time, the demo data (`make run`)."""

from collections.abc import Callable, Iterator
from datetime import timedelta
from importlib import import_module

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils.module_loading import module_has_submodule

from clients.demo import BRANCHES, DemoSpec, demo_seed
from clients.models import Client
from core.models import Role, User
from core.services import branch_upsert, staff_user_upsert

DEMO_PASSWORD = "demo12345"
DEMO_BRANCH = BRANCHES[0][0]
# username, role, on the demo branch?, display name
DEMO_LOGINS: list[tuple[str, str, bool, str]] = [
    ("rm", Role.RM, True, "王经理"),
    ("rm2", Role.RM, True, "李经理"),
    ("manager", Role.BRANCH_MANAGER, True, "陆家嘴营业部负责人"),
    ("ops", Role.OPS, False, "运营 张"),
    ("compliance", Role.COMPLIANCE, False, "合规 刘"),
    ("admin", Role.ADMIN, False, "系统管理员"),
]


def demo_extensions() -> Iterator[Callable[..., None]]:
    """Each installed app's `demo.demo_extend(*, log)`, in INSTALLED_APPS order (lowest layer
    first): the newsletters, tasks, interactions and imports a new user should find. The clients
    app stays unaware of the apps above it; each extension is idempotent."""
    for config in apps.get_app_configs():
        if module_has_submodule(config.module, "demo"):
            extend = getattr(import_module(f"{config.name}.demo"), "demo_extend", None)
            if extend is not None:
                yield extend


class Command(BaseCommand):
    help = (
        "Create the demo logins if missing (password demo12345) and, when the database has no "
        "clients yet, seed deterministic demo data with `rm` and `rm2` owning real books. "
        "Safe to run again: existing logins and data are left alone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--clients", type=int, default=3000)
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args, **opts) -> None:
        code, name, city, _weight = BRANCHES[0]
        branch_upsert(code=code, name=name, city=city)
        for username, role, on_branch, display in DEMO_LOGINS:
            if not User.objects.filter(username=username).exists():
                # Only new logins get the demo password: a changed password is kept.
                staff_user_upsert(username=username, role=role, password=DEMO_PASSWORD,
                                  branch_code=DEMO_BRANCH if on_branch else None,
                                  display_name=display)
        if Client.objects.exists():
            self.stdout.write("Clients already present: demo data not reseeded.")
        else:
            report = demo_seed(spec=DemoSpec(clients=opts["clients"], seed=opts["seed"],
                                             named_rms=("rm", "rm2")))
            self.stdout.write(self.style.SUCCESS(
                f"Seeded {report.clients:,} clients and {report.transactions:,} transactions "
                f"in {report.total_seconds:.1f}s."))
            self._score_demo()
        for extend in demo_extensions():
            extend(log=self.stdout.write)
        self._print_logins()

    def _score_demo(self) -> None:
        """Two scoring runs a month apart, so a new user finds every client scored (with the
        why), a score history, a tier migration matrix and, through the refresh that follows
        each run, every persona and tier segment filled. Without a broker they run here."""
        from clients.scoring.services import scoring_default_as_of, scoring_run_start

        latest = scoring_default_as_of()
        for as_of in (latest - timedelta(days=30), latest):
            run = scoring_run_start(as_of=as_of, trigger="command")
            run.refresh_from_db()
            self.stdout.write(f"Scoring run for {as_of}: {run.status} "
                              f"({run.progress_done:,}/{run.progress_total:,} clients).")

    def _print_logins(self) -> None:
        users = {u.username: u for u in User.objects.filter(
            username__in=[u for u, *_rest in DEMO_LOGINS]).select_related("branch")}
        total = Client.objects.count()
        rows = []
        for username, role, _on_branch, _display in DEMO_LOGINS:
            user = users.get(username)
            if user is None:
                continue
            if role == Role.RM:
                sees = f"own book: {Client.objects.filter(rm=user).count():,} clients"
            elif role == Role.BRANCH_MANAGER:
                n = Client.objects.filter(branch=user.branch_id).count()
                sees = f"branch {user.branch.code if user.branch else '-'}: {n:,} clients"
            elif role == Role.OPS:
                sees = f"all {total:,} clients, personal data masked; segments, campaigns"
            elif role == Role.COMPLIANCE:
                sees = "approvals of campaigns and newsletters; audit log"
            else:
                sees = "everything, plus the Django admin at /admin/"
            rows.append((username, DEMO_PASSWORD, str(role), sees))
        self.stdout.write(f"\nDemo logins ({settings.SITE_URL.rstrip('/')}/):")
        self.stdout.write(f"  {'username':<11} {'password':<10} {'role':<15} sees")
        for username, password, role, sees in rows:
            self.stdout.write(f"  {username:<11} {password:<10} {role:<15} {sees}")
        self.stdout.write("  (the password is the demo default unless someone changed it)")
