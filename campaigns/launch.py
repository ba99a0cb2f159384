"""The launch job and the steps that follow it.

Launch (`campaign_launch_run`) is one transaction under the caps lock: freeze the target list
(one INSERT ... SELECT with every exclusion), assign arms (one UPDATE with window functions),
reserve step 0's contacts (one INSERT ... SELECT into the ledger). A worker killed mid-launch
leaves nothing; the message is redelivered (acks_late) or the minute beat finds the queued job
and runs it again; the unique (campaign, client) and (source, step, client) keys make a second
run add nothing.

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

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from clients.models import Client, Product
from core.models import JobStatus
from outreach.calendar import is_trading_day, trading_day_after
from outreach.caps import caps_lock, over_cap_q
from outreach.email.outbox import due_sources, ledger_settle, reclaim_stale
from outreach.email.tasks import email_dispatch_kick
from outreach.models import Channel, Contact, ContactSource, ContactStatus, RMTask, TaskSource
from outreach.reach import consent_q, opted_out
from outreach.selectors import contact_policy_get
from outreach.services import ORIGIN_CONTACT, contacts_plan

from .email import emails_queue
from .models import CONTROL, EXEMPT_SCENARIOS, Campaign, CampaignLaunch, CampaignMember
from .models import CampaignStatus as S
from .scripts import script_render, script_values
from .services import campaign_transition
from .targeting import arms_assign, launch_day_for, members_freeze

RM_CHANNELS = (Channel.PHONE, Channel.WECHAT)


def _member_variants_sql(campaign: Campaign) -> tuple[str, list]:
    table = connection.ops.quote_name(CampaignMember._meta.db_table)
    return (f"SELECT client_id, arm AS variant FROM {table} "
            f"WHERE campaign_id = %s AND exclusion_reason = '' AND arm <> %s",
            [campaign.pk, CONTROL])


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
        timings, started = {}, time.monotonic()
        now = timezone.now()
        day = launch_day_for(timezone.localdate())
        policy = contact_policy_get()
        launch.status, launch.started_at = JobStatus.RUNNING, launch.started_at or now

        members_freeze(campaign=campaign, day=day, policy=policy, now=now)
        timings["freeze"] = round(time.monotonic() - started, 3)
        mark = time.monotonic()
        arms_assign(campaign=campaign)
        timings["assign"] = round(time.monotonic() - mark, 3)
        mark = time.monotonic()
        sql, params = _member_variants_sql(campaign)
        campaign.launch_day = day
        contacts_plan(source=ContactSource.CAMPAIGN, source_id=campaign.pk, step=0,
                      channel=campaign.steps[0]["channel"], priority=campaign.priority,
                      exempt=campaign.scenario in EXEMPT_SCENARIOS,
                      planned_on=step_day(campaign, 0),
                      content_version=campaign.content_version, members_sql=sql, params=params)
        timings["reserve"] = round(time.monotonic() - mark, 3)

        counts = dict(CampaignMember.objects.filter(campaign=campaign)
                      .values_list("exclusion_reason").annotate(n=Count("id")).order_by())
        arms = dict(CampaignMember.objects.filter(campaign=campaign, exclusion_reason="")
                    .values_list("arm").annotate(n=Count("id")).order_by())
        launch.counts = {"members": sum(counts.values()), "eligible": counts.pop("", 0),
                         "excluded": counts, "arms": arms}
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
            if contact.step >= len(campaign.steps) or contact.client_id not in clients:
                continue
            variant = _variant_for(campaign.steps[contact.step], contact.variant)
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
                detail=script_render(variant["body"], values), due_on=due,
                origin_type=ORIGIN_CONTACT, origin_id=str(contact.pk)))
    RMTask.objects.bulk_create(tasks, ignore_conflicts=True)
    return len(tasks)


def _step_run(campaign: Campaign, index: int, *, today: dt.date) -> dict:
    step = campaign.steps[index]
    channel = step["channel"]
    with transaction.atomic():
        caps_lock()
        if index > 0:
            sql, params = _member_variants_sql(campaign)
            contacts_plan(source=ContactSource.CAMPAIGN, source_id=campaign.pk, step=index,
                          channel=channel, priority=campaign.priority,
                          exempt=campaign.scenario in EXEMPT_SCENARIOS, planned_on=today,
                          content_version=campaign.content_version, members_sql=sql,
                          params=params)
            if campaign.scenario not in EXEMPT_SCENARIOS:
                over = over_cap_q(policy=contact_policy_get(), channel=channel, day=today,
                                  client_ref="client_id",
                                  exclude={"source": ContactSource.CAMPAIGN,
                                           "source_id": campaign.pk, "step": index})
                Contact.objects.filter(source=ContactSource.CAMPAIGN, source_id=campaign.pk,
                                       step=index, status=ContactStatus.PLANNED).filter(
                    over).update(status=ContactStatus.CAPPED)
        planned = Contact.objects.filter(source=ContactSource.CAMPAIGN, source_id=campaign.pk,
                                         step=index, status=ContactStatus.PLANNED)
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
            emails_queue(campaign=campaign, index=index, contacts=contacts,
                         texts=contacts_render(contacts))
        campaign.steps_done = index + 1
        campaign.save(update_fields=["steps_done", "updated_at"])
        campaign.events.create(action="step", detail={"step": index, "queued": len(contacts),
                                                      "calls": calls})
    return {"step": index, "queued": len(contacts), "calls": calls}


def campaign_complete_if_done(campaign: Campaign, *, today: dt.date) -> bool:
    """Running -> completed once every step ran and the attribution window after the last
    one has passed (or the campaign's end is reached)."""
    if campaign.status != S.RUNNING:
        return False
    now = timezone.now()
    ended = campaign.ends_at is not None and campaign.ends_at <= now
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
    for campaign in Campaign.objects.filter(status=S.RUNNING):
        while campaign.steps_done < len(campaign.steps) \
                and step_day(campaign, campaign.steps_done) <= today:
            done["steps"].append({"campaign": campaign.code,
                                  **_step_run(campaign, campaign.steps_done, today=today)})
        if campaign_complete_if_done(campaign, today=today):
            done["completed"] += 1
    return done
