"""Forged, stale and malformed bearer tokens are refused on HTTP routes and on both WebSocket handshakes.

Each attack starts from a token the service would accept (the control case proves it is) and breaks one
thing: the algorithm, the signature, a time claim, the audience or issuer, a required claim, the tenant or the
role. Over HTTP the answer is 401 with ``WWW-Authenticate: Bearer`` and nothing but ``{"detail", "code":
"unauthorized"}``; a WebSocket handshake is refused (HTTP 403), whether the token comes as a header or as the
``access_token`` query parameter browsers use. A refused token provisions nobody.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable

import httpx
import jwt
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.security.conftest import Insurer

# (path, role the token claims, whether it is a WebSocket)
ENDPOINTS = (
    ("/v1/me", "policyholder", False),
    ("/v1/care/alerts", "tenant_admin", False),
    ("/v1/stream", "policyholder", True),
    ("/v1/care/live", "tenant_admin", True),
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw(header: dict, claims: dict, key: bytes | None, digest=hashlib.sha256) -> str:
    """A JWT put together by hand, so nothing in a library stops a malformed one."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = _b64(hmac.new(key, signing_input.encode(), digest).digest()) if key is not None else ""
    return f"{signing_input}.{signature}"


class Forge:
    """Builds tokens for one insurer with the service's own settings (issuer, audience, secret)."""

    def __init__(self, service, insurer: Insurer):
        self.settings = service.settings
        self.insurer = insurer
        self.secret = service.settings.jwt_secret
        self.subjects: list[str] = []
        self.accepted: set[str] = set()  # subjects of the control tokens, which may be provisioned

    def claims(self, as_role: str, **changes) -> dict:
        now = int(time.time())
        subject = f"attacker-{uuid.uuid4().hex[:10]}"
        self.subjects.append(subject)
        claims = {"iss": self.settings.jwt_issuer, "aud": self.settings.jwt_audience, "sub": subject,
                  "tid": str(self.insurer.id), "role": as_role, "iat": now, "exp": now + 600}
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not _DROP}

    def sign(self, claims: dict, key: str | None = None, algorithm: str = "HS256", headers: dict | None = None) -> str:
        return jwt.encode(claims, key or self.secret, algorithm=algorithm, headers=headers)


_DROP = object()
NOW = int(time.time())
LEEWAY_S = 30  # the service's default BEIDOU_JWT_LEEWAY_S

# name → how to make the token from (forge, role)
ATTACKS: dict[str, Callable[[Forge, str], str]] = {
    "alg none (unsigned)": lambda f, r: _raw({"alg": "none", "typ": "JWT"}, f.claims(r), None),
    "alg None, capitalised": lambda f, r: _raw({"alg": "None", "typ": "JWT"}, f.claims(r), None),
    "alg none keeping a valid signature": lambda f, r: (
        _b64(b'{"alg":"none","typ":"JWT"}') + "." + f.sign(f.claims(r)).split(".", 1)[1]),
    "expired": lambda f, r: f.sign(f.claims(r, iat=NOW - 7200, exp=NOW - 3600)),
    "expired just beyond the leeway": lambda f, r: f.sign(
        f.claims(r, iat=NOW - 600, exp=int(time.time()) - LEEWAY_S - 10)),
    "not yet valid (nbf in the future)": lambda f, r: f.sign(f.claims(r, nbf=NOW + 3600)),
    "issued in the future (iat)": lambda f, r: f.sign(f.claims(r, iat=NOW + 3600, exp=NOW + 7200)),
    "wrong audience": lambda f, r: f.sign(f.claims(r, aud="some-other-service")),
    "audience list without ours": lambda f, r: f.sign(f.claims(r, aud=["a", "b"])),
    "wrong issuer": lambda f, r: f.sign(f.claims(r, iss="https://evil.example")),
    "signed with a wrong key": lambda f, r: f.sign(f.claims(r), key="not-the-secret-" + uuid.uuid4().hex),
    "signed with an empty key": lambda f, r: _raw({"alg": "HS256", "typ": "JWT"}, f.claims(r), b""),
    "RS256 header, HMAC-signed with the secret (algorithm confusion)": lambda f, r: _raw(
        {"alg": "RS256", "typ": "JWT"}, f.claims(r), f.secret.encode()),
    "HS512 with the right secret (algorithm not allowed)": lambda f, r: _raw(
        {"alg": "HS512", "typ": "JWT"}, f.claims(r), f.secret.encode(), hashlib.sha512),
    "embedded jwk header, signed with the attacker's key": lambda f, r: f.sign(
        f.claims(r), key="attacker-key-0123456789abcdef0123", headers={"jwk": {"kty": "oct", "k": _b64(b"attacker")}}),
    "payload changed after signing (role raised)": lambda f, r: (
        lambda t: t.split(".")[0] + "." + _b64(json.dumps(f.claims("tenant_admin" if r == "policyholder"
                                                                    else "policyholder")).encode())
        + "." + t.split(".")[2])(f.sign(f.claims(r))),
    "signature cut off": lambda f, r: f.sign(f.claims(r)).rsplit(".", 1)[0] + ".",
    "not a JWT at all": lambda f, r: "not-a-jwt",
    "missing tenant claim (tid)": lambda f, r: f.sign(f.claims(r, tid=_DROP)),
    "missing subject": lambda f, r: f.sign(f.claims(r, sub=_DROP)),
    "missing role": lambda f, r: f.sign(f.claims(r, role=_DROP)),
    "missing expiry": lambda f, r: f.sign(f.claims(r, exp=_DROP)),
    "missing issuer": lambda f, r: f.sign(f.claims(r, iss=_DROP)),
    "missing audience": lambda f, r: f.sign(f.claims(r, aud=_DROP)),
    "tid not a UUID": lambda f, r: f.sign(f.claims(r, tid="acme-life")),
    "tid a number": lambda f, r: f.sign(f.claims(r, tid=42)),
    "tid null": lambda f, r: f.sign(f.claims(r, tid=None)),
    "tenant unknown": lambda f, r: f.sign(f.claims(r, tid=str(uuid.uuid4()))),
    "unknown role": lambda f, r: f.sign(f.claims(r, role="superuser")),
    "role in another case": lambda f, r: f.sign(f.claims(r, role=r.upper())),
    "role as a list": lambda f, r: f.sign(f.claims(r, role=[r])),
    "empty subject": lambda f, r: f.sign(f.claims(r, sub="")),
    "subject too long": lambda f, r: f.sign(f.claims(r, sub="x" * 201)),
    "expiry not a number": lambda f, r: f.sign(f.claims(r, exp="tomorrow")),
}


@pytest.fixture(scope="module")
def forge(service, insurers) -> Forge:
    return Forge(service, insurers[0])


def attempt(service, path: str, token: str | None, websocket: bool, *, scheme: str = "Bearer",
            query: bool = False) -> tuple[int, httpx.Response | None]:
    """The status the service answers with (101: the WebSocket opened)."""
    headers = {"Authorization": f"{scheme} {token}"} if token is not None and not query else {}
    if websocket:
        url = service.base_url.replace("http", "ws", 1) + path + (f"?access_token={token}" if query else "")
        try:
            with connect(url, additional_headers=headers, open_timeout=10):
                return 101, None
        except InvalidStatus as refused:
            return refused.response.status_code, None
    response = httpx.get(service.base_url + path, headers=headers, timeout=30)
    return response.status_code, response


def test_the_untampered_token_is_accepted_everywhere(service, forge):
    """The control: every attack below changes exactly one thing in a token like this one."""
    for path, role, websocket in ENDPOINTS:
        claims = forge.claims(role)
        forge.accepted.add(claims["sub"])
        assert attempt(service, path, forge.sign(claims), websocket)[0] == (101 if websocket else 200)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_forged_or_broken_token_is_refused(attack, service, forge):
    failures = []
    for path, role, websocket in ENDPOINTS:
        ways = [dict(query=False)] + ([dict(query=True)] if websocket else [])
        for way in ways:
            token = ATTACKS[attack](forge, role)
            status, response = attempt(service, path, token, websocket, **way)
            where = f"{path}{' (query parameter)' if way['query'] else ''}"
            if websocket:
                if status != 403:
                    failures.append(f"{where}: handshake not refused ({status})")
                continue
            if status != 401:
                failures.append(f"{where}: {status} {response.text[:200]}")
            elif (response.headers.get("www-authenticate") != "Bearer"
                  or response.json().keys() != {"detail", "code"} or response.json()["code"] != "unauthorized"):
                failures.append(f"{where}: 401 without WWW-Authenticate: Bearer or with more than detail and code")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "bearer", "Token abc", ""])
def test_a_missing_or_non_bearer_authorization_header_is_refused(service, header):
    response = httpx.get(service.base_url + "/v1/me", headers={"Authorization": header} if header else {})
    assert response.status_code == 401 and response.headers.get("www-authenticate") == "Bearer"


def test_a_valid_token_in_the_wrong_scheme_is_refused(service, forge):
    token = forge.sign(forge.claims("policyholder"))
    assert attempt(service, "/v1/me", token, False, scheme="Basic")[0] == 401


def test_refused_tokens_provision_nobody(service, forge):
    """No attacker subject of the tests above became a person or staff member at any insurer; only the
    control tokens' subjects may exist (pytest runs this module's tests in file order)."""
    assert forge.subjects, "run with the attacks"
    with service.admin_conn() as conn:
        found = {r[0] for table in ("people", "staff") for r in conn.execute(
            f"SELECT external_id FROM {table} WHERE external_id = ANY(%s)", (forge.subjects,))}
    assert found <= forge.accepted, sorted(found - forge.accepted)
