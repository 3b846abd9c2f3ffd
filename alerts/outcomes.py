"""The insurer's outcomes report: does proactive care reach people in time?

Figures come from the database's own timelines (alerts and their timeline, the outbox and its delivery
attempts, the consent history), bucketed in the insurer's time zone. Definitions (docs/outcomes.md):

* contacted: the care team recorded a contact or sent a check-in push (``contact`` / ``reach_out``);
* answered: the member answered a check-in (fine / help / call); the **reach rate** is answered / opened;
* a deadline breach: an alert for which at least one escalation step of its policy fired (a step fires only
  when its deadline passed with the alert still unclaimed or unresolved);
* precision by feature: needed help / (needed help + false alarm), the detector's real-world precision as
  judged by the care team.
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta, timezone
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from alerts import outcomes_repository as repo
from app.core.db import Database

FUNNEL_STEPS = ("opened", "claimed", "contacted", "answered", "resolved")
COUNTS = ("opened", "claimed", "contacted", "answered", "answered_fine", "answered_help", "answered_call",
          "resolved", "needed_help", "false_alarm", "member_fine", "no_response", "consent_withdrawn", "escalations",
          "deadline_breaches")
TIMES = {"claim": "claim", "first_contact": "contact", "answer": "answer"}
RESOLUTIONS = ("needed_help", "false_alarm", "member_fine", "no_response", "consent_withdrawn")


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def bucket_starts(start: datetime, end: datetime, bucket: str, tz: ZoneInfo) -> list[date]:
    """The local dates each bucket in [start, end) begins on (weeks begin on Monday, as date_trunc's)."""
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    if bucket == "week":
        first -= timedelta(days=first.weekday())
    elif bucket == "month":
        first = first.replace(day=1)
    out = []
    day = first
    while day <= last:
        out.append(day)
        if bucket == "day":
            day += timedelta(days=1)
        elif bucket == "week":
            day += timedelta(days=7)
        else:
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


@asynccontextmanager
async def _no_spare():
    yield None


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(value) -> float | None:
    return None if value is None else round(float(value), 1)


def _counts(row: dict) -> dict:
    return {name: int(row[name]) for name in COUNTS}


def _times(row: dict) -> dict:
    figures = {}
    for label, column in TIMES.items():
        p50, p90 = row[f"{column}_q"] or (None, None)
        figures[f"{label}_p50_s"], figures[f"{label}_p90_s"] = _seconds(p50), _seconds(p90)
    return figures


def _add(into: dict, counts: dict) -> None:
    for name, value in counts.items():
        into[name] = into.get(name, 0) + value


async def report(conn: psycopg.AsyncConnection, *, tenant_id: UUID, first_day: date, end_day: date,
                 bucket: str, now: datetime | None = None, db: Database | None = None) -> dict:
    """The whole report for the local days [first_day, end_day) in ``bucket``s of the tenant's time zone.

    With ``db``, half of the queries run at the same time on a spare connection of its pool when one is free
    (each statement already reads its own snapshot at read committed, so the figures are the same either way)."""
    now = now or datetime.now(timezone.utc)
    await repo.prepare(conn)
    tz = zone(await repo.tenant_time_zone(conn))
    tz_name = tz.key
    start, end = local_midnight(first_day, tz), local_midnight(end_day, tz)
    args = {"tenant_id": tenant_id, "start": start, "end": end, "bucket": bucket, "tz": tz_name}

    async def alert_times(c: psycopg.AsyncConnection) -> tuple[list[dict], list[dict]]:
        return await repo.times(c, **args), await repo.monitored_changes(c, **args)

    async def the_rest(c: psycopg.AsyncConnection) -> tuple:
        return (await repo.counts(c, **args), await repo.consent_changes(c, **args),
                await repo.active_people(c, tenant_id=tenant_id, at=min(end, now)),
                await repo.pushes(c, tenant_id=tenant_id, start=start, end=end))

    # The two halves read different rows or aggregate differently (sorts for the percentiles, hashing for the
    # counts): with a spare connection they run side by side, each on its own core.
    async with (db.spare_transaction(tenant_id=tenant_id) if db else _no_spare()) as side:
        if side is None:
            (time_rows, monitored), (count_rows, consents, active, pushes) = await alert_times(conn), \
                await the_rest(conn)
        else:
            await repo.prepare(side)
            # Both run to their end (neither connection is left mid-query); then the first failure is raised.
            halves = await asyncio.gather(alert_times(side), the_rest(conn), return_exceptions=True)
            for half in halves:
                if isinstance(half, BaseException):
                    raise half
            (time_rows, monitored), (count_rows, consents, active, pushes) = halves

    zero = {name: 0 for name in COUNTS}
    total = dict(zero)
    per_bucket: dict[date, dict] = {}
    per_feature: dict[str, dict] = {}
    per_assignee: dict = {}
    rows: list[dict] = []
    for row in count_rows:
        counts = _counts(row)
        if row["per_bucket"]:
            rows.append({"bucket": row["bucket"].isoformat(), "feature": row["feature"], "severity": row["severity"],
                         **counts})
            _add(per_bucket.setdefault(row["bucket"], dict(zero)), counts)
            _add(per_feature.setdefault(row["feature"], dict(zero)), counts)
            _add(total, counts)
        elif row["assignee_id"] is not None:
            per_assignee[row["assignee_id"]] = counts
    overall = _times({"claim_q": None, "contact_q": None, "answer_q": None})
    times_by_feature = []
    for row in time_rows:
        if row["per_feature"]:
            times_by_feature.append({"feature": row["feature"], "severity": row["severity"], **_times(row)})
        else:
            overall = _times(row)
    times_by_feature.sort(key=lambda r: (r["feature"], r["severity"]))
    rows.sort(key=lambda r: (r["bucket"], r["feature"], r["severity"]))
    staff = await repo.staff_names(conn, list(per_assignee))

    running = sum(int(r["delta"]) for r in monitored if r["bucket"] is None)
    monitored_delta = {r["bucket"]: int(r["delta"]) for r in monitored if r["bucket"] is not None}
    grants: dict[date, int] = {}
    withdrawals: dict[date, int] = {}
    for r in consents:
        target = grants if r["action"] == "grant" else withdrawals
        target[r["bucket"]] = target.get(r["bucket"], 0) + int(r["changes"])
    series = []
    for day in bucket_starts(start, end, bucket, tz):
        running += monitored_delta.get(day, 0)
        series.append({"bucket": day.isoformat(), **per_bucket.get(day, zero), "monitored": running,
                       "consent_grants": grants.get(day, 0), "consent_withdrawals": withdrawals.get(day, 0)})

    opened = total["opened"]
    funnel = {step: total[step] for step in FUNNEL_STEPS}
    funnel.update({"answered_fine": total["answered_fine"], "answered_help": total["answered_help"],
                   "answered_call": total["answered_call"],
                   "shares": {step: _share(total[step], opened) for step in FUNNEL_STEPS},
                   "reach_rate": _share(total["answered"], opened)})
    agents = sorted(({"agent": staff[i]["external_id"], "role": staff[i]["role"], "assigned": c["opened"],
                      "contacted": c["contacted"], "resolved": c["resolved"],
                      "unresolved": c["opened"] - c["resolved"]}
                     for i, c in per_assignee.items() if i in staff), key=lambda a: (-a["assigned"], a["agent"]))
    return {
        "from": first_day, "to": end_day, "bucket": bucket, "time_zone": tz_name,
        "people": {"monitored": running, "active": active, "consent_grants": sum(grants.values()),
                   "consent_withdrawals": sum(withdrawals.values())},
        "funnel": funnel,
        "times": {label: {"median_s": overall[f"{label}_p50_s"], "p90_s": overall[f"{label}_p90_s"]}
                  for label in TIMES},
        "times_by_feature": times_by_feature,
        "escalations": total["escalations"],
        "deadline_breaches": total["deadline_breaches"],
        "resolutions": [{"feature": feature, **{r: c[r] for r in RESOLUTIONS},
                         "precision": _share(c["needed_help"], c["needed_help"] + c["false_alarm"])}
                        for feature, c in sorted(per_feature.items())],
        "pushes": [dict(p) for p in pushes],
        "agents": agents,
        "series": series,
        "rows": rows,
    }


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)
