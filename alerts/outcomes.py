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

from datetime import date, datetime, time, timedelta, timezone
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from alerts import outcomes_repository as repo

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


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(value) -> float | None:
    return None if value is None else round(float(value), 1)


def _figures(row: dict) -> dict:
    figures = {name: int(row[name]) for name in COUNTS}
    for label, column in TIMES.items():
        p50, p90 = row[f"{column}_q"] or (None, None)
        figures[f"{label}_p50_s"], figures[f"{label}_p90_s"] = _seconds(p50), _seconds(p90)
    return figures


async def report(conn: psycopg.AsyncConnection, *, tenant_id: UUID, first_day: date, end_day: date,
                 bucket: str, now: datetime | None = None) -> dict:
    """The whole report for the local days [first_day, end_day) in ``bucket``s of the tenant's time zone."""
    now = now or datetime.now(timezone.utc)
    tz = zone(await repo.tenant_time_zone(conn))
    tz_name = tz.key
    start, end = local_midnight(first_day, tz), local_midnight(end_day, tz)
    args = {"tenant_id": tenant_id, "start": start, "end": end, "bucket": bucket, "tz": tz_name}
    funnel_rows = await repo.funnel(conn, **args)
    monitored = await repo.monitored_changes(conn, **args)
    consents = await repo.consent_changes(conn, **args)
    active = await repo.active_people(conn, tenant_id=tenant_id, at=min(end, now))
    pushes = await repo.pushes(conn, tenant_id=tenant_id, start=start, end=end)
    agents = await repo.agents(conn, tenant_id=tenant_id, start=start, end=end)

    empty = {name: 0 for name in COUNTS} | {f"{label}_{q}_s": None for label in TIMES for q in ("p50", "p90")}
    total = dict(empty)
    per_bucket: dict[date, dict] = {}
    per_feature: list[dict] = []
    rows: list[dict] = []
    for row in funnel_rows:
        figures = _figures(row)
        if row["no_bucket"] and row["no_feature"]:
            total = figures
        elif row["no_bucket"]:
            per_feature.append({"feature": row["feature"], **figures})
        elif row["no_feature"]:
            per_bucket[row["bucket"]] = figures
        else:
            rows.append({"bucket": row["bucket"].isoformat(), "feature": row["feature"], "severity": row["severity"],
                         **figures})

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
        series.append({"bucket": day.isoformat(), **per_bucket.get(day, empty), "monitored": running,
                       "consent_grants": grants.get(day, 0), "consent_withdrawals": withdrawals.get(day, 0)})

    opened = total["opened"]
    funnel = {step: total[step] for step in FUNNEL_STEPS}
    funnel.update({"answered_fine": total["answered_fine"], "answered_help": total["answered_help"],
                   "answered_call": total["answered_call"],
                   "shares": {step: _share(total[step], opened) for step in FUNNEL_STEPS},
                   "reach_rate": _share(total["answered"], opened)})
    return {
        "from": first_day, "to": end_day, "bucket": bucket, "time_zone": tz_name,
        "people": {"monitored": running, "active": active, "consent_grants": sum(grants.values()),
                   "consent_withdrawals": sum(withdrawals.values())},
        "funnel": funnel,
        "times": {label: {"median_s": total[f"{label}_p50_s"], "p90_s": total[f"{label}_p90_s"]} for label in TIMES},
        "escalations": total["escalations"],
        "deadline_breaches": total["deadline_breaches"],
        "resolutions": [{"feature": f["feature"], **{r: f[r] for r in RESOLUTIONS},
                         "precision": _share(f["needed_help"], f["needed_help"] + f["false_alarm"])}
                        for f in per_feature],
        "pushes": [{k: (int(v) if isinstance(v, int) else v) for k, v in p.items()} for p in pushes],
        "agents": [{**a, "resolve_median_s": _seconds(a.pop("resolve_p50"))} for a in agents],
        "series": series,
        "rows": rows,
    }


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)
