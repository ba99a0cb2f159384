"""The demo-data generator: deterministic, realistic enough to show every feature, consistent."""

from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from clients import demo
from clients.demo import DemoSpec, demo_seed
from clients.models import (
    Client,
    Holding,
    Product,
    ProductRiskLevel,
    ProductType,
    Transaction,
)
from core.access import role_of
from core.models import User

N = 300
SPEC = DemoSpec(clients=N, seed=7, transactions_per_client=8)


def _snapshot() -> tuple[list, list]:
    clients = list(Client.objects.order_by("id").values_list(
        "client_no", "name", "phone", "birth_date", "aum", "risk_level", "last_purchase_on"))
    amounts = list(Transaction.objects.order_by("id").values_list(
        "txn_id", "client__client_no", "amount", "revenue", "traded_at"))
    return clients, amounts


@pytest.fixture
def seeded(db):
    return demo_seed(spec=SPEC)


def _age(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def test_same_seed_gives_the_same_data_and_another_seed_differs(seeded):
    first = _snapshot()

    demo_seed(spec=SPEC, reset=True)
    again = _snapshot()
    demo_seed(spec=DemoSpec(clients=N, seed=8, transactions_per_client=8), reset=True)
    other = _snapshot()

    assert again == first
    assert len(first[0]) == N and len(first[1]) == N * 8
    assert [c[1] for c in other[0]] != [c[1] for c in first[0]]
    assert [t[2] for t in other[1]] != [t[2] for t in first[1]]


def test_every_persona_of_the_domain_has_members(seeded):
    today = timezone.localdate()
    clients = list(Client.objects.all())
    employed = {"employee", "professional", "executive"}
    personas = {
        "silver": [c for c in clients if 60 <= _age(c.birth_date, today) <= 69],
        "homemaker": [c for c in clients
                      if c.gender == "F" and c.occupation == "homemaker" and c.has_children],
        "gen_z": [c for c in clients if 1995 <= c.birth_date.year <= 2009],
        "student": [c for c in clients
                    if c.occupation == "student" and 18 <= _age(c.birth_date, today) <= 24],
        "independent_woman": [c for c in clients if c.gender == "F" and c.occupation in employed
                              and 25 <= _age(c.birth_date, today) <= 49],
        "sme_owner": [c for c in clients if c.occupation == "business_owner"],
        "tech_exec": [c for c in clients
                      if c.occupation == "executive" and c.industry == "technology"],
        "hnw": [c for c in clients if c.aum >= 5_000_000],
    }

    assert {name: len(members) for name, members in personas.items() if not members} == {}
    assert all(_age(c.birth_date, today) >= 18 for c in clients)


def test_service_levels_statuses_and_risk_dates_are_mixed(seeded):
    today = timezone.localdate()
    qs = Client.objects

    assert qs.filter(aum__gt=0, aum__lt=500_000).exists()
    assert qs.filter(aum__gte=500_000, aum__lt=5_000_000).exists()
    assert qs.filter(aum__gte=5_000_000).count() < N * 0.1
    assert set(qs.values_list("status", flat=True)) == {"active", "dormant", "closed"}
    assert qs.filter(status="active").count() > N * 0.7
    assert set(qs.exclude(risk_level="").values_list("risk_level", flat=True)) == {
        "C1", "C2", "C3", "C4", "C5"}
    assert qs.filter(risk_expires_on__lt=today).exists()
    assert qs.filter(risk_expires_on__gte=today,
                     risk_expires_on__lte=today + timedelta(days=30)).exists()
    for c in qs.exclude(risk_level=""):
        assert c.risk_expires_on == c.risk_assessed_on + timedelta(days=730)


def test_phone_tail_is_the_last_four_digits_of_an_eleven_digit_mobile(seeded):
    phones = list(Client.objects.values_list("phone", "phone_tail"))
    assert len(phones) == N
    for phone, tail in phones:
        assert len(phone) == 11 and phone.isdigit() and phone.startswith("1")
        assert tail == phone[-4:]


def test_never_funded_accounts_have_no_money_and_no_purchases(seeded):
    never = Client.objects.filter(first_funded_on__isnull=True)

    assert 0.05 * N < never.count() < 0.2 * N
    assert not never.filter(aum__gt=0).exists()
    assert not never.filter(last_purchase_on__isnull=False).exists()
    assert not Transaction.objects.filter(client__first_funded_on__isnull=True).exists()
    assert not Holding.objects.filter(client__first_funded_on__isnull=True).exists()


def test_every_product_type_and_risk_level_is_on_the_shelf(seeded):
    assert set(Product.objects.values_list("product_type", flat=True)) == set(ProductType.values)
    assert set(Product.objects.values_list("risk_level", flat=True)) == set(
        ProductRiskLevel.values)
    assert Product.objects.count() >= 200


def test_purchases_fall_in_the_last_24_months_and_match_the_client_dates(seeded):
    today = timezone.localdate()
    local_days = [timezone.localtime(t).date()
                  for t in Transaction.objects.values_list("traded_at", flat=True)]

    assert min(local_days) >= today - timedelta(days=731)
    assert max(local_days) <= today - timedelta(days=1)
    assert not Transaction.objects.filter(Q(amount__lte=0) | Q(revenue__lt=0)).exists()
    assert Transaction.objects.values("txn_id").distinct().count() == Transaction.objects.count()
    per_client = Transaction.objects.values("client_id").annotate(
        first=Min("traded_at"), last=Max("traded_at"))
    clients = Client.objects.in_bulk([row["client_id"] for row in per_client])
    for row in per_client:
        client = clients[row["client_id"]]
        assert client.last_purchase_on == timezone.localtime(row["last"]).date()
        assert client.first_funded_on <= timezone.localtime(row["first"]).date()
        assert client.opened_on <= client.first_funded_on


def test_holdings_add_up_to_aum_and_constraints_hold(seeded):
    sums = dict(Holding.objects.values("client_id").annotate(s=Sum("market_value"))
                .values_list("client_id", "s"))
    for client in Client.objects.filter(aum__gt=0):
        assert sums[client.pk] == client.aum
    assert not Holding.objects.values("client_id", "product_id", "as_of").annotate(
        n=Count("id")).filter(n__gt=1).exists()
    assert Client.objects.values("client_no").distinct().count() == N
    assert not Client.objects.filter(Q(aum__lt=0) | ~Q(gender__in=["M", "F"])).exists()
    assert Client.objects.filter(rm__isnull=False).count() > N * 0.8
    connection.check_constraints()  # every foreign key points at a row


def test_refuses_to_mix_into_existing_data_unless_reset(seeded):
    with pytest.raises(CommandError, match="--reset"):
        call_command("seed_demo", clients=50, seed=1)

    call_command("seed_demo", clients=50, seed=1, transactions=100, reset=True)

    assert Client.objects.count() == 50
    assert Transaction.objects.count() == 100


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY bulk path is PostgreSQL's")
def test_bulk_load_on_postgresql_restores_the_indexes_and_constraints(db, monkeypatch):
    def schema() -> list:
        with connection.cursor() as cur:
            cur.execute("""
                SELECT tablename, indexdef FROM pg_indexes WHERE tablename LIKE 'clients_%'
                UNION ALL
                SELECT conrelid::regclass::text, conname || ' ' || pg_get_constraintdef(oid)
                FROM pg_constraint WHERE conrelid::regclass::text LIKE 'clients_%'
                ORDER BY 1, 2""")
            return cur.fetchall()

    before = schema()
    monkeypatch.setattr(demo, "BULK_THRESHOLD_ROWS", 0)

    demo_seed(spec=SPEC, reset=True)

    assert schema() == before
    assert Transaction.objects.count() == N * 8


def test_demo_setup_creates_the_six_logins_once_and_seeds_books(db):
    call_command("demo_setup", clients=600)
    first_ids = list(Client.objects.order_by("id").values_list("client_no", flat=True))

    call_command("demo_setup", clients=600)

    roles = {u.username: role_of(u) for u in User.objects.filter(
        username__in=["rm", "rm2", "manager", "ops", "compliance", "admin"])}
    assert roles == {"rm": "rm", "rm2": "rm", "manager": "branch_manager", "ops": "ops",
                     "compliance": "compliance", "admin": "admin"}
    assert list(Client.objects.order_by("id").values_list("client_no", flat=True)) == first_ids
    rm, rm2, manager = (User.objects.get(username=u) for u in ("rm", "rm2", "manager"))
    assert rm.branch_id == rm2.branch_id == manager.branch_id
    assert Client.objects.filter(rm=rm).count() >= 100
    assert Client.objects.filter(rm=rm2).count() >= 100
    assert Client.objects.filter(branch=manager.branch).count() >= 200
    assert User.objects.get(username="admin").is_superuser
    assert rm.check_password("demo12345")


def test_demo_setup_scores_the_demo_twice_and_fills_the_personas(
        db, django_capture_on_commit_callbacks):
    """A new user of `make run` finds every client scored, a history and the personas filled."""
    import importlib

    from django.apps import apps

    from clients.models import ClientScore, CurrentScore
    from segments.models import SegmentMembership
    from tests.clients.test_scoring import ensure_scheme_v1

    ensure_scheme_v1()
    importlib.import_module("segments.migrations.0002_seed_segments").seed(apps, None)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo_setup", clients=400)

    assert CurrentScore.objects.count() == Client.objects.count()
    assert ClientScore.objects.values("as_of").distinct().count() == 2
    assert SegmentMembership.objects.filter(segment__code="silver_haired").exists()
    assert SegmentMembership.objects.filter(segment__kind="tier").count() == Client.objects.count()


# --- `make run` shows every capability with data ---------------------------------------------

@pytest.fixture
def demo_full(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo_setup", clients=400)


def test_demo_setup_sends_editions_through_the_outbox_with_reactions_and_approval(demo_full):
    from django.core import mail

    from newsletters.models import Delivery, Edition, Feedback, Suppression

    sent = Edition.objects.filter(status__in=["sent", "sending"])
    assert sent.count() == 2
    for edition in sent:
        assert edition.approved_by.username == "compliance" and edition.approved_hash
    assert Delivery.objects.filter(status="sent").count() == len(mail.outbox) > 0
    assert Delivery.objects.filter(opened_at__isnull=False).exists()
    assert Delivery.objects.filter(clicked_at__isnull=False).exists()
    assert Feedback.objects.exclude(comment="").count() == 2
    assert Feedback.objects.filter(rating__isnull=False).exists()
    assert Suppression.objects.filter(reason="unsubscribed").count() == 2
    assert Edition.objects.filter(status="scheduled").count() == 1


def test_demo_setup_run_twice_adds_nothing(demo_full, django_capture_on_commit_callbacks):
    from clients.models import ImportJob, Interaction
    from newsletters.models import Delivery, Edition
    from outreach.models import RMTask

    def counts():
        return [m.objects.count() for m in (RMTask, ImportJob, Interaction, Edition, Delivery)]

    before = counts()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo_setup", clients=400)
    assert counts() == before and all(before)


def test_every_demo_page_has_data_for_the_role_that_uses_it(demo_full, client):
    from clients.models import Interaction

    def page(username, url):
        client.force_login(User.objects.get(username=username))
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 200, url
        return response.content.decode()

    assert "每周市场观点" in page("ops", "/newsletters/")
    assert "本周市场观点：关注季末流动性" in page("ops", "/newsletters/publications/demo-weekly/")
    assert "风险测评即将过期" in page("rm", "/tasks/")
    assert "风险测评即将过期" in page("rm2", "/tasks/")
    assert "demo-products.csv" in page("ops", "/imports/")
    noted = Interaction.objects.filter(author__username="rm").exclude(note="").first()
    assert noted.note in page("rm", f"/clients/{noted.client.client_no}/")


def test_demo_tasks_are_open_overdue_and_done(demo_full):
    from outreach.models import RMTask

    today = timezone.localdate()
    mine = RMTask.objects.filter(assignee__username="rm", origin_type="demo")
    assert mine.filter(status="open", due_on__lt=today).exists()
    assert mine.filter(status="open", due_on__gte=today).exists()
    assert mine.filter(status="done").exists()


def test_the_demo_home_pages_and_the_onboarding_journey_have_data(demo_full, client):
    """make run: the RM's day (calls, scenario newcomers), the branch manager's team with a
    completion and a conversion, and a running onboarding journey with members on it."""
    from analytics.home import team_figures
    from campaigns.models import Campaign, CampaignMember

    manager = User.objects.get(username="manager")
    totals = team_figures(user=manager)["totals"]
    assert totals["due"] > 0 and totals["completion"] is not None
    assert totals["outcomes"] > 0 and 0 < totals["conversion"] < 100  # percent
    client.force_login(User.objects.get(username="rm"))
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "风险测评即将过期" in html and "建议话术" in html
    journey = Campaign.objects.get(code="journey-onboarding")
    assert journey.status == "running" and journey.journey_day is not None
    on_it = CampaignMember.objects.filter(campaign=journey, exclusion_reason="",
                                          exited_at__isnull=True)
    assert on_it.exists()


def test_the_demo_import_is_a_finished_job_with_its_file(demo_full):
    from clients.models import ImportJob

    job = ImportJob.objects.get(original_name="demo-products.csv")
    assert job.status == "succeeded" and job.rows_total == 40
    assert job.file.read().lstrip(b"\xef\xbb\xbf").startswith(b"product_code,")


def test_the_outbox_backend_writes_one_openable_eml_file_per_message(tmp_path):
    from email import message_from_bytes, policy

    from django.core.mail import EmailMultiAlternatives, get_connection

    backend = get_connection("core.mail.EmlFileBackend", file_path=str(tmp_path))
    messages = [EmailMultiAlternatives(f"报告 {i}", "text", "crm@example.com",
                                       [f"reader{i}@client.example"]) for i in range(3)]
    messages[0].attach_alternative("<p>html</p>", "text/html")

    assert backend.send_messages(messages) == 3

    files = sorted(tmp_path.iterdir())
    assert [f.suffix for f in files] == [".eml"] * 3
    parsed = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert sorted(m["To"] for m in parsed) == [f"reader{i}@client.example" for i in range(3)]
    assert sorted(m["Subject"] for m in parsed) == ["报告 0", "报告 1", "报告 2"]


def _manage(*args, env, timeout=300):
    import subprocess
    import sys

    from django.conf import settings

    return subprocess.run([sys.executable, "manage.py", *args], env=env, cwd=settings.BASE_DIR,
                          capture_output=True, text=True, timeout=timeout,
                          check=True).stdout.strip()


def _shell(code, *, env) -> str:
    """The last line `manage.py shell -c` prints (Django 5.2's shell first lists auto-imports)."""
    return _manage("shell", "-c", code, env=env).splitlines()[-1]


def _local_env(tmp_path, **extra):
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("CELERY_BROKER_URL", "SITE_URL", "EMAIL_URL", "PORT")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.local",
               DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}", **extra)
    return env


def test_links_in_demo_emails_follow_the_port_unless_site_url_is_set(tmp_path):
    code = ("from django.conf import settings; from newsletters import links; "
            "print(settings.SITE_URL, links._absolute('/n/u/x/'))")
    on_8101 = _shell(code, env=_local_env(tmp_path, PORT="8101"))
    assert on_8101.split() == ["http://127.0.0.1:8101", "http://127.0.0.1:8101/n/u/x/"]
    fixed = _shell(code, env=_local_env(tmp_path, PORT="8101", SITE_URL="https://crm.example"))
    assert fixed.split() == ["https://crm.example", "https://crm.example/n/u/x/"]



# --- scenario data: cash flows and maturities ------------------------------------------------

def _flows() -> list:
    from clients.models import CashFlow

    return list(CashFlow.objects.order_by("id").values_list(
        "flow_id", "client__client_no", "at", "amount", "kind"))


def test_cash_flows_are_deterministic_and_begin_with_the_first_deposit(seeded):
    from clients.models import CashFlow

    first = _flows()
    demo_seed(spec=SPEC, reset=True)

    assert _flows() == first
    assert seeded.cash_flows == len(first) > N
    funded = Client.objects.filter(first_funded_on__isnull=False)
    earliest = dict(CashFlow.objects.values("client_id").annotate(at=Min("at"))
                    .values_list("client_id", "at"))
    assert set(earliest) == set(funded.values_list("id", flat=True))
    for client in funded:
        assert timezone.localtime(earliest[client.pk]).date() == client.first_funded_on
        assert CashFlow.objects.filter(client=client, kind="deposit",
                                       at=earliest[client.pk]).exists()
    assert max(timezone.localtime(a).date() for a in CashFlow.objects.values_list(
        "at", flat=True)) <= timezone.localdate() - timedelta(days=1)


def test_cash_flows_net_to_about_the_aum_and_closed_accounts_to_nothing(seeded):
    from clients.models import CashFlow

    net = dict(CashFlow.objects.values("client_id").annotate(s=Sum("amount"))
               .values_list("client_id", "s"))
    for client in Client.objects.filter(first_funded_on__isnull=False):
        if client.status == "closed":
            assert net[client.pk] == 0
        else:
            assert 0.79 * float(client.aum) <= float(net[client.pk]) <= 1.06 * float(client.aum)
    kinds = dict(CashFlow.objects.values("kind").annotate(n=Count("id")).values_list("kind", "n"))
    assert kinds["deposit"] > kinds["withdrawal"] > kinds["transfer"] > 0


def test_active_clients_move_money_a_few_times_a_year(seeded):
    from clients.models import CashFlow

    today = timezone.localdate()
    since = today - timedelta(days=365)
    active = Client.objects.filter(status="active", first_funded_on__lt=since - timedelta(days=1))
    later = CashFlow.objects.filter(client__in=active, at__date__gte=since).count()

    assert 1 <= later / active.count() <= 6


def test_a_few_percent_deposited_a_lot_in_the_last_five_trading_days(seeded):
    from clients.models import CashFlow
    from outreach.calendar import trading_days

    today = timezone.localdate()
    # The four trading days before today lie in "the last 5 trading days" whether or not the
    # scenario counts today as one of them.
    days = trading_days(today - timedelta(days=30), today - timedelta(days=1))[-4:]
    deposits = (CashFlow.objects.filter(kind="deposit", at__date__gte=days[0])
                .values("client_id").annotate(s=Sum("amount")).values_list("client_id", "s"))
    aum = dict(Client.objects.values_list("id", "aum"))
    large = {c for c, s in deposits if s >= 100_000 or s >= aum[c] * 3 / 10}
    on_trading_days = {c for c, at in CashFlow.objects.filter(
        kind="deposit", client_id__in=large).values_list("client_id", "at")
        if timezone.localtime(at).date() in days}

    assert 0.01 * N <= len(large) <= 0.12 * N
    assert len(on_trading_days) >= 0.01 * N


def test_fixed_income_and_wealth_management_holdings_mature_some_within_two_weeks(seeded):
    today = timezone.localdate()
    dated = Product.objects.filter(maturity_date__isnull=False)
    effective = [(h.maturity_date or h.product.maturity_date, h.product.product_type)
                 for h in Holding.objects.select_related("product")]
    maturing = [d for d, _t in effective if d is not None]
    soon = [d for d in maturing if today < d <= today + timedelta(days=14)]

    assert set(dated.values_list("product_type", flat=True)) == {"fixed_income",
                                                                  "wealth_management"}
    assert dated.filter(maturity_date__lte=today + timedelta(days=14)).exists()
    assert all(d > today for d in maturing)
    assert {t for d, t in effective if d is not None} <= {"fixed_income", "wealth_management"}
    assert 0 < len(soon) < len(maturing)
    assert len({h.client_id for h in Holding.objects.filter(maturity_date__in=soon)}) >= 2


def test_the_demo_has_clients_in_every_scenario(seeded):
    """make run shows each scenario with members: the generator's openings, fundings, deposits,
    maturities, assessments and birthdays fall inside each scenario's window."""
    from segments.models import Segment, SegmentKind
    from segments.services import segment_refresh_run, segments_refresh_all

    for refresh in segments_refresh_all(kinds=[SegmentKind.SCENARIO], queue=False):
        segment_refresh_run(refresh_id=refresh.pk)
    sizes = dict(Segment.objects.filter(kind=SegmentKind.SCENARIO).annotate(
        n=Count("memberships")).values_list("code", "n"))
    assert set(sizes) == {"scn_zombie_account", "scn_dormant", "scn_cash_inflow",
                          "scn_product_maturity", "scn_risk_expiring", "scn_birthday",
                          "scn_onboarding"}
    assert all(n > 0 for n in sizes.values()), sizes
    assert all(n < N / 2 for n in sizes.values()), sizes  # a scenario is a few, not everyone
