"""Bearer tokens: verification (signature, expiry, issuer, audience) and local token issuing.

Production verifies RS256/ES256 tokens against the insurer identity provider's JWKS. Local runs and
tests use an HS256 secret. ``alg=none`` and algorithm confusion are refused: the accepted algorithms are
fixed by configuration, never taken from the token.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import jwt

from app.core.settings import Settings

PERSON_ROLE = "policyholder"
STAFF_ROLES = ("care_agent", "care_supervisor", "tenant_admin")


class AuthError(Exception):
    """The token is missing or invalid; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class Claims:
    tenant_id: UUID
    subject: str
    role: str
    expires_at: float | None = field(default=None, compare=False)  # the token's `exp` (Unix time)

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


def local_secret(settings: Settings) -> str:
    """The HS256 secret: configured, or generated once and kept in the data folder."""
    if settings.jwt_secret:
        return settings.jwt_secret
    path = Path(settings.data_dir) / "jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


class TokenVerifier:
    def __init__(self, settings: Settings):
        self.settings = settings
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=600)
            self._algorithms = ["RS256", "ES256"]
            self._secret = None
        else:
            self._jwks = None
            self._algorithms = ["HS256"]
            self._secret = local_secret(settings)

    def verify(self, token: str) -> Claims:
        try:
            key = self._jwks.get_signing_key_from_jwt(token).key if self._jwks else self._secret
            payload = jwt.decode(
                token, key, algorithms=self._algorithms, audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer, leeway=self.settings.jwt_leeway_s,
                options={"require": ["exp", "iss", "aud", "sub", "tid", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.PyJWKClientError as exc:
            raise AuthError(f"token signing key not found: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        role = payload["role"]
        if role != PERSON_ROLE and role not in STAFF_ROLES:
            raise AuthError(f"unknown role {role!r}")
        try:
            tenant_id = UUID(str(payload["tid"]))
        except ValueError:
            raise AuthError("invalid tenant claim") from None
        subject = str(payload["sub"])
        if not 1 <= len(subject) <= 200:
            raise AuthError("invalid subject claim")
        return Claims(tenant_id=tenant_id, subject=subject, role=role, expires_at=float(payload["exp"]))


def issue_token(settings: Settings, *, tenant_id: UUID | str, subject: str, role: str, ttl_s: int = 24 * 3600) -> str:
    """A locally signed token (HS256) for development, tests and the demo."""
    if role != PERSON_ROLE and role not in STAFF_ROLES:
        raise ValueError(f"role must be {PERSON_ROLE} or one of {STAFF_ROLES}")
    now = int(time.time())
    claims = {"iss": settings.jwt_issuer, "aud": settings.jwt_audience, "sub": subject, "tid": str(tenant_id),
              "role": role, "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, local_secret(settings), algorithm="HS256")
