"""The access matrix: every route × caller × target gets the status a small declarative policy says.

The routes come from the app itself, so a new route without an entry in :data:`POLICY` fails
:func:`test_every_route_has_a_policy`. Callers: anonymous; insurer A's policyholder and staff of each role;
insurer B's staff (a tenant_admin) and policyholder. Targets are real objects — an alert, a message, a
person, a dependant, a guardian link — of A (A's own person's, another A person's) and of B. Rules, in order:

* public routes answer everyone alike;
* no token → 401; a token of the wrong kind (policyholder on a staff route, staff on ``/v1/me``, not a
  tenant_admin on ``/v1/admin``) → 403;
* another insurer's object, or another person's → 404 with ``{"detail", "code"}`` only, never data;
* otherwise the route's own answer (with per-role rules such as "only supervisors reassign").

A refused request must change nothing: the database is fingerprinted around every refused call. A request the
policy allows and that changes things gets objects of its own (a fresh alert, person or link), so each cell
starts from a known state.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from alerts.policy import DEFAULT_POLICY
from tests.security.conftest import Insurer, changes, snapshot
from tests.support import wait_for


def app_routes() -> set[str]:
    """``"METHOD /path"`` of every HTTP route (HEAD aside) and ``"WS /path"`` of every WebSocket route."""
    from fastapi import routing

    from app.api.factory import create_app
    from app.core.settings import Settings

    app = create_app(Settings(_env_file=None, jwt_secret="unused"), "postgresql://unused/unused")
    contexts = routing.iter_route_contexts(app.routes) if hasattr(routing, "iter_route_contexts") else app.routes
    found = set()
    for route in contexts:
        methods = getattr(route, "methods", None)
        if methods:
            found |= {f"{m} {route.path}" for m in methods if m != "HEAD"}
        elif route.path:
            found.add(f"WS {route.path}")
    return found


@dataclass(frozen=True)
class Caller:
    name: str
    insurer: str | None  # "a" or "b"; None = anonymous
    role: str | None


CALLERS = (
    Caller("anonymous", None, None),
    Caller("policyholder", "a", "policyholder"),
    Caller("care_agent", "a", "care_agent"),
    Caller("care_supervisor", "a", "care_supervisor"),
    Caller("tenant_admin", "a", "tenant_admin"),
    Caller("other_tenant_staff", "b", "tenant_admin"),
    Caller("other_tenant_policyholder", "b", "policyholder"),
)
AUDIENCES = {"person": {"policyholder"}, "staff": {"care_agent", "care_supervisor", "tenant_admin"},
             "admin": {"tenant_admin"}}
AUDIENCES["signed_in"] = AUDIENCES["person"] | AUDIENCES["staff"]


@dataclass(frozen=True)
class Target:
    name: str
    insurer: str
    owner: str | None  # the only policyholder who may reach it (None: anyone of the insurer's staff)
    params: dict


# Kinds tried on one object of A's and the same object of B's (any of the insurer's staff may reach them):
# kind -> (what the object is called, its route parameters on an insurer).
_STAFF_OBJECTS = {
    "alert": ("alert", lambda i: {"alert_id": i.alert_id}),
    "person": ("person", lambda i: {"person": i.me}),
    "erasable": ("person", lambda i: {"external_id": i.other}),
    "link": ("link", lambda i: {"guardian": i.me, "minor": i.kid}),
    "webhook": ("webhook", lambda i: {"endpoint_id": i.webhook_id}),
    "webhook_delivery": ("webhook event", lambda i: {"endpoint_id": i.webhook_id,
                                                     "delivery_id": i.webhook_delivery_id}),
}


def targets(kind: str, a: Insurer, b: Insurer) -> list[Target]:
    """The objects of ``kind`` a route is tried on: A's (its own person's and another person's) and B's."""
    if kind == "message":
        return [Target("own message", "a", a.me, {"message_id": a.message_id}),
                Target("other person's message", "a", a.other, {"message_id": a.other_message_id}),
                Target("other tenant's message", "b", b.me, {"message_id": b.message_id})]
    if kind == "dependant":
        return [Target("own dependant", "a", a.me, {"person": a.kid}),
                Target("other person (not a dependant)", "a", a.other, {"person": a.other}),
                Target("other tenant's dependant", "b", b.me, {"person": b.kid})]
    if kind not in _STAFF_OBJECTS:
        raise AssertionError(kind)
    noun, params = _STAFF_OBJECTS[kind]
    return [Target(f"own tenant's {noun}", "a", None, params(a)),
            Target(f"other tenant's {noun}", "b", None, params(b))]


@dataclass(frozen=True)
class Policy:
    audience: str  # public | signed_in | person | staff | admin
    ok: int = 200
    target: str | None = None
    params: dict = field(default_factory=dict)
    query: dict | None = None
    body: Callable[[Insurer], object] | None = None
    by_role: dict = field(default_factory=dict)  # role → status, where the route has a rule of its own
    fresh: str | None = None  # what an allowed call needs of its own (see Matrix.prepare)


def _reading(_: Insurer) -> dict:
    at = datetime.now(timezone.utc) - timedelta(seconds=uuid.uuid4().int % 3600)
    return {"readings": [{"metric": "heart_rate", "time": at.isoformat(), "value": 71, "source": "matrix"}]}


def _at() -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=uuid.uuid4().int % 3600)).isoformat()


def _hc_change(_: Insurer) -> dict:
    return {"changes": [{"upsertionChange": {"record": {
        "recordType": "RestingHeartRateRecord", "time": _at(), "zoneOffset": "+08:00", "beatsPerMinute": 60,
        "metadata": {"id": uuid.uuid4().hex, "dataOrigin": {"packageName": "matrix"}}}}}]}


def _hk_samples(_: Insurer) -> dict:
    return {"samples": [{"uuid": uuid.uuid4().hex, "sampleType": "HKQuantityTypeIdentifierHeartRate", "startDate": _at(),
                         "quantity": 61, "unit": "count/min",
                         "sourceRevision": {"source": {"bundleIdentifier": "matrix"}}}]}


def _huawei_set(_: Insurer) -> dict:
    ns = int((datetime.now(timezone.utc) - timedelta(seconds=uuid.uuid4().int % 3600)).timestamp()) * 10**9
    return {"sampleSets": [{"dataCollectorId": "matrix", "dataType": "DT_INSTANTANEOUS_HEART_RATE", "startTime": ns,
                            "endTime": ns, "samplePoints": [{"startTime": ns, "endTime": ns,
                                                             "fieldValues": {"bpm": 62}}]}]}


def _observation(_: Insurer) -> dict:
    return {"resourceType": "Observation", "status": "final", "identifier": [{"system": "urn:matrix",
                                                                             "value": uuid.uuid4().hex}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}, "effectiveDateTime": _at(),
            "valueQuantity": {"value": 63, "code": "/min"}}


def _device(_: Insurer) -> dict:
    return {"token": f"tok-{uuid.uuid4().hex}", "platform": "android"}


def _device_token(_: Insurer) -> dict:
    return {"token": f"tok-{uuid.uuid4().hex}"}


def _grant(_: Insurer) -> dict:
    return {"notice_version": "matrix"}


def _new_link(i: Insurer) -> dict:
    # A name nobody has: a refused request must not create this person (the snapshot would show it).
    return {"guardian": i.me, "minor": f"pool-{i.label}-{uuid.uuid4().hex[:10]}", "minor_birth_date": "2019-02-03"}


def _webhook(i: Insurer) -> dict:
    return {"url": f"https://crm-{i.label}.example.com/matrix", "events": ["alert.resolved"], "enabled": False}


CONSENT = {"data_type": "sleep", "purpose": "research"}  # used by nothing else: changing it disturbs no other cell
POLICY: dict[str, Policy] = {
    # operations and documentation: no token needed
    "GET /healthz": Policy("public"),
    "GET /readyz": Policy("public"),
    "GET /metrics": Policy("public"),
    "GET /openapi.json": Policy("public"),
    "GET /docs": Policy("public"),
    "GET /docs/oauth2-redirect": Policy("public"),
    "GET /redoc": Policy("public"),
    "GET /care": Policy("public"),
    "GET /care/": Policy("public", ok=308),
    "GET /care/static/{path:path}": Policy("public", params={"path": "app.js"}),
    "GET /me": Policy("public"),
    "GET /me/": Policy("public", ok=308),
    "GET /me/static/{path:path}": Policy("public", params={"path": "me.js"}),
    # public metadata, for anyone with a token
    "GET /v1/data-types": Policy("signed_in"),
    "GET /care/outcomes": Policy("public"),
    # a policyholder's own
    "POST /v1/readings": Policy("person", body=_reading),
    "POST /v1/sync/health-connect": Policy("person", body=_hc_change),
    "POST /v1/sync/healthkit": Policy("person", body=_hk_samples),
    "POST /v1/sync/huawei": Policy("person", body=_huawei_set),
    "POST /fhir/r4/Observation": Policy("person", ok=201, body=_observation),
    "GET /v1/me/source-priority": Policy("person"),
    "PUT /v1/me/source-priority/{metric}": Policy("person", params={"metric": "steps"},
                                                  body=lambda i: {"sources": ["health-connect:matrix"]}),
    "POST /fhir/r4": Policy("person", body=lambda i: {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": _observation(i), "request": {"method": "POST", "url": "Observation"}}]}),
    "WS /v1/stream": Policy("person", ok=101),
    "GET /v1/me": Policy("person"),
    "PATCH /v1/me": Policy("person", body=lambda i: {"language": "en"}),
    "DELETE /v1/me": Policy("person", fresh="identity"),
    "GET /v1/me/export": Policy("person"),
    "GET /v1/me/readings": Policy("person"),
    "GET /v1/me/consents": Policy("person"),
    "GET /v1/me/consents/history": Policy("person"),
    "GET /v1/me/consents/fhir": Policy("person"),
    "PUT /v1/me/consents/{data_type}/{purpose}": Policy("person", params=CONSENT, body=_grant),
    "DELETE /v1/me/consents/{data_type}/{purpose}": Policy("person", params=CONSENT),
    "PUT /v1/me/consents/{data_type}": Policy("person", params={"data_type": "sleep"}),
    "DELETE /v1/me/consents/{data_type}": Policy("person", params={"data_type": "sleep"}),
    "GET /v1/me/dependants": Policy("person"),
    "GET /v1/me/dependants/{person}/consents": Policy("person", target="dependant"),
    "GET /v1/me/dependants/{person}/consents/history": Policy("person", target="dependant"),
    "PUT /v1/me/dependants/{person}/consents/{data_type}/{purpose}": Policy(
        "person", target="dependant", params={"data_type": "sleep", "purpose": "monitoring"}, body=_grant),
    "DELETE /v1/me/dependants/{person}/consents/{data_type}/{purpose}": Policy(
        "person", target="dependant", params={"data_type": "sleep", "purpose": "monitoring"}),
    "POST /v1/me/devices": Policy("person", ok=201, body=_device),
    "DELETE /v1/me/devices": Policy("person", ok=204, body=_device_token),
    "GET /v1/me/messages/{message_id}": Policy("person", target="message"),
    "POST /v1/me/messages/{message_id}/reply": Policy("person", target="message", body=lambda i: {"answer": "help"}),
    "GET /v1/me/notices": Policy("person"),
    "GET /v1/me/data/{data_type}": Policy("person", params={"data_type": "heart_rate"}),
    "GET /v1/me/messages": Policy("person"),
    "GET /v1/me/quiet-hours": Policy("person"),
    "GET /v1/me/access-log": Policy("person"),
    "PUT /v1/me/quiet-hours": Policy("person", body=lambda i: {"start": "22:00:00", "end": "08:00:00"}),
    # the care team
    "WS /v1/care/live": Policy("staff", ok=101),
    "GET /v1/care/alerts": Policy("staff"),
    "GET /v1/care/alerts/{alert_id}": Policy("staff", target="alert"),
    "POST /v1/care/alerts/{alert_id}/claim": Policy("staff", target="alert", fresh="alert"),
    "POST /v1/care/alerts/{alert_id}/contact": Policy("staff", target="alert", fresh="claimed_alert"),
    "POST /v1/care/alerts/{alert_id}/resolve": Policy("staff", target="alert", fresh="alert",
                                                      body=lambda i: {"reason": "false_alarm"}),
    "POST /v1/care/alerts/{alert_id}/reassign": Policy(
        "staff", target="alert", fresh="alert", body=lambda i: {"assignee": i.staff["care_agent"]},
        by_role={"care_agent": 403}),
    "POST /v1/care/alerts/{alert_id}/reopen": Policy("staff", target="alert", fresh="resolved_alert"),
    "POST /v1/care/alerts/{alert_id}/reach-out": Policy("staff", target="alert", fresh="alert"),
    # need-to-know: A's person has an open alert, so an agent may look; a tenant admin needs a reason
    "GET /v1/care/people/{person}/readings": Policy("staff", target="person", query={"metric": "heart_rate"},
                                                    by_role={"tenant_admin": 403}),
    "GET /v1/care/audit": Policy("staff", by_role={"care_agent": 403}),
    "GET /v1/care/escalation-policy": Policy("staff"),
    "PUT /v1/care/escalation-policy": Policy("admin", body=lambda i: DEFAULT_POLICY.model_dump(mode="json")),
    "PUT /v1/care/me/on-duty": Policy("staff", body=lambda i: {"on_duty": False}),
    "POST /v1/care/me/devices": Policy("staff", ok=201, body=_device),
    "DELETE /v1/care/me/devices": Policy("staff", ok=204, body=_device_token),
    "GET /v1/care/outcomes": Policy("staff", by_role={"care_agent": 403}),
    # the insurer's administrators
    "GET /v1/tenant/webhooks": Policy("admin"),
    "POST /v1/tenant/webhooks": Policy("admin", ok=201, body=_webhook),
    "GET /v1/tenant/webhooks/{endpoint_id}": Policy("admin", target="webhook"),
    "PATCH /v1/tenant/webhooks/{endpoint_id}": Policy("admin", target="webhook",
                                                      body=lambda i: {"description": "matrix"}),
    "DELETE /v1/tenant/webhooks/{endpoint_id}": Policy("admin", ok=204, target="webhook", fresh="webhook"),
    "POST /v1/tenant/webhooks/{endpoint_id}/rotate-secret": Policy("admin", target="webhook",
                                                                   body=lambda i: {"overlap_minutes": 0}),
    "GET /v1/tenant/webhooks/{endpoint_id}/deliveries": Policy("admin", target="webhook"),
    "POST /v1/tenant/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay": Policy(
        "admin", ok=202, target="webhook_delivery", fresh="webhook_delivery"),
    "POST /v1/admin/people/{external_id}/erasure": Policy("admin", target="erasable", fresh="erasable",
                                                          body=lambda i: {"reason": "access matrix"}),
    "POST /v1/admin/guardianships": Policy("admin", ok=201, body=_new_link, fresh="link_body"),
    "GET /v1/admin/guardianships": Policy("admin"),
    "GET /v1/tenant/detection": Policy("staff"),
    "PUT /v1/tenant/detection": Policy("admin", body=lambda i: {"operating_point": "standard"}),
    "DELETE /v1/admin/guardianships/{guardian}/{minor}": Policy("admin", target="link", fresh="link"),
}


def expected(policy: Policy, caller: Caller, target: Target | None, insurers: dict[str, Insurer]) -> int:
    if policy.audience == "public":
        return policy.ok
    refused = 403 if policy.ok == 101 else None  # a WebSocket handshake is refused with 403, whatever the reason
    if caller.role is None:
        return refused or 401
    if caller.role not in AUDIENCES[policy.audience]:
        return refused or 403
    if target is not None:
        me = insurers[caller.insurer].me if caller.role == "policyholder" else None
        if target.insurer != caller.insurer or (target.owner is not None and target.owner != me):
            return 404
    return policy.by_role.get(caller.role, policy.ok)


@dataclass
class Cell:
    caller: Caller
    target: Target | None
    expected: int

    @property
    def label(self) -> str:
        return f"{self.caller.name} → {self.target.name + ' of ' + self.target.insurer if self.target else '-'}"


class Matrix:
    def __init__(self, service, a: Insurer, b: Insurer):
        self.service, self.a, self.b = service, a, b
        self.insurers = {"a": a, "b": b}
        self.http = httpx.Client(base_url=service.base_url, timeout=30, follow_redirects=False)
        self.alerts: list[str] = []

    def cells(self, policy: Policy) -> list[Cell]:
        found = []
        for caller in CALLERS:
            options = targets(policy.target, self.a, self.b) if policy.target else [None]
            for target in options:
                # B's callers are tried on A's objects (to them: another insurer's); A's own callers cover B's.
                if target is not None and caller.insurer == "b" and target.insurer == "b":
                    continue
                found.append(Cell(caller, target, expected(policy, caller, target, self.insurers)))
        return found

    def token(self, caller: Caller) -> str | None:
        if caller.role is None:
            return None
        insurer = self.insurers[caller.insurer]
        return insurer.person_token() if caller.role == "policyholder" else insurer.staff_token(caller.role)

    def reserve_alerts(self, n: int) -> None:
        self.alerts = self.a.fresh_alerts(n)

    def prepare(self, policy: Policy, cell: Cell, token: str | None, params: dict, body):
        """For an allowed call that changes things: objects (or an identity) of its own."""
        insurer = self.insurers[cell.caller.insurer] if cell.caller.insurer else None
        if policy.fresh == "identity":
            token = insurer.person_token(insurer.fresh_people(1)[0])
        elif policy.fresh in ("alert", "claimed_alert", "resolved_alert"):
            params = {**params, "alert_id": self.alerts.pop()}
            if policy.fresh == "claimed_alert":
                claimed = self.http.post(f"/v1/care/alerts/{params['alert_id']}/claim",
                                         headers={"Authorization": f"Bearer {token}"})
                assert claimed.status_code == 200, claimed.text
            elif policy.fresh == "resolved_alert":
                resolved = self.a.staff_client("tenant_admin").post(f"/v1/care/alerts/{params['alert_id']}/resolve",
                                                                    json={"reason": "no_response"})
                assert resolved.status_code == 200, resolved.text
        elif policy.fresh == "erasable":
            params = {**params, "external_id": insurer.fresh_people(1)[0]}
        elif policy.fresh == "link":
            minor = insurer.fresh_people(1)[0]
            linked = insurer.staff_client("tenant_admin").post("/v1/admin/guardianships", json={
                "guardian": insurer.me, "minor": minor, "minor_birth_date": "2019-02-03"})
            assert linked.status_code == 201, linked.text
            params = {**params, "guardian": insurer.me, "minor": minor}
        elif policy.fresh == "webhook":
            params = {**params, "endpoint_id": insurer.add_webhook()}
        elif policy.fresh == "webhook_delivery":
            params = {**params, "delivery_id": insurer.add_webhook_delivery(params["endpoint_id"])}
        elif policy.fresh == "link_body":
            insurer.pool_people.append(body["minor"])
        return token, params, body

    def call(self, method: str, path: str, policy: Policy, cell: Cell) -> tuple[int, httpx.Response | None]:
        token = self.token(cell.caller)
        params = {**policy.params, **(cell.target.params if cell.target else {})}
        body = policy.body(self.insurers[cell.caller.insurer or "a"]) if policy.body else None
        if policy.fresh and cell.expected < 400:
            token, params, body = self.prepare(policy, cell, token, params, body)
        url = path.replace(":path}", "}").format(**params)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if method == "WS":
            ws_url = self.service.base_url.replace("http", "ws", 1) + url
            try:
                with connect(ws_url, additional_headers=headers, open_timeout=10):
                    return 101, None
            except InvalidStatus as refused:
                return refused.response.status_code, None
        response = self.http.request(method, url, params=policy.query, headers=headers,
                                     json=body if body is not None else None)
        return response.status_code, response

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def matrix(service, insurers):
    m = Matrix(service, *insurers)
    yield m
    m.close()


def test_every_route_has_a_policy():
    routes = app_routes()
    assert routes - POLICY.keys() == set(), "routes without an access policy: add them to POLICY"
    assert POLICY.keys() - routes == set(), "POLICY names routes that no longer exist"


def _leaks(response: httpx.Response | None, insurers: dict[str, Insurer]) -> list[str]:
    """What is wrong with a refusal's body: anything but ``{"detail", "code"}``, or another object's data."""
    if response is None:
        return []
    problems = []
    try:
        body = response.json()
    except ValueError:
        return [f"not JSON: {response.text[:200]!r}"]
    if not isinstance(body, dict) or not set(body) <= {"detail", "code"}:
        problems.append(f"body is more than detail/code: {body!r:.300}")
    for insurer in insurers.values():
        if insurer.marker in response.text:
            problems.append(f"contains insurer {insurer.label}'s data")
    if response.status_code == 401 and response.headers.get("www-authenticate", "").lower() != "bearer":
        problems.append("401 without WWW-Authenticate: Bearer")
    return problems


@pytest.mark.parametrize("route", sorted(POLICY))
def test_access(route, matrix, service):
    method, path = route.split(" ", 1)
    policy = POLICY[route]
    cells = matrix.cells(policy)
    allowed_fresh = [c for c in cells if policy.fresh in ("alert", "claimed_alert", "resolved_alert")
                     and c.expected < 400]
    matrix.reserve_alerts(len(allowed_fresh))
    failures = []
    with service.admin_conn() as conn:
        for cell in cells:
            refused = cell.expected >= 400
            before = snapshot(service, matrix.a, matrix.b, conn=conn) if refused else None
            status, response = matrix.call(method, path, policy, cell)
            if status != cell.expected:
                detail = response.text[:200] if response is not None else ""
                failures.append(f"{cell.label}: expected {cell.expected}, got {status} {detail}")
                continue
            if refused:
                failures += [f"{cell.label}: {p}" for p in _leaks(response, matrix.insurers)]
                changed = changes(before, snapshot(service, matrix.a, matrix.b, conn=conn))
                if changed:
                    failures.append(f"{cell.label}: a refused request changed {changed}")
    assert not failures, f"{route}:\n  " + "\n  ".join(failures)


# --- consent-aware staff access: consent state × data type × role × alert relation × tenant -------------------
#
# The routes where staff reach a person's health data (readings, an alert's detail, the live feed) or act on it
# (reach out, reopen) are found in the app's routes like the rest; every one must have a rule here. Each person of
# A's pool below starts with monitoring and outreach consent for heart_rate and spo2, readings of both and (when
# the relation says so) a heart_rate alert; then their heart_rate consent is put into one state:
# granted (in force), withdrawn (by the person, through the API: the worker closes the alert), expired (valid_until
# passed; the API's expiry sweep then records it) or never (no decision recorded at all). spo2 stays in force: hiding is per
# data type.

CONSENT_STATES = ("granted", "withdrawn", "expired", "never")
STAFF = ("care_agent", "care_supervisor", "tenant_admin")
CONSENT_ROUTES = {
    "GET /v1/care/people/{person}/readings",
    "GET /v1/care/alerts/{alert_id}",
    "WS /v1/care/live",
    "POST /v1/care/alerts/{alert_id}/reach-out",
    "POST /v1/care/alerts/{alert_id}/reopen",
}


def consent_gated_routes() -> set[str]:
    """Staff routes that show or act on one person's health data, from the app's own routes."""
    return {r for r in app_routes()
            if r.startswith(("GET /v1/care/people/", "GET /v1/care/alerts/{", "WS /v1/care/live"))
            or r.endswith(("/reach-out", "/reopen"))}


def test_every_consent_gated_route_is_in_the_consent_matrix():
    assert consent_gated_routes() == CONSENT_ROUTES


@dataclass
class Subject:
    name: str
    state: str
    with_alert: bool
    alert_id: str | None = None


@pytest.fixture(scope="module")
def consent_people(insurers, service):
    a, _ = insurers
    people = []
    for state in CONSENT_STATES:
        for with_alert in (True, False):
            name = a.fresh_people(1, outreach=True)[0]
            a.grant(name, "spo2")
            a.grant(name, "spo2", "outreach")
            a.send_readings(name)
            at = datetime.now(timezone.utc) - timedelta(minutes=5)
            sent = a.person_client(name).post("/v1/readings", json={"readings": [
                {"metric": "spo2", "time": (at - timedelta(minutes=m)).isoformat(), "value": 96} for m in range(5)]})
            assert sent.json()["accepted"] == 5, sent.text
            people.append(Subject(name, state, with_alert))
    for subject, alert_id in zip([p for p in people if p.with_alert],
                                 a.open_alerts([p.name for p in people if p.with_alert])):
        subject.alert_id = alert_id
    for p in people:
        pid = a.person_id(p.name)
        if p.state == "withdrawn":
            assert a.person_client(p.name).delete("/v1/me/consents/heart_rate/monitoring").status_code == 200
        with service.admin_conn() as conn:
            if p.state == "expired":
                conn.execute("UPDATE consent_state SET valid_until = now() - interval '1 minute' "
                             "WHERE person_id = %s AND data_type = 'heart_rate'", (pid,))
            elif p.state == "never":
                conn.execute("DELETE FROM consent_state WHERE person_id = %s AND data_type = 'heart_rate'", (pid,))
    for p in people:
        if p.state == "withdrawn" and p.with_alert:
            def closed(p=p):
                with service.admin_conn() as conn:
                    return conn.execute("SELECT resolution FROM alerts WHERE id = %s", (p.alert_id,)).fetchone()[0]
            assert wait_for(closed, timeout=30) == "consent_withdrawn"
    return people


def _expect_readings(role: str, p: Subject, data_type: str) -> tuple[int, bool | None]:
    """(status, data hidden?) of a look at ``p``'s ``data_type`` readings by A's staff in ``role``, no reason."""
    allowed = role == "care_supervisor" or (role == "care_agent" and p.with_alert)
    if not allowed:
        return 403, None
    return 200, data_type == "heart_rate" and p.state != "granted"


def test_consent_matrix_readings(insurers, consent_people):
    a, b = insurers
    failures = []
    for p in consent_people:
        for data_type in ("heart_rate", "spo2"):
            for role in STAFF:
                want, hidden = _expect_readings(role, p, data_type)
                got = a.staff_client(role).get(f"/v1/care/people/{p.name}/readings", params={"metric": data_type})
                label = f"{role} → {p.state} {data_type} ({'alert' if p.with_alert else 'no alert'})"
                if got.status_code != want:
                    failures.append(f"{label}: expected {want}, got {got.status_code} {got.text[:120]}")
                    continue
                if want == 200:
                    body = got.json()
                    if body["data_hidden"] != hidden or bool(body["points"]) == hidden:
                        failures.append(f"{label}: hidden={body['data_hidden']} points={len(body['points'])}")
                    if hidden and body["consent"] != p.state:
                        failures.append(f"{label}: consent says {body['consent']}")
                else:
                    assert got.json()["code"] == "need_to_know", got.text
            other = b.staff_client("tenant_admin").get(f"/v1/care/people/{p.name}/readings",
                                                       params={"metric": data_type, "reason": "curious"})
            if other.status_code != 404:
                failures.append(f"other tenant → {p.state} {data_type}: {other.status_code}")
    assert not failures, "\n  ".join(failures)


def test_consent_matrix_alert_detail(insurers, consent_people):
    a, b = insurers
    failures = []
    for p in (p for p in consent_people if p.with_alert):
        for role in STAFF:
            got = a.staff_client(role).get(f"/v1/care/alerts/{p.alert_id}")
            label = f"{role} → {p.state} alert"
            if got.status_code != 200:
                failures.append(f"{label}: {got.status_code}")
                continue
            body, shown = got.json(), p.state == "granted"
            if body["data_hidden"] == shown or bool(body["evidence"]) != shown or (a.marker in got.text) != shown:
                failures.append(f"{label}: hidden={body['data_hidden']} evidence={len(body['evidence'])}")
            if not shown and ("bpm" in got.text or "baseline" in got.text):
                failures.append(f"{label}: values in {got.text[:200]}")
        if b.staff_client("tenant_admin").get(f"/v1/care/alerts/{p.alert_id}").status_code != 404:
            failures.append(f"other tenant → {p.state} alert: not 404")
    assert not failures, "\n  ".join(failures)


def test_consent_matrix_reach_out_and_reopen(insurers, consent_people):
    a, b = insurers
    failures = []
    admin = a.staff_client("tenant_admin")
    for p in (p for p in consent_people if p.with_alert):
        for role in STAFF:
            label = f"{role} → {p.state}"
            reach = a.staff_client(role).post(f"/v1/care/alerts/{p.alert_id}/reach-out")
            state = admin.get(f"/v1/care/alerts/{p.alert_id}").json()["status"]
            want = (200, None) if p.state == "granted" else (
                (409, "conflict") if state == "resolved" else (409, "no_outreach_consent"))
            if (reach.status_code, reach.json().get("code") if reach.status_code != 200 else None) != want:
                failures.append(f"{label} reach-out: expected {want}, got {reach.status_code} {reach.text[:120]}")
            if state != "resolved":
                assert admin.post(f"/v1/care/alerts/{p.alert_id}/resolve",
                                  json={"reason": "no_response"}).status_code == 200
            reopen = a.staff_client(role).post(f"/v1/care/alerts/{p.alert_id}/reopen")
            want = (200, None) if p.state == "granted" else (409, "consent_not_in_force")
            if (reopen.status_code, reopen.json().get("code") if reopen.status_code != 200 else None) != want:
                failures.append(f"{label} reopen: expected {want}, got {reopen.status_code} {reopen.text[:120]}")
        for path in ("reach-out", "reopen"):
            if b.staff_client("tenant_admin").post(f"/v1/care/alerts/{p.alert_id}/{path}").status_code != 404:
                failures.append(f"other tenant → {p.state} {path}: not 404")
    assert not failures, "\n  ".join(failures)


def test_consent_matrix_live_feed(service, insurers, consent_people):
    """Every role's feed names an alert only while its monitoring consent is in force; another insurer's feed
    never hears of it."""
    a, b = insurers
    admin = a.staff_client("tenant_admin")
    ws_url = service.base_url.replace("http", "ws", 1) + "/v1/care/live"
    stack = ExitStack()
    feeds = {role: stack.enter_context(connect(ws_url, additional_headers={
        "Authorization": f"Bearer {a.staff_token(role)}"})) for role in STAFF}
    feeds["other tenant"] = stack.enter_context(connect(ws_url, additional_headers={
        "Authorization": f"Bearer {b.staff_token('tenant_admin')}"}))
    try:
        for p in (p for p in consent_people if p.with_alert):
            # One change per alert, whatever its state: resolve it if open, reopen it if closed and in force,
            # else the person's answer to a check-in touches it.
            detail = admin.get(f"/v1/care/alerts/{p.alert_id}").json()
            if detail["status"] != "resolved":
                assert admin.post(f"/v1/care/alerts/{p.alert_id}/resolve",
                                  json={"reason": "no_response"}).status_code == 200
            elif p.state == "granted":
                assert admin.post(f"/v1/care/alerts/{p.alert_id}/reopen").status_code == 200
            else:  # a withdrawn, closed alert: the person's later answer is what touches it
                with service.admin_conn() as conn:
                    message = conn.execute(
                        """INSERT INTO notifications (tenant_id, recipient_kind, person_id, alert_id, purpose, metric,
                                                      status) VALUES (%s, 'person', %s, %s, 'check_in', 'heart_rate',
                                                      'sent') RETURNING id""",
                        (a.id, a.person_id(p.name), p.alert_id)).fetchone()[0]
                assert a.person_client(p.name).post(f"/v1/me/messages/{message}/reply",
                                                    json={"answer": "fine"}).status_code == 200
        heard = {}
        for role, feed in feeds.items():
            frames = []
            try:
                while True:
                    frames.append(feed.recv(timeout=2))
            except TimeoutError:
                pass
            heard[role] = "\n".join(frames)
        failures = []
        for p in (p for p in consent_people if p.with_alert):
            for role in STAFF:
                if (p.alert_id in heard[role]) != (p.state == "granted"):
                    failures.append(f"{role} feed → {p.state}: named={p.alert_id in heard[role]}")
            if p.alert_id in heard["other tenant"]:
                failures.append(f"other tenant feed → {p.state}: named")
        for role in STAFF:
            if '"hidden"' not in heard[role]:
                failures.append(f"{role} feed: no anonymous change for hidden alerts")
        assert not failures, "\n  ".join(failures)
    finally:
        stack.close()
