"""Value scoring runs: the DOMAIN.md table, the window, history, re-runs, resume, validation."""

import calendar
import datetime as dt
import random
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from clients.models import Transaction
from clients.scoring.models import (
    ClientScore,
    CurrentScore,
    ScoringChunk,
    ScoringCurrent,
    ScoringRun,
    ScoringScheme,
)
from clients.scoring.schemes import scheme_publish
from clients.scoring.selectors import (
    client_score_history,
    score_distribution,
    score_explanation,
    tier_distribution,
    tier_migration,
    tier_migration_clients,
)
from clients.scoring.services import (
    scoring_chunk_run,
    scoring_run_resume,
    scoring_run_start,
)
from clients.scoring.signals import scoring_run_succeeded
from clients.scoring.tasks import scoring_nightly_task
from core.errors import ApplicationError
from tests.factories import ClientFactory, ProductFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
AS_OF = dt.date(2026, 10, 31)
V1 = {
    "window_months": 12,
    "amount_bounds": [10000, 50000, 100000, 500000, 1000000],
    "frequency_bounds": [2, 5, 10, 50, 100],
    "benefit_bounds": [10000, 30000, 100000, 300000, 500000],
    "high_score": 4,
    "recent_days": 30,
    "tier_precedence": ["guiding", "development", "potential", "long_tail"],
}


def ensure_scheme_v1() -> ScoringScheme:
    """Version 1 as the data migration seeds it (transactional tests flush seeded rows)."""
    return ScoringScheme.objects.get_or_create(version=1, defaults=V1)[0]


# --- an independent plain-Python reading of DOMAIN.md's table -----------------------------
def reference_window(as_of: dt.date, months: int) -> tuple[dt.date, dt.date]:
    month_index = as_of.year * 12 + (as_of.month - 1) - months
    year, month = divmod(month_index, 12)
    day = min(as_of.day, calendar.monthrange(year, month + 1)[1])
    return dt.date(year, month + 1, day) + dt.timedelta(days=1), as_of


def reference_band(value, bounds) -> int:
    score = 1
    for bound in bounds:
        if value >= Fraction(str(bound)):
            score += 1
    return score


def reference_scores(purchases_by_client: dict, as_of: dt.date, scheme: dict) -> dict:
    """client id -> (amount, purchases, benefit, recency, a, f, b, total, tier)."""
    first, last = reference_window(as_of, scheme["window_months"])
    result = {}
    for client_id, purchases in purchases_by_client.items():
        inside = [(at, amount, revenue) for at, amount, revenue in purchases
                  if first <= at.astimezone(SHANGHAI).date() <= last]
        amount = sum((a for _, a, _ in inside), Decimal(0))
        benefit = sum((r for _, _, r in inside), Decimal(0))
        frequency = Fraction(len(inside), scheme["window_months"])
        recency = (as_of - max(at.astimezone(SHANGHAI).date() for at, _, _ in inside)).days \
            if inside else None
        a = reference_band(Fraction(amount), scheme["amount_bounds"])
        f = reference_band(frequency, scheme["frequency_bounds"])
        b = reference_band(Fraction(benefit), scheme["benefit_bounds"])
        rules = {"guiding": f >= scheme["high_score"], "development": a >= scheme["high_score"],
                 "potential": recency is not None and recency <= scheme["recent_days"],
                 "long_tail": True}
        tier = next(rule for rule in scheme["tier_precedence"] if rules[rule])
        result[client_id] = (amount, len(inside), benefit, recency, a, f, b, a + f + b, tier)
    return result


def stored_scores(run: ScoringRun) -> dict:
    return {s.client_id: (s.amount, s.purchases, s.benefit, s.recency_days, s.amount_score,
                          s.frequency_score, s.benefit_score, s.total_score, s.tier)
            for s in ClientScore.objects.filter(as_of=run.as_of, scheme=run.scheme)}


def local(day: dt.date, hour: int = 12, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SHANGHAI)


# --- fixtures ----------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def product(db):
    return ProductFactory(product_code="F000001")


@pytest.fixture
def buy(product):
    """`buy(client, at, amount, revenue)` -> a purchase (txn ids are unique per test)."""
    counter = iter(range(10**9))

    def _buy(client, at, amount="1000.00", revenue="10.00"):
        return Transaction.objects.create(txn_id=f"T{next(counter):09d}", client=client,
                                          product=product, traded_at=at,
                                          amount=Decimal(amount), revenue=Decimal(revenue))

    return _buy


@pytest.fixture
def score(db, django_capture_on_commit_callbacks):
    """`score(as_of, **kw)` -> the finished run (eager Celery runs the chunks on commit)."""

    def _score(as_of=AS_OF, **kwargs):
        kwargs.setdefault("trigger", "command")
        with django_capture_on_commit_callbacks(execute=True):
            run = scoring_run_start(as_of=as_of, **kwargs)
        run.refresh_from_db()
        return run

    return _score


# --- the table over random data ----------------------------------------------------------
def _random_book(rng: random.Random, product, clients: int) -> dict:
    first, last = reference_window(AS_OF, 12)
    edge_amounts = [b + d for b in V1["amount_bounds"] for d in (Decimal("-0.01"), 0)]
    edge_benefits = [b + d for b in V1["benefit_bounds"] for d in (Decimal("-0.01"), 0)]
    edge_counts = [0, 0, 1, 2, 23, 24, 25, 59, 60, 119, 120]
    in_window = [local(first, 0, 0), local(last, 23, 59, 59), local(last, 23, 30),
                 local(first, 0, 0, 1)]
    outside = [local(first - dt.timedelta(days=1), 23, 59, 59),
               local(last + dt.timedelta(days=1), 0)]
    book, rows = {}, []
    span = (last - first).days
    for i in range(clients):
        client = ClientFactory(client_no=f"R{i:06d}")
        n = rng.choice(edge_counts) if i > 2 else [599, 600, 1200][i]
        total_amount = Decimal(rng.choice(edge_amounts + [rng.randint(0, 2_000_000)]))
        total_revenue = Decimal(rng.choice(edge_benefits + [rng.randint(0, 700_000)]))
        purchases = []
        for k in range(n):
            if rng.random() < 0.2:
                at = rng.choice(in_window)
            else:
                day = first + dt.timedelta(days=rng.randint(0, span))
                at = local(day, rng.randint(0, 23), rng.randint(0, 59))
            last_one = k == n - 1
            amount = (total_amount - sum(p[1] for p in purchases)) if last_one else \
                (total_amount / n).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
            revenue = (total_revenue - sum(p[2] for p in purchases)) if last_one else \
                (total_revenue / n).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
            purchases.append((at, amount, revenue))
        for _ in range(rng.randint(0, 2)):
            purchases.append((rng.choice(outside), Decimal(rng.randint(1, 900_000)),
                              Decimal(rng.randint(1, 90_000))))
        book[client.pk] = purchases
        rows += [Transaction(txn_id=f"X{client.pk}-{k}", client=client, product=product,
                             traded_at=at, amount=amount, revenue=revenue)
                 for k, (at, amount, revenue) in enumerate(purchases)]
    Transaction.objects.bulk_create(rows, batch_size=2000)
    return book


@pytest.mark.parametrize("seed", [1, 2])
def test_a_run_over_random_data_matches_an_independent_reading_of_the_table(
        seed, product, score):
    book = _random_book(random.Random(seed), product, clients=250)

    run = score(AS_OF, chunk_clients=40)

    assert run.status == "succeeded", run.error
    assert run.chunk_count == 7 and run.progress_done == run.progress_total == 250
    expected = reference_scores(book, AS_OF, V1)
    stored = stored_scores(run)
    assert stored.keys() == expected.keys()
    mismatches = {cid: (stored[cid], expected[cid]) for cid in expected
                  if stored[cid] != expected[cid]}
    assert not mismatches
    assert sum(run.tier_counts.values()) == 250
    assert set(run.timings) >= {"aggregate", "band", "write", "finish"}


# --- the window --------------------------------------------------------------------------
def test_window_counts_the_first_and_last_local_day_and_nothing_outside(buy, score):
    client = ClientFactory()
    buy(client, local(dt.date(2025, 11, 1), 0, 0), amount="1.00")  # first day, midnight
    buy(client, local(dt.date(2026, 10, 31), 23, 30), amount="10.00")  # as_of, 23:30 local
    buy(client, local(dt.date(2025, 10, 31), 23, 59, 59), amount="100.00")  # day before
    buy(client, local(dt.date(2026, 11, 1), 0, 0), amount="1000.00")  # day after as_of

    run = score(dt.date(2026, 10, 31))

    s = ClientScore.objects.get(client=client, run=run)
    assert (s.amount, s.purchases, s.recency_days) == (Decimal("11.00"), 2, 0)


def test_the_last_day_ends_at_midnight_shanghai_not_utc(buy, score):
    client = ClientFactory()
    # 2026-10-31 23:30 in Shanghai is 15:30 UTC the same day; 00:30 on 11-01 is still 10-31 UTC.
    buy(client, dt.datetime(2026, 10, 31, 16, 30, tzinfo=dt.UTC), amount="7.00")

    run = score(dt.date(2026, 10, 31))

    assert ClientScore.objects.get(client=client, run=run).purchases == 0


# --- clients without purchases -----------------------------------------------------------
def test_a_client_without_purchases_still_gets_the_lowest_score(score):
    client = ClientFactory()

    run = score()

    s = ClientScore.objects.get(client=client, run=run)
    assert (s.amount, s.purchases, s.frequency, s.benefit, s.recency_days) == (0, 0, 0, 0, None)
    assert (s.amount_score, s.frequency_score, s.benefit_score, s.total_score) == (1, 1, 1, 3)
    assert s.tier == "long_tail"
    assert CurrentScore.objects.get(client=client).score == s


# --- tiers -------------------------------------------------------------------------------
def test_tier_follows_the_first_matching_rule(buy, score):
    frequent = ClientFactory()
    for day in range(120):  # 10 purchases a month -> frequency score 4
        buy(frequent, local(AS_OF - dt.timedelta(days=day)), amount="1000000.00")
    big = ClientFactory()
    buy(big, local(AS_OF - dt.timedelta(days=200)), amount="100000.00")  # amount score 4
    recent = ClientFactory()
    buy(recent, local(AS_OF - dt.timedelta(days=30)), amount="1.00")
    lapsed = ClientFactory()
    buy(lapsed, local(AS_OF - dt.timedelta(days=31)), amount="1.00")

    run = score()

    tiers = dict(ClientScore.objects.filter(run=run).values_list("client_id", "tier"))
    assert tiers == {frequent.pk: "guiding", big.pk: "development", recent.pk: "potential",
                     lapsed.pk: "long_tail"}
    assert run.tier_counts == {"guiding": 1, "development": 1, "potential": 1, "long_tail": 1}


# --- history, schemes, re-runs -----------------------------------------------------------
def test_a_new_scheme_version_is_used_by_the_next_run_and_the_old_rows_stay(buy, score):
    client = ClientFactory()
    buy(client, local(AS_OF - dt.timedelta(days=3)), amount="20000.00")
    first = score(AS_OF - dt.timedelta(days=1))
    v2 = scheme_publish(data={**V1, "amount_bounds": [100, 1000, 10000, 50000, 100000]})

    second = score(AS_OF)

    assert (first.scheme.version, second.scheme.version) == (1, v2.version)
    history = list(client_score_history(client=client))
    assert [(h.as_of, h.scheme.version, h.amount_score) for h in history] == [
        (AS_OF, 2, 4), (AS_OF - dt.timedelta(days=1), 1, 2)]
    assert CurrentScore.objects.get(client=client).score == history[0]


def test_re_running_a_date_replaces_its_rows_and_never_doubles(buy, score):
    client = ClientFactory()
    buy(client, local(AS_OF), amount="20000.00")
    first = score()
    buy(client, local(AS_OF), amount="40000.00")

    second = score()

    rows = ClientScore.objects.filter(client=client, as_of=AS_OF)
    assert rows.count() == 1
    assert rows.get().run_id == second.pk and rows.get().amount == Decimal("60000.00")
    assert CurrentScore.objects.get(client=client).score == rows.get()
    assert first.status == second.status == "succeeded"


def test_an_older_date_does_not_replace_the_current_score(buy, score):
    client = ClientFactory()
    score(AS_OF)
    score(AS_OF - dt.timedelta(days=7))

    assert CurrentScore.objects.get(client=client).as_of == AS_OF


def test_current_scores_are_a_view_over_one_pointer_an_older_run_does_not_move(buy, score):
    client = ClientFactory()
    buy(client, local(AS_OF - dt.timedelta(days=3)), amount="20000.00")
    current = score(AS_OF)
    pointer = ScoringCurrent.objects.get()
    assert (pointer.as_of, pointer.scheme_id, pointer.run_id) == (AS_OF, current.scheme_id,
                                                                   current.pk)

    older = score(AS_OF - dt.timedelta(days=7))

    assert older.status == "succeeded"
    pointer.refresh_from_db()
    assert (pointer.as_of, pointer.run_id) == (AS_OF, current.pk)
    row = CurrentScore.objects.get(client=client)
    assert row.score == ClientScore.objects.get(client=client, as_of=AS_OF)
    assert (row.as_of, row.tier, row.total_score) == (AS_OF, row.score.tier,
                                                      row.score.total_score)
    # Deleting a client (and with it its scores) needs no write to the view.
    client.delete()
    assert not CurrentScore.objects.exists()


def test_resume_after_the_aggregate_but_before_any_chunk_reuses_it(
        buy, django_capture_on_commit_callbacks, monkeypatch):
    from clients.scoring import engine
    from clients.scoring.services import scoring_run_aggregate

    _book_of(30, buy)
    run = scoring_run_start(as_of=AS_OF, chunk_clients=10)  # nothing queued (no commit)
    queued = []
    monkeypatch.setattr("clients.scoring.services._queue_chunks",
                        lambda run_id, ids: queued.append(ids))
    scoring_run_aggregate(run_id=run.pk)  # the worker dies right after the aggregate step
    run.refresh_from_db()
    assert run.aggregated and engine.staging_exists(run.pk) and len(queued[0]) == 3
    assert run.chunks_done == 0 and "aggregate" in run.timings
    monkeypatch.undo()

    calls = []
    real = engine.aggregate_window
    monkeypatch.setattr(engine, "aggregate_window", lambda **kw: calls.append(kw) or real(**kw))
    with django_capture_on_commit_callbacks(execute=True):
        scoring_run_resume(run=run)

    run.refresh_from_db()
    assert calls == []  # the complete staging table was reused, not rebuilt
    assert run.status == "succeeded" and run.progress_done == 30
    assert not engine.staging_exists(run.pk)  # finishing drops it
    assert ClientScore.objects.filter(run=run).count() == CurrentScore.objects.count() == 30


def test_an_incomplete_aggregate_is_redone_on_resume(buy, score,
                                                     django_capture_on_commit_callbacks):
    from clients.scoring import engine

    _book_of(20, buy)
    uninterrupted = stored_scores(score(AS_OF, chunk_clients=5))
    run = scoring_run_start(as_of=AS_OF, chunk_clients=5)  # nothing queued (no commit)
    engine.aggregate_window(run_id=run.pk, as_of=AS_OF, months=12)
    with engine.connection.cursor() as cur:  # a half-written table, never marked complete
        cur.execute(f"DELETE FROM {engine.staging_table(run.pk)}")

    with django_capture_on_commit_callbacks(execute=True):
        scoring_run_resume(run=run)

    run.refresh_from_db()
    assert run.status == "succeeded" and run.aggregated
    assert stored_scores(run) == uninterrupted


def test_a_second_start_for_an_active_date_is_refused(db):
    ClientFactory()
    scoring_run_start(as_of=AS_OF)  # queued: its chunks wait for the commit

    with pytest.raises(ApplicationError, match="already queued or running"):
        scoring_run_start(as_of=AS_OF)
    scoring_run_start(as_of=AS_OF - dt.timedelta(days=1))  # another date is fine


def test_the_database_refuses_two_active_runs_for_one_date(db):
    from django.db import IntegrityError, transaction

    scheme = ScoringScheme.objects.get(version=1)
    ScoringRun.objects.create(as_of=AS_OF, scheme=scheme, status="running")
    with pytest.raises(IntegrityError), transaction.atomic():
        ScoringRun.objects.create(as_of=AS_OF, scheme=scheme, status="queued")


# --- resume ------------------------------------------------------------------------------
def _book_of(n: int, buy) -> None:
    rng = random.Random(7)
    for i in range(n):
        client = ClientFactory(client_no=f"K{i:05d}")
        for _ in range(rng.randint(0, 4)):
            buy(client, local(AS_OF - dt.timedelta(days=rng.randint(0, 400))),
                amount=f"{rng.randint(0, 300000)}.{rng.randint(0, 99):02d}")


def test_resume_after_a_crash_gives_the_result_of_an_uninterrupted_run(buy, score,
                                                                       django_capture_on_commit_callbacks):
    _book_of(60, buy)
    uninterrupted = stored_scores(score(AS_OF, chunk_clients=10))
    ClientScore.objects.all().delete()
    ScoringCurrent.objects.all().delete()  # no current scores (CurrentScore is a view)

    run = scoring_run_start(as_of=AS_OF, chunk_clients=10)  # nothing queued (no commit)
    chunks = list(ScoringChunk.objects.filter(run=run).order_by("index"))
    for chunk in chunks[:3]:
        scoring_chunk_run(chunk_id=chunk.pk)
    scoring_chunk_run(chunk_id=chunks[0].pk)  # a redelivered chunk does nothing
    run.refresh_from_db()
    assert (run.status, run.chunks_done, run.progress_done) == ("running", 3, 30)

    with django_capture_on_commit_callbacks(execute=True):
        scoring_run_resume(run=run)

    run.refresh_from_db()
    assert run.status == "succeeded" and run.chunks_done == run.chunk_count == 6
    assert run.progress_done == 60
    assert stored_scores(run) == uninterrupted
    assert ClientScore.objects.count() == CurrentScore.objects.count() == 60


def test_a_run_that_died_before_finishing_is_finished_by_resume(buy, score,
                                                               django_capture_on_commit_callbacks):
    _book_of(20, buy)
    run = scoring_run_start(as_of=AS_OF, chunk_clients=5)
    for chunk in ScoringChunk.objects.filter(run=run):
        scoring_chunk_run(chunk_id=chunk.pk)
    ScoringRun.objects.filter(pk=run.pk).update(status="running")  # finish never happened
    run.refresh_from_db()
    run.status = "running"
    ScoringRun.objects.filter(pk=run.pk).update(status="running", tier_counts={})

    with django_capture_on_commit_callbacks(execute=True):
        scoring_run_resume(run=run)

    run.refresh_from_db()
    assert run.status == "succeeded" and sum(run.tier_counts.values()) == 20


def test_a_failing_chunk_fails_the_run_with_its_error_and_resume_completes_it(
        buy, score, monkeypatch, django_capture_on_commit_callbacks):
    _book_of(20, buy)
    from clients.scoring import engine

    real = engine.score_range
    calls = {"n": 0}

    def flaky(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(engine, "score_range", flaky)
    run = score(AS_OF, chunk_clients=5)
    assert run.status == "failed" and "disk full" in run.error
    assert ScoringChunk.objects.filter(run=run, done=False).exists()

    with django_capture_on_commit_callbacks(execute=True):
        scoring_run_resume(run=run)

    run.refresh_from_db()
    assert run.status == "succeeded" and run.error == ""
    assert ClientScore.objects.filter(run=run).count() == 20


def test_a_succeeded_run_cannot_be_resumed(score):
    ClientFactory()
    run = score()
    with pytest.raises(ApplicationError, match="already succeeded"):
        scoring_run_resume(run=run)


# --- signal, nightly task, command -------------------------------------------------------
def test_a_succeeded_run_sends_the_signal_segments_hook_into(score):
    ClientFactory()
    received = []

    def receiver(sender, run, **kwargs):
        received.append(run.pk)

    scoring_run_succeeded.connect(receiver)
    try:
        run = score()
    finally:
        scoring_run_succeeded.disconnect(receiver)
    assert received == [run.pk]


def test_the_nightly_task_scores_yesterday_once(db, django_capture_on_commit_callbacks):
    ClientFactory()
    with django_capture_on_commit_callbacks(execute=True):
        scoring_nightly_task()
    run = ScoringRun.objects.get()
    assert (run.trigger, run.status) == ("beat", "succeeded")

    scoring_nightly_task()

    assert ScoringRun.objects.count() == 1


def test_the_schedule_is_seeded_for_two_in_the_morning_shanghai(db):
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="Nightly value scoring")
    assert task.task == "clients.scoring.tasks.scoring_nightly_task"
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == (
        "0", "2", "Asia/Shanghai")


def test_scheme_version_1_is_the_domain_table_exactly(db):
    v1 = ScoringScheme.objects.get(version=1)
    assert {k: getattr(v1, k) for k in V1} == V1


def test_the_command_scores_and_prints_tiers(transactional_db, capsys):
    ensure_scheme_v1()
    ClientFactory()
    call_command("score_clients", "--as-of", "2026-10-31")
    out = capsys.readouterr().out
    assert "succeeded" in out and "long_tail" in out
    assert ClientScore.objects.filter(as_of=AS_OF).count() == 1


def test_the_command_refuses_a_bad_date(db):
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("score_clients", "--as-of", "31/10/2026")


# --- validation --------------------------------------------------------------------------
@pytest.mark.parametrize(("change", "field", "message"), [
    ({"amount_bounds": [10000, 50000, 40000, 500000, 1000000]}, "amount_bounds",
     "Amount bands: the lower bound of band 4 (40000) must be greater than that of band 3"),
    ({"frequency_bounds": [2, 5, 10, 50]}, "frequency_bounds",
     "Frequency bands: give exactly five bounds"),
    ({"benefit_bounds": [-1, 30000, 100000, 300000, 500000]}, "benefit_bounds",
     "Benefit bands: the lower bound of band 2 (-1) is negative"),
    ({"amount_bounds": [10000, "x", 100000, 500000, 1000000]}, "amount_bounds",
     "Amount bands: the lower bound of band 3 is not a number"),
    ({"tier_precedence": ["guiding", "vip", "potential", "long_tail"]}, "tier_precedence",
     "Unknown tier rule: vip"),
    ({"tier_precedence": ["guiding", "guiding", "potential", "long_tail"]}, "tier_precedence",
     "each of the four tiers exactly once"),
    ({"window_months": 0}, "window_months", "from 1 to 36"),
    ({"window_months": 37}, "window_months", "from 1 to 36"),
    ({"high_score": 7}, "high_score", "from 1 to 6"),
])
def test_an_invalid_scheme_is_refused_saying_which_band(db, change, field, message):
    with translation.override("en"), pytest.raises(ApplicationError) as refused:
        scheme_publish(data={**V1, **change})
    assert message in refused.value.message
    assert message in refused.value.fields[field][0]
    assert ScoringScheme.objects.count() == 1


def test_a_valid_scheme_is_published_as_the_next_version(ops_user):
    scheme = scheme_publish(data={**V1, "window_months": 6, "note": "half year"}, actor=ops_user)
    assert (scheme.version, scheme.window_months, scheme.published_by) == (2, 6, ops_user)


# --- selectors ---------------------------------------------------------------------------
def test_the_explanation_names_the_band_and_the_rule_that_decided(buy, score):
    client = ClientFactory()
    buy(client, local(AS_OF - dt.timedelta(days=40)), amount="120000.00", revenue="31000.00")
    run = score()

    why = score_explanation(score=ClientScore.objects.get(client=client, run=run))

    amount, frequency, benefit = why.dimensions
    assert (amount.value, amount.score, amount.lower, amount.upper) == (120000, 4, 100000, 500000)
    assert (frequency.score, frequency.lower, frequency.upper) == (1, 0, 2)
    assert (benefit.score, benefit.lower, benefit.upper) == (3, 30000, 100000)
    assert (why.tier, why.tier_rule) == ("development", "development")
    assert [r["rule"] for r in why.rules_checked if r["matched"]] == ["development", "long_tail"]


def test_distributions_and_the_tier_migration_matrix(buy, score, ops_user, rm_a):
    mover = ClientFactory(rm=rm_a)
    stayer = ClientFactory()
    before = score(AS_OF - dt.timedelta(days=1))
    buy(mover, local(AS_OF), amount="5.00")
    after = score(AS_OF)

    assert tier_distribution(run=after) == {"guiding": 0, "development": 0, "potential": 1,
                                            "long_tail": 1}
    dist = score_distribution(run=after)
    assert dist["amount"][1] == 2 and dist["total"][3] == 2
    matrix = tier_migration(run_from=before, run_to=after)
    assert matrix["long_tail"]["potential"] == 1 and matrix["long_tail"]["long_tail"] == 1
    moved = tier_migration_clients(run_from=before, run_to=after, tier_from="long_tail",
                                   tier_to="potential", user=ops_user)
    assert list(moved) == [mover]
    assert stayer not in moved


def test_deleting_a_client_deletes_its_scores_without_a_database_constraint(
        db, django_capture_on_commit_callbacks):
    """ClientScore.client has no DB-level FK (write speed); Django's collector must cascade."""
    from clients.models import Client, ClientScore
    from clients.scoring.services import scoring_run_start
    from tests.factories import ClientFactory, TransactionFactory

    ensure_scheme_v1()
    client = ClientFactory()
    TransactionFactory(client=client)
    with django_capture_on_commit_callbacks(execute=True):
        scoring_run_start(trigger="command")
    assert ClientScore.objects.filter(client=client).exists()
    Client.objects.filter(pk=client.pk).delete()
    assert not ClientScore.objects.filter(client_id=client.pk).exists()


def test_beat_resumes_runs_that_stopped_moving_and_leaves_moving_ones_alone(
        buy, score, settings, django_capture_on_commit_callbacks):
    from django.utils import timezone

    from clients.scoring.selectors import run_is_stale
    from clients.scoring.tasks import scoring_resume_stale_task

    settings.SCORING_STALE_SECONDS = 600
    _book_of(30, buy)
    uninterrupted = stored_scores(score(AS_OF, chunk_clients=10))
    ClientScore.objects.all().delete()
    ScoringCurrent.objects.all().delete()
    dead = scoring_run_start(as_of=AS_OF, chunk_clients=10)  # its worker dies after a chunk
    scoring_chunk_run(chunk_id=ScoringChunk.objects.filter(run=dead).order_by("index")[0].pk)
    moving = scoring_run_start(as_of=AS_OF - dt.timedelta(days=1), chunk_clients=10)
    ScoringRun.objects.filter(pk=dead.pk).update(
        updated_at=timezone.now() - dt.timedelta(minutes=11))
    ScoringRun.objects.filter(pk=moving.pk).update(
        updated_at=timezone.now() - dt.timedelta(minutes=2))
    dead.refresh_from_db()
    moving.refresh_from_db()
    assert run_is_stale(dead) and not run_is_stale(moving)

    with django_capture_on_commit_callbacks(execute=True):
        assert scoring_resume_stale_task() == [dead.pk]

    dead.refresh_from_db()
    moving.refresh_from_db()
    assert dead.status == "succeeded" and dead.progress_done == 30
    assert stored_scores(dead) == uninterrupted
    assert moving.status == "queued" and moving.chunks_done == 0  # left to its worker


def test_the_resume_schedule_is_in_the_beat_table(db):
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="clients.scoring.tasks.scoring_resume_stale_task")
    assert task.enabled and task.interval.every == 10 and task.interval.period == "minutes"


def test_staging_tables_nobody_will_use_are_dropped(db):
    from django.db import connection
    from django.utils import timezone

    from clients.scoring import engine
    from clients.scoring.services import scoring_staging_cleanup

    ClientFactory()
    now = timezone.now()
    old_failed = scoring_run_start(as_of=AS_OF)
    new_failed = scoring_run_start(as_of=AS_OF - dt.timedelta(days=1))
    running = scoring_run_start(as_of=AS_OF - dt.timedelta(days=2))
    done = scoring_run_start(as_of=AS_OF - dt.timedelta(days=3))
    ScoringRun.objects.filter(pk=old_failed.pk).update(
        status="failed", finished_at=now - dt.timedelta(days=8))
    ScoringRun.objects.filter(pk=new_failed.pk).update(
        status="failed", finished_at=now - dt.timedelta(days=1))
    ScoringRun.objects.filter(pk=running.pk).update(status="running")
    ScoringRun.objects.filter(pk=done.pk).update(status="succeeded", finished_at=now)
    orphan = max(r.pk for r in (old_failed, new_failed, running, done)) + 1000
    with connection.cursor() as cur:
        for run_id in (old_failed.pk, new_failed.pk, running.pk, done.pk, orphan):
            cur.execute(f"CREATE TABLE {engine.staging_table(run_id)} (client_id bigint)")

    dropped = scoring_staging_cleanup(keep_days=7)

    assert sorted(dropped) == sorted([old_failed.pk, done.pk, orphan])
    assert engine.staging_run_ids() == sorted([new_failed.pk, running.pk])
    assert scoring_staging_cleanup(keep_days=7) == []
