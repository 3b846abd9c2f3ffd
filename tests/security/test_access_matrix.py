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
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from alerts.policy import DEFAULT_POLICY
from tests.security.conftest import Insurer, changes, snapshot


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


@dataclass(frozen=True)
class Target:
    name: str
    insurer: str
    owner: str | None  # the only policyholder who may reach it (None: anyone of the insurer's staff)
    params: dict


def targets(kind: str, a: Insurer, b: Insurer) -> list[Target]:
    """The objects of ``kind`` a route is tried on: A's (its own person's and another person's) and B's."""
    if kind == "alert":
        return [Target("own tenant's alert", "a", None, {"alert_id": a.alert_id}),
                Target("other tenant's alert", "b", None, {"alert_id": b.alert_id})]
    if kind == "message":
        return [Target("own message", "a", a.me, {"message_id": a.message_id}),
                Target("other person's message", "a", a.other, {"message_id": a.other_message_id}),
                Target("other tenant's message", "b", b.me, {"message_id": b.message_id})]
    if kind == "person":
        return [Target("own tenant's person", "a", None, {"person": a.me}),
                Target("other tenant's person", "b", None, {"person": b.me})]
    if kind == "dependant":
        return [Target("own dependant", "a", a.me, {"person": a.kid}),
                Target("other person (not a dependant)", "a", a.other, {"person": a.other}),
                Target("other tenant's dependant", "b", b.me, {"person": b.kid})]
    if kind == "erasable":
        return [Target("own tenant's person", "a", None, {"external_id": a.other}),
                Target("other tenant's person", "b", None, {"external_id": b.other})]
    if kind == "link":
        return [Target("own tenant's link", "a", None, {"guardian": a.me, "minor": a.kid}),
                Target("other tenant's link", "b", None, {"guardian": b.me, "minor": b.kid})]
    if kind == "webhook":
        return [Target("own tenant's webhook", "a", None, {"endpoint_id": a.webhook_id}),
                Target("other tenant's webhook", "b", None, {"endpoint_id": b.webhook_id})]
    if kind == "webhook_delivery":
        return [Target("own tenant's webhook event", "a", None,
                       {"endpoint_id": a.webhook_id, "delivery_id": a.webhook_delivery_id}),
                Target("other tenant's webhook event", "b", None,
                       {"endpoint_id": b.webhook_id, "delivery_id": b.webhook_delivery_id})]
    raise AssertionError(kind)


@dataclass(frozen=True)
class Policy:
    audience: str  # public | person | staff | admin
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
    "GET /care/outcomes": Policy("public"),
    # a policyholder's own
    "POST /v1/readings": Policy("person", body=_reading),
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
    "GET /v1/me/quiet-hours": Policy("person"),
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
    "GET /v1/care/people/{person}/readings": Policy("staff", target="person", query={"metric": "heart_rate"}),
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
