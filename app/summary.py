"""What the service has done for one insurer, for `beidou status` and the demo's closing summary."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from uuid import UUID

import psycopg


@dataclass
class Summary:
    people_streaming: int       # people with a reading received in the last 5 minutes
    people: int
    readings_stored: int
    readings_too_late: int      # stored but never scored: older than the allowed lateness when they came
    alerts_opened: int
    alerts_resolved: int
    alerts_open: int
    pushes_sent: int
    pushes_failed: int
    replies: int
    latency_p50_s: float | None  # anomalous reading received → alert in the queue
    latency_p99_s: float | None

    def as_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        def s(v):
            return "n/a" if v is None else f"{v:.2f} s"
        return [
            f"people streaming now        {self.people_streaming} of {self.people}",
            f"readings stored             {self.readings_stored:,}",
            f"readings too late to score  {self.readings_too_late:,}",
            f"alerts opened / resolved    {self.alerts_opened} / {self.alerts_resolved} ({self.alerts_open} still open)",
            f"pushes sent / failed        {self.pushes_sent} / {self.pushes_failed}",
            f"answers from people         {self.replies}",
            f"anomalous reading → alert   p50 {s(self.latency_p50_s)}, p99 {s(self.latency_p99_s)}",
        ]


def summarise(url: str, tenant_id: UUID) -> Summary:
    """Read the figures as the service role inside the tenant's context (row-level security applies)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('beidou.tenant_id', %s, false)", (str(tenant_id),))
        one = lambda sql: conn.execute(sql).fetchone()  # noqa: E731
        people, streaming = one("""SELECT count(*), count(*) FILTER (WHERE last_seen > now() - interval '5 minutes')
                                     FROM (SELECT person_id, max(last_seen) AS last_seen FROM sources
                                           GROUP BY person_id) s""")
        stored = one("SELECT count(*) FROM readings_hot")[0]
        too_late = one("SELECT coalesce(sum(late_readings), 0) FROM detector_state")[0]
        opened, resolved, still_open = one("""SELECT count(*), count(*) FILTER (WHERE status = 'resolved'),
                                                     count(*) FILTER (WHERE status <> 'resolved') FROM alerts""")
        sent, failed, replies = one("""SELECT count(*) FILTER (WHERE status IN ('sent', 'opened', 'answered')),
                                              count(*) FILTER (WHERE status = 'failed'),
                                              count(*) FILTER (WHERE answer IS NOT NULL) FROM notifications""")
        p50, p99 = one("""SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lat), percentile_cont(0.99) WITHIN GROUP (ORDER BY lat)
                            FROM (SELECT extract(epoch FROM a.opened_at - min(e.source_received_at)) AS lat
                                    FROM alerts a JOIN alert_evidence v ON v.alert_id = a.id
                                    JOIN anomaly_events e ON e.id = v.anomaly_event_id
                                   WHERE e.source_received_at IS NOT NULL AND e.created_at <= a.opened_at + interval '1 second'
                                   GROUP BY a.id, a.opened_at) x""")
    return Summary(people_streaming=streaming, people=people, readings_stored=stored,
                   readings_too_late=too_late,
                   alerts_opened=opened, alerts_resolved=resolved, alerts_open=still_open, pushes_sent=sent,
                   pushes_failed=failed, replies=replies, latency_p50_s=p50, latency_p99_s=p99)
