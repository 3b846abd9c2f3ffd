"""Production authentication: RS256 tokens checked against the identity provider's JWKS."""
from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support import running_service


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def idp():
    """A stand-in identity provider publishing one RSA key as a JWKS document."""
    key = _key()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "idp-1", "use": "sig", "alg": "RS256"})
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield key, f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


@pytest.fixture(scope="module")
def jwks_service(shared_db, idp, tmp_path_factory):
    _, url = idp
    with running_service(shared_db, "unused-secret", tmp_path_factory.mktemp("jwks"), BEIDOU_JWT_JWKS_URL=url,
                         BEIDOU_JWT_ISSUER="https://idp.insurer.example", BEIDOU_JWT_AUDIENCE="health-beidou") as svc:
        yield svc


def token(key, tenant_id, *, kid="idp-1", alg="RS256", **overrides) -> str:
    now = int(time.time())
    claims = {"iss": "https://idp.insurer.example", "aud": "health-beidou", "sub": "alice", "tid": str(tenant_id),
              "role": "policyholder", "iat": now, "exp": now + 300, **overrides}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def get(svc, tok: str) -> httpx.Response:
    return httpx.get(svc.base_url + "/v1/me/readings", headers={"Authorization": f"Bearer {tok}"})


def test_a_token_signed_by_the_identity_provider_is_accepted(jwks_service, idp):
    key, _ = idp
    tenant = jwks_service.new_tenant()
    assert get(jwks_service, token(key, tenant.id)).status_code == 200


@pytest.mark.parametrize("case", ["other key", "unknown kid", "hs256 with the public key", "wrong issuer", "expired"])
def test_anything_else_is_refused(jwks_service, idp, case):
    key, _ = idp
    tenant = jwks_service.new_tenant()
    if case == "other key":
        tok = token(_key(), tenant.id)
    elif case == "unknown kid":
        tok = token(key, tenant.id, kid="nope")
    elif case == "hs256 with the public key":
        from cryptography.hazmat.primitives import serialization
        public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        tok = jwt.encode({"iss": "https://idp.insurer.example", "aud": "health-beidou", "sub": "alice",
                          "tid": str(tenant.id), "role": "policyholder", "exp": int(time.time()) + 300},
                         uuid.uuid4().hex + public.decode()[:10], algorithm="HS256", headers={"kid": "idp-1"})
    elif case == "wrong issuer":
        tok = token(key, tenant.id, iss="https://elsewhere.example")
    else:
        tok = token(key, tenant.id, exp=int(time.time()) - 600)
    assert get(jwks_service, tok).status_code == 401
