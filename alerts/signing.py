"""Signing what we send to the insurer's systems, per the Standard Webhooks spec (the ``standardwebhooks``
library): headers ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``.

During a secret rotation the message carries two signatures, space-separated (``v1,<new> v1,<old>``), as the
spec allows, so a receiver still holding the old secret keeps verifying until it switches.
"""
from __future__ import annotations

import base64
import secrets
from datetime import datetime, timezone

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret in the spec's form: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def valid_secret(secret: str) -> bool:
    try:
        Webhook(secret)
    except Exception:  # the library raises several kinds for a bad secret
        return False
    return True


def signed_headers(msg_id: str, body: str, secrets_in_force: list[str], *, now: datetime | None = None) -> dict:
    """Headers for one request carrying ``body``: one ``v1`` signature per secret in force."""
    if not secrets_in_force:
        raise ValueError("at least one secret is needed to sign")
    now = now or datetime.now(timezone.utc)
    signatures = [Webhook(secret).sign(msg_id, now, body) for secret in secrets_in_force]
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(signatures), "content-type": "application/json"}
