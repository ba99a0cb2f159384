"""The launch job and the steps that follow it.

Launch (`campaign_launch_run`) is one transaction under the caps lock: freeze the target list
(one INSERT ... SELECT with every exclusion and, for the eligible, the arm), take back from
lower-priority campaigns the contacts they only reserved where the caps leave no room for a
treated client (shared/DOMAIN.md "Contact policy": the higher priority wins), reserve step 0's
contacts (one INSERT ... SELECT into the ledger). A worker killed mid-launch leaves nothing;
the message is redelivered (acks_late) or the minute beat finds the queued job and runs it
again; the unique (campaign, client) and (source, step, client) keys make a second run add
nothing.

Steps (`campaign_steps_run`, every minute from beat) run on the trading calendar: step i is due
on the trading day `delay` trading days after step i-1's day, counted from the launch day.
Phone and WeChat steps become tasks on the client's RM's call list, spread over the RM's days
by their daily capacity; email steps are rendered into the email outbox and sent by the one
email dispatcher (campaigns.email, outreach.email); SMS and app push steps wait in the ledger
as QUEUED for the gateway sender.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _

from clients.models import Client, Product
from core.models import JobStatus
from outreach.calendar import is_trading_day, trading_day_after
from outreach.caps import (
    CALL_CHANNELS,
    cap_state_sql,
    caps_lock,
    over_cap_q,
    take_back_sql,
    takeable_q,
)
from outreach.email.outbox import due_sources, ledger_settle, reclaim_stale
from outreach.email.tasks import email_dispatch_kick
from outreach.models import (
    Channel,
    Contact,
    ContactSource,
    ContactStatus,
    RMTask,
    TaskSource,
    TaskStatus,
)
from outreach.reach import consent_q, opted_out
from outreach.selectors import contact_policy_get
from outreach.services import ORIGIN_CONTACT, contacts_plan

from .email import emails_queue
from .models import (
    CONTROL,
    EXEMPT_SCENARIOS,
    Campaign,
    CampaignEvent,
    CampaignLaunch,
    CampaignMember,
    ExclusionReason,
    step_index,
)
from .models import CampaignStatus as S
from .scripts import script_render, script_values
from .services import campaign_transition
from .targeting import launch_day_for, members_freeze

RM_CHANNELS = (Channel.PHONE, Channel.WECHAT)
# The launch transaction's settings (PostgreSQL): the arms' window and the client-order sort
# of a 1M-client list spill to disk at 4 MB. (JIT, which cost 1.4-4.5 s of the freeze, is off
# for every connection: settings, DATABASES options.)
_LAUNCH_SETTINGS = ("SET LOCAL work_mem = '256MB'",)


def bulk_transaction_tune() -> None:
    """The current transaction's settings for writing a target list (launch, a journey's
    day): _LAUNCH_SETTINGS on PostgreSQL."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for statement in _LAUNCH_SETTINGS:
                cursor.execute(statement)
# The launch's temporary tables: its treated members' clients, the contacts it takes back.
_TREATED, _TAKE_BACK = "campaign_treated", "campaign_take_back"


def _member_variants_sql(campaign: Campaign) -> tuple[str, list]:
    table = connection.ops.quote_name(CampaignMember._meta.db_table)
    return (f"SELECT client_id, arm AS variant FROM {table} "
            f"WHERE campaign_id = %s AND exclusion_reason = '' AND arm <> %s",
            [campaign.pk, CONTROL])


def _treated(campaign: Campaign):
    return (CampaignMember.objects.filter(campaign=campaign, exclusion_reason="")
            .exclude(arm=CONTROL))


def _take_back(*, campaign: Campaign, day: dt.date, policy: dict) -> dict:
    """Where the caps leave a treated member no room, take back the contacts lower-priority
    campaigns only reserved (outreach.caps.takeable_q; the fewest that make room,
    take_back_sql), set-based: their open call tasks are cancelled, then the contacts
    (CANCELLED, the error naming this campaign), and the lower campaign's member records
    "higher_priority" and is left out of its later steps (it keeps its arm, which shows what
    it had been drawn for). An event on each lower campaign says how many.

    Members of the holdout take nothing: they get no contact. A contact a sender claims, or
    a call an RM closes, while this runs stays with its campaign (the updates re-check each
    row under its lock); a treated member then still without room is excluded after all,
    with the reason the caps give (rare: it is the only exclusion after randomisation)."""
    if campaign.scenario in EXEMPT_SCENARIOS:
        return {}
    own = {"source": ContactSource.CAMPAIGN, "source_id": campaign.pk}
    treated_sql, treated_params = _treated(campaign).values("client_id").query.sql_with_params()
    with _temporary_table(_TREATED, treated_sql, treated_params) as treated:
        selection = take_back_sql(
            policy=policy, channel=campaign.steps[0]["channel"], day=day,
            priority=campaign.priority, exclude=own,
            clients=RawSQL(f"SELECT client_id FROM {treated}", []))
        if selection is None:
            return {}
        with _temporary_table(_TAKE_BACK, *selection) as table:
            taken = _contacts_take(campaign=campaign, table=table)
    if not taken:
        return {}
    if taken["lost"]:
        _still_over_exclude(campaign=campaign, day=day, policy=policy, clients=taken["lost"])
    per_campaign = taken["campaigns"]
    # A ledger row may name a campaign no longer there: its contact is taken all the same.
    codes = dict(Campaign.objects.filter(pk__in=per_campaign).values_list("pk", "code"))
    CampaignEvent.objects.bulk_create([CampaignEvent(
        campaign_id=pk, action="taken_back",
        comment=_("%(contacts)s planned contacts taken back by the higher-priority campaign "
                  "%(code)s.") % {"contacts": row["contacts"], "code": campaign.code},
        detail={"by": campaign.code, "priority": campaign.priority,
                "contacts": row["contacts"], "members": row["clients"], "calls": row["calls"]})
        for pk, row in per_campaign.items() if pk in codes])
    return {"contacts": taken["contacts"], "calls_cancelled": taken["calls"],
            "campaigns": {codes.get(pk, str(pk)): row["contacts"]
                          for pk, row in per_campaign.items()}}


@contextmanager
def _temporary_table(name: str, sql: str, params: list):
    """A temporary table of `sql`'s rows, with statistics (PostgreSQL), dropped after use:
    the launch's own rows are not in the tables' statistics yet, and a plan made from them
    (this campaign: 1 member) loops over the 300k treated once per ledger row. Created and
    dropped inside the launch's transaction: a failed launch leaves none."""
    table = connection.ops.quote_name(name)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {table} AS {sql}", params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {table}")
    yield table
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {table}")


def _contacts_take(*, campaign: Campaign, table: str) -> dict | None:
    """Take the contacts of `table` (id, client_id, source_id): their open calls cancelled,
    then each contact still takeable under its row lock, then the lower campaigns' members.
    None when there is nothing to take."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        selected = cursor.fetchone()[0]
    if not selected:
        return None
    marker = f"higher priority: {campaign.code}"[:300]
    # Tasks first, then contacts: the order an RM's outcome takes (outreach.services.
    # task_update), so the two never wait on each other in a circle.
    calls = RMTask.objects.filter(
        origin_type=ORIGIN_CONTACT, status=TaskStatus.OPEN,
        origin_id__in=RawSQL(f"SELECT CAST(id AS VARCHAR(64)) FROM {table}", [])).update(
        status=TaskStatus.CANCELLED, updated_at=timezone.now())
    # A call cancelled just above is not "closed" for this re-check; one done meanwhile is.
    taken = Contact.objects.filter(pk__in=RawSQL(f"SELECT id FROM {table}", [])).filter(
        takeable_q(priority=campaign.priority, closed_calls=(TaskStatus.DONE,))).update(
        status=ContactStatus.CANCELLED, error=marker)
    # From here the temporary table drives every statement (it has statistics; the ledger's
    # say no contact is cancelled, and a plan believing them loops over the table per row).
    contacts = connection.ops.quote_name(Contact._meta.db_table)
    members = connection.ops.quote_name(CampaignMember._meta.db_table)
    lost = []
    with connection.cursor() as cursor:
        if taken < selected:
            not_taken = (f"NOT EXISTS (SELECT 1 FROM {contacts} x WHERE x.id = {table}.id "
                         f"AND x.status = %s AND x.error = %s)")
            cursor.execute(f"SELECT DISTINCT client_id FROM {table} WHERE {not_taken}",
                           [ContactStatus.CANCELLED, marker])
            lost = [row[0] for row in cursor.fetchall()]
            cursor.execute(f"DELETE FROM {table} WHERE {not_taken}",
                           [ContactStatus.CANCELLED, marker])
        cursor.execute(
            f"UPDATE {members} SET exclusion_reason = %s WHERE exclusion_reason = '' "
            f"AND campaign_id IN (SELECT source_id FROM {table}) AND EXISTS (SELECT 1 FROM "
            f"{table} t WHERE t.source_id = {members}.campaign_id "
            f"AND t.client_id = {members}.client_id)", [ExclusionReason.HIGHER_PRIORITY])
        calling = ", ".join(["%s"] * len(CALL_CHANNELS))
        cursor.execute(
            f"SELECT t.source_id, COUNT(*), COUNT(DISTINCT t.client_id), "
            f"SUM(CASE WHEN x.channel IN ({calling}) THEN 1 ELSE 0 END) "
            f"FROM {table} t INNER JOIN {contacts} x ON x.id = t.id GROUP BY t.source_id",
            list(CALL_CHANNELS))
        per_campaign = {source_id: {"contacts": n, "clients": k, "calls": int(c or 0)}
                        for source_id, n, k, c in cursor.fetchall()}
    return {"contacts": taken, "calls": calls, "lost": lost, "campaigns": per_campaign}


def _still_over_exclude(*, campaign: Campaign, day: dt.date, policy: dict,
                        clients: list[int]) -> None:
    """After a lost race in _take_back: the treated members among `clients` for whom the caps
    still leave no room get the reason the caps give, and so no contact."""
    channel = campaign.steps[0]["channel"]
    sql, params = cap_state_sql(
        policy=policy, channel=channel, day=day, priority=campaign.priority,
        clients=_treated(campaign).filter(client_id__in=clients).values("client_id"),
        exclude={"source": ContactSource.CAMPAIGN, "source_id": campaign.pk})
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT s.client_id, s.higher FROM ({sql}) s WHERE s.over_now", params)
        over = cursor.fetchall()
    for reason, higher in ((ExclusionReason.HIGHER_PRIORITY, True),
                           (ExclusionReason.CAPPED, False)):
        _treated(campaign).filter(
            client_id__in=[client for client, h in over if bool(h) is higher]).update(
            exclusion_reason=reason)


def campaign_launch_run(*, launch_id: int) -> CampaignLaunch | None:
    """Run (or finish) one launch; a launch that succeeded already is left alone."""
    with transaction.atomic():
        launch = (CampaignLaunch.objects.select_for_update().select_related("campaign")
                  .filter(pk=launch_id).first())
        if launch is None or launch.status == JobStatus.SUCCEEDED:
            return launch
        campaign = launch.campaign
        if campaign.status != S.SCHEDULED:
            return launch
        if campaign.starts_at is not None and campaign.starts_at > timezone.now():
            return launch  # the minute beat launches it when its start comes
        caps_lock()
        bulk_transaction_tune()
        timings, started = {}, time.monotonic()
        now = timezone.now()
        day = launch_day_for(timezone.localdate())
        policy = contact_policy_get()
        launch.status, launch.started_at = JobStatus.RUNNING, launch.started_at or now

        members_freeze(campaign=campaign, day=day, policy=policy, now=now)
        timings["freeze"] = round(time.monotonic() - started, 3)
        mark = time.monotonic()
        taken = _take_back(campaign=campaign, day=day, policy=policy)
        timings["take_back"] = round(time.monotonic() - mark, 3)
        mark = time.monotonic()
        sql, params = _member_variants_sql(campaign)
        campaign.launch_day = day
        contacts_plan(source=ContactSource.CAMPAIGN, source_id=campaign.pk, step=0,
                      channel=campaign.steps[0]["channel"], priority=campaign.priority,
                      exempt=campaign.scenario in EXEMPT_SCENARIOS,
                      planned_on=step_day(campaign, 0),
                      content_version=campaign.content_version, members_sql=sql, params=params)
        timings["reserve"] = round(time.monotonic() - mark, 3)

        counts, arms = {}, {}
        for reason, arm, n in (CampaignMember.objects.filter(campaign=campaign)
                               .values_list("exclusion_reason", "arm")
                               .annotate(n=Count("id")).order_by()):
            counts[reason] = counts.get(reason, 0) + n
            if not reason:
                arms[arm] = n
        launch.counts = {"members": sum(counts.values()), "eligible": counts.pop("", 0),
                         "excluded": counts, "arms": arms}
        if taken:
            launch.counts["taken_back"] = taken
        launch.timings = timings
        launch.phase, launch.progress_done = "reserve", 3
        launch.status, launch.finished_at = JobStatus.SUCCEEDED, timezone.now()
        launch.save()
        campaign.status, campaign.launched_at, campaign.launch_day = S.RUNNING, now, day
        campaign.save(update_fields=["status", "launched_at", "launch_day", "updated_at"])
        campaign.events.create(action=S.RUNNING, detail={"counts": launch.counts})
    return launch


def campaign_launch_fail(*, launch_id: int, message: str) -> None:
    """The launch could not run (an error, not a killed worker): the campaign goes back to
    approved so it can be launched again; nothing was written."""
    with transaction.atomic():
        launch = CampaignLaunch.objects.select_for_update().filter(pk=launch_id).first()
        if launch is None or launch.status == JobStatus.SUCCEEDED:
            return
        launch.status, launch.error = JobStatus.FAILED, message[:2000]
        launch.finished_at = timezone.now()
        launch.save(update_fields=["status", "error", "finished_at"])
        Campaign.objects.filter(pk=launch.campaign_id, status=S.SCHEDULED).update(
            status=S.APPROVED)


# --- steps ------------------------------------------------------------------------------

def step_day(campaign: Campaign, index: int) -> dt.date:
    """The trading day step `index` is due: the delays of steps 0..index, in trading days,
    from the launch day."""
    day = campaign.launch_day
    for step in campaign.steps[:index + 1]:
        if step["delay_trading_days"]:
            day = trading_day_after(day, step["delay_trading_days"])
    return day


def _variant_for(step: dict, arm: str) -> dict:
    variants = step["variants"]
    return next((v for v in variants if v["code"] == arm), variants[0])


def _rm_due_days(*, rm_id: int | None, first: dt.date, count: int, load: dict) -> list[dt.date]:
    """`count` due dates for one RM's new calls from `first` on, at most RM_DAILY_CAPACITY a
    trading day counting what is already due on their list."""
    capacity = settings.RM_DAILY_CAPACITY
    days, day = [], first
    while len(days) < count:
        free = capacity - load.get((rm_id, day), 0)
        take = min(free, count - len(days)) if free > 0 else 0
        days += [day] * take
        load[(rm_id, day)] = load.get((rm_id, day), 0) + take
        if len(days) < count:
            day = trading_day_after(day, 1)
    return days


def contacts_render(contacts: list[Contact]) -> dict[int, tuple[str, str]]:
    """outreach.channels.render's renderer for campaign contacts: each contact's variant of
    its step, with the client's own values and the product they were found suitable for at
    launch (a later step of a paused or changed campaign still says what was approved)."""
    by_campaign: dict[int, list[Contact]] = {}
    for contact in contacts:
        by_campaign.setdefault(contact.source_id, []).append(contact)
    out = {}
    for campaign in Campaign.objects.filter(pk__in=by_campaign):
        batch = by_campaign[campaign.pk]
        offered = dict(CampaignMember.objects.filter(
            campaign=campaign, client_id__in=[c.client_id for c in batch])
            .values_list("client_id", "product_code"))
        products = {p.product_code: p for p in Product.objects.filter(
            product_code__in=set(offered.values()) - {""})}
        clients = {c.pk: c for c in Client.objects.select_related("rm").filter(
            pk__in=[c.client_id for c in batch])}
        for contact in batch:
            index = step_index(contact.step)
            if index >= len(campaign.steps) or contact.client_id not in clients:
                continue
            variant = _variant_for(campaign.steps[index], contact.variant)
            values = script_values(client=clients[contact.client_id],
                                   product=products.get(offered.get(contact.client_id, "")))
            out[contact.pk] = (script_render(variant.get("subject", ""), values)[:200],
                               script_render(variant["body"], values))
    return out


def _calls_create(*, campaign: Campaign, index: int, contacts: list[Contact],
                  day: dt.date) -> int:
    """Phone and WeChat contacts -> tasks on each client's RM's call list, with the script of
    the client's variant rendered for them; due dates spread by the RM's daily capacity."""
    step = campaign.steps[index]
    members = {m.client_id: m.product_code for m in CampaignMember.objects.filter(
        campaign=campaign, client_id__in=[c.client_id for c in contacts])}
    products = {p.product_code: p for p in Product.objects.filter(
        product_code__in=set(members.values()) - {""})}
    clients = {c.pk: c for c in Client.objects.select_related("rm").filter(
        pk__in=[c.client_id for c in contacts])}
    load = dict(((row["assignee_id"], row["due_on"]), row["n"]) for row in
                RMTask.objects.filter(status="open", due_on__gte=day)
                .values("assignee_id", "due_on").annotate(n=Count("id")).order_by())
    exposure: dict[int, object] = {}
    if campaign.exposure_product_types:  # market turbulence: the most exposed are called first
        from .turbulence import exposures

        exposure = exposures(product_types=campaign.exposure_product_types,
                             client_ids=list(clients))
        contacts = sorted(contacts, key=lambda c: (-(exposure.get(c.client_id) or 0),
                                                   c.client_id))
    by_rm: dict[int | None, list[Contact]] = {}
    for contact in contacts:
        by_rm.setdefault(clients[contact.client_id].rm_id, []).append(contact)
    tasks = []
    for rm_id, rm_contacts in by_rm.items():
        for contact, due in zip(rm_contacts, _rm_due_days(rm_id=rm_id, first=day,
                                                          count=len(rm_contacts), load=load),
                                strict=True):
            client = clients[contact.client_id]
            variant = _variant_for(step, contact.variant)
            values = script_values(client=client,
                                   product=products.get(members.get(client.pk, "")))
            title = script_render(variant.get("subject") or campaign.name, values) \
                or campaign.name
            tasks.append(RMTask(
                client=client, assignee_id=rm_id, source=TaskSource.CAMPAIGN,
                title=f"{campaign.name} · {title}"[:200],
                detail=_exposure_line(exposure, client.pk)
                + script_render(variant["body"], values), due_on=due,
                origin_type=ORIGIN_CONTACT, origin_id=str(contact.pk)))
    RMTask.objects.bulk_create(tasks, ignore_conflicts=True)
    return len(tasks)


def _exposure_line(exposure: dict, client_id: int) -> str:
    if not exposure:
        return ""
    amount = exposure.get(client_id) or 0
    return _("Exposure to the affected products: %(amount)s CNY") % {
        "amount": f"{amount:,.2f}"} + "\n"


def _step_run(campaign: Campaign, index: int, *, today: dt.date) -> dict:
    step = campaign.steps[index]
    with transaction.atomic():
        caps_lock()
        if index > 0:
            sql, params = _member_variants_sql(campaign)
            contacts_plan(source=ContactSource.CAMPAIGN, source_id=campaign.pk, step=index,
                          channel=step["channel"], priority=campaign.priority,
                          exempt=campaign.scenario in EXEMPT_SCENARIOS, planned_on=today,
                          content_version=campaign.content_version, members_sql=sql,
                          params=params)
        queued, calls = step_dispatch(campaign, index, step_no=index, today=today,
                                      check_caps=index > 0)
        campaign.steps_done = index + 1
        campaign.save(update_fields=["steps_done", "updated_at"])
        campaign.events.create(action="step", detail={"step": index, "queued": queued,
                                                      "calls": calls})
    return {"step": index, "queued": queued, "calls": calls}


def step_dispatch(campaign: Campaign, index: int, *, step_no: int, today: dt.date,
                  check_caps: bool) -> tuple[int, int]:
    """The PLANNED contacts of one step (ledger step number `step_no`) go to their channel:
    first the contact policy (capped) and consent and opt-outs as they are now (skipped),
    then the RM's call list, the email outbox, or QUEUED for the gateway. The caller holds
    the caps lock. Returns (queued, calls)."""
    channel = campaign.steps[index]["channel"]
    if check_caps and campaign.scenario not in EXEMPT_SCENARIOS:
        over = over_cap_q(policy=contact_policy_get(), channel=channel, day=today,
                          client_ref="client_id",
                          exclude={"source": ContactSource.CAMPAIGN,
                                   "source_id": campaign.pk, "step": step_no})
        Contact.objects.filter(source=ContactSource.CAMPAIGN, source_id=campaign.pk,
                               step=step_no, status=ContactStatus.PLANNED).filter(
            over).update(status=ContactStatus.CAPPED)
    planned = Contact.objects.filter(source=ContactSource.CAMPAIGN, source_id=campaign.pk,
                                     step=step_no, status=ContactStatus.PLANNED)
    # Consent can be withdrawn between launch and a later step: it holds at once.
    planned.exclude(consent_q(channel, prefix="client__")).update(
        status=ContactStatus.SKIPPED, error="no consent")
    planned.filter(opted_out(channel, client_ref="client_id")).update(
        status=ContactStatus.SKIPPED, error="opted out")
    contacts = list(planned.select_for_update())
    calls = 0
    if channel in RM_CHANNELS:
        calls = _calls_create(campaign=campaign, index=index, contacts=contacts, day=today)
    Contact.objects.filter(pk__in=[c.pk for c in contacts]).update(
        status=ContactStatus.QUEUED, planned_on=today)
    if channel == Channel.EMAIL:  # the one email dispatcher, as newsletters
        emails_queue(campaign=campaign, index=step_no, contacts=contacts,
                     texts=contacts_render(contacts))
    return len(contacts), calls


def campaign_complete_if_done(campaign: Campaign, *, today: dt.date) -> bool:
    """Running -> completed once every step ran and the attribution window after the last
    one has passed (or the campaign's end is reached)."""
    if campaign.status != S.RUNNING:
        return False
    now = timezone.now()
    ended = campaign.ends_at is not None and campaign.ends_at <= now
    if campaign.always_on and not ended:
        return False  # a journey runs until its end
    if not ended and campaign.steps_done < len(campaign.steps):
        return False
    window = int((campaign.goal or {}).get("window_days", 30))
    last = step_day(campaign, len(campaign.steps) - 1)
    if not ended and today < last + dt.timedelta(days=window):
        return False
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status != S.RUNNING:
            return False
        campaign_transition(campaign=locked, to_status=S.COMPLETED,
                            changes={"completed_at": now})
    return True


def _emails_settle() -> None:
    """Email steps: the ledger says what the outbox did (sent, failed, cancelled); claims of
    dead workers go back to pending; campaigns with messages due get a dispatch task."""
    reclaim_stale()
    due = {source_id for source, source_id in due_sources() if source == ContactSource.CAMPAIGN}
    for campaign_id in Contact.objects.filter(
            source=ContactSource.CAMPAIGN, channel=Channel.EMAIL,
            status=ContactStatus.QUEUED).values_list("source_id", flat=True).distinct():
        ledger_settle(ContactSource.CAMPAIGN, campaign_id)
    for campaign_id in Campaign.objects.filter(pk__in=due, status=S.RUNNING).values_list(
            "pk", flat=True):
        email_dispatch_kick(source=ContactSource.CAMPAIGN, source_id=campaign_id)


def campaign_steps_run(*, today: dt.date | None = None) -> dict:
    """Beat, every minute: launches left queued by a lost message, then each running
    campaign's due steps (trading days only), then campaigns whose window is over."""
    today = today or timezone.localdate()
    done = {"launched": 0, "steps": [], "completed": 0}
    for launch_id in CampaignLaunch.objects.filter(
            status__in=(JobStatus.QUEUED, JobStatus.RUNNING),
            campaign__status=S.SCHEDULED).values_list("pk", flat=True):
        if campaign_launch_run(launch_id=launch_id) is not None:
            done["launched"] += 1
    _emails_settle()
    if not is_trading_day(today):
        return done
    from .journeys import journey_advance, journeys_due

    for campaign in Campaign.objects.filter(status=S.RUNNING):
        if campaign.always_on:
            if journeys_due() and (campaign.journey_day is None or campaign.journey_day < today):
                done.setdefault("journeys", []).append(
                    {"campaign": campaign.code,
                     **journey_advance(campaign=campaign, today=today)})
            if campaign_complete_if_done(campaign, today=today):
                done["completed"] += 1
            continue
        while campaign.steps_done < len(campaign.steps) \
                and step_day(campaign, campaign.steps_done) <= today:
            done["steps"].append({"campaign": campaign.code,
                                  **_step_run(campaign, campaign.steps_done, today=today)})
        if campaign_complete_if_done(campaign, today=today):
            done["completed"] += 1
    return done
