"""Push notifications: a provider-neutral port (:mod:`.provider`), FCM behind it (:mod:`.fcm`), and a local
FCM HTTP v1 emulator (:mod:`.emulator`).

Only the port is re-exported here, so importing it does not load firebase-admin.
"""
from alerts.push.provider import (
    FakeProvider,
    PushMessage,
    PushProvider,
    SendResult,
    backoff_delay,
    parse_retry_after,
)

__all__ = ["FakeProvider", "PushMessage", "PushProvider", "SendResult", "backoff_delay", "parse_retry_after"]
