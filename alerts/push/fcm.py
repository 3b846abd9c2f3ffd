"""Firebase Cloud Messaging through firebase-admin's ``messaging.send``.

Each :class:`FcmProvider` owns a named firebase app, so several (say, one per test, or real FCM beside the
emulator) coexist in one process. Two things are changed on that app's ``_MessagingService`` instance, and
only there (no module attribute, no other app is touched):

* the send URL, when an emulator endpoint is configured. firebase-admin 7.7 has no setting or environment
  variable for FCM (``FIREBASE_AUTH_EMULATOR_HOST`` and friends exist for Auth, Database and Cloud Tasks
  only), and the instance attribute ``_fcm_url`` is where the service reads it on every send;
* the HTTP adapter for the send URL's origin: firebase-admin retries 500 and 503 up to four times, sleeping
  in the calling thread (and for as long as any Retry-After says), and re-sends a POST after a read
  timeout. Our outbox owns retries instead (see docs/push.md), so this adapter retries nothing.

:func:`_configure_messaging` fails loudly if a firebase-admin upgrade renames those attributes, and
``tests/integration/test_fcm_firebase_contract.py`` pins the behaviour.

``send`` blocks; async callers run it in a thread (``await asyncio.to_thread(provider.send, msg)``).
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from urllib.parse import urlsplit

import firebase_admin
import google.auth.credentials
import google.auth.exceptions
import requests.adapters
from firebase_admin import credentials, exceptions, messaging

from alerts.push.provider import PushMessage, SendResult, parse_retry_after

log = logging.getLogger(__name__)

FCM_SEND_PATH = "/v1/projects/{project}/messages:send"
_WEBPUSH_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

# FCM's own error types and their FCM error codes. They subclass the google.rpc statuses (UnregisteredError is
# a NotFoundError, QuotaExceededError a ResourceExhaustedError, ...), so they are looked for first; any other
# error carries its google.rpc status as ``code``.
_FCM_ERRORS: tuple[tuple[type[exceptions.FirebaseError], str], ...] = (
    (messaging.UnregisteredError, "UNREGISTERED"),
    (messaging.SenderIdMismatchError, "SENDER_ID_MISMATCH"),
    (messaging.ThirdPartyAuthError, "THIRD_PARTY_AUTH_ERROR"),
    (messaging.QuotaExceededError, "QUOTA_EXCEEDED"),
)
# What an error code means for the outbox, as Google's FCM error-code reference advises: sending again later may
# succeed, or the token is dead, or neither (configuration or payload). A 404 without FCM's UNREGISTERED code
# means a wrong project or URL, not a dead token: keep the token.
_RETRYABLE = frozenset({"QUOTA_EXCEEDED", "DEADLINE_EXCEEDED", "UNAVAILABLE", "INTERNAL", "RESOURCE_EXHAUSTED"})
_DROP_TOKEN = frozenset({"UNREGISTERED"})
_NEITHER = frozenset({"SENDER_ID_MISMATCH", "THIRD_PARTY_AUTH_ERROR", "INVALID_ARGUMENT", "UNAUTHENTICATED",
                      "PERMISSION_DENIED", "NOT_FOUND"})


class _EmulatorToken(google.auth.credentials.Credentials):
    """A bearer token that never needs fetching: the emulator accepts any.

    ``refresh`` must succeed without network, because google-auth's session refreshes and re-sends on every
    401 (which FCM answers for THIRD_PARTY_AUTH_ERROR); ``google.oauth2.credentials.Credentials`` without a
    refresh token would raise ``RefreshError`` there instead of letting the FCM error through.
    """

    def __init__(self) -> None:
        super().__init__()
        self.token = "emulator"

    def refresh(self, request: object) -> None:
        self.token = "emulator"


class EmulatorCredential(credentials.Base):
    """firebase-admin credential for the local emulator: no key file, no network."""

    def get_credential(self) -> google.auth.credentials.Credentials:
        return _EmulatorToken()


class FcmProvider:
    """:class:`~alerts.push.provider.PushProvider` for FCM HTTP v1."""

    name = "fcm"

    def __init__(self, app: firebase_admin.App, *, endpoint: str | None = None):
        self._app = app
        self._closed = False
        self.endpoint = endpoint
        self.send_url = _configure_messaging(app, endpoint)

    @property
    def app(self) -> firebase_admin.App:
        """The provider's own firebase app (for ``messaging.send_each`` or checks beyond this port)."""
        return self._app

    @classmethod
    def from_settings(cls, project_id: str | None, credentials_file: str | None, endpoint: str | None,
                      timeout: float) -> FcmProvider:
        """Real FCM with a service-account file (or Application Default Credentials when none is given), or
        the emulator at ``endpoint`` (e.g. ``http://127.0.0.1:8790``) with a credential needing no network."""
        if endpoint:
            if not project_id:
                raise ValueError("project_id is required when sending to an emulator endpoint")
            credential: credentials.Base = EmulatorCredential()
        elif credentials_file:
            credential = credentials.Certificate(credentials_file)
        else:
            credential = credentials.ApplicationDefault()
        options: dict[str, object] = {"httpTimeout": timeout}
        if project_id:
            options["projectId"] = project_id
        app = firebase_admin.initialize_app(credential, options, name=f"beidou-push-{uuid.uuid4().hex[:12]}")
        try:
            return cls(app, endpoint=endpoint)
        except Exception:
            firebase_admin.delete_app(app)
            raise

    def send(self, msg: PushMessage) -> SendResult:
        if self._closed:
            # Otherwise firebase-admin's ValueError about a deleted app would pass for a bad message.
            raise RuntimeError("this FcmProvider is closed")
        started = time.monotonic()
        try:
            message_name = messaging.send(to_fcm_message(msg), app=self._app)
        except exceptions.FirebaseError as exc:
            result = result_from_error(exc)
        except ValueError as exc:  # firebase-admin refused to encode the message: our bug, not FCM's
            result = SendResult.failed("INVALID_ARGUMENT", retryable=False, detail=str(exc))
        except google.auth.exceptions.TransportError as exc:  # could not reach Google's token endpoint
            result = SendResult.failed("AUTH_UNAVAILABLE", retryable=True, detail=str(exc))
        except google.auth.exceptions.RefreshError as exc:  # the service account was refused a token
            result = SendResult.failed("AUTH_REFRESH_FAILED", retryable=bool(getattr(exc, "retryable", False)),
                                       detail=str(exc))
        else:
            result = SendResult.sent(message_name)
        _log_result(msg, result, elapsed_ms=(time.monotonic() - started) * 1000)
        return result

    def close(self) -> None:
        """Release the firebase app (and its connection pools). Call from a thread without a running event
        loop: firebase-admin closes its async client with ``asyncio.run``."""
        if not self._closed:
            self._closed = True
            firebase_admin.delete_app(self._app)

    def __enter__(self) -> FcmProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _configure_messaging(app: firebase_admin.App, endpoint: str | None) -> str:
    """Point this app's messaging service at ``endpoint`` (if given) and hand retries to us. Returns the send
    URL in use."""
    # No public accessor exists; this is the function messaging.send itself uses to find the app's service.
    service = messaging._get_messaging_service(app)
    session = getattr(getattr(service, "_client", None), "session", None)
    if not isinstance(getattr(service, "_fcm_url", None), str) or not isinstance(session, requests.Session):
        raise RuntimeError(
            f"firebase-admin {firebase_admin.__version__} no longer keeps the FCM send URL in "
            "_MessagingService._fcm_url or its HTTP session in _client.session; update alerts/push/fcm.py")
    if endpoint:
        service._fcm_url = endpoint.rstrip("/") + FCM_SEND_PATH.format(project=app.project_id)
    parts = urlsplit(service._fcm_url)
    # requests picks the adapter with the longest matching prefix, so this wins over firebase-admin's own
    # mounts for this origin (and only this origin).
    session.mount(f"{parts.scheme}://{parts.netloc}/", _no_retry_adapter())
    return service._fcm_url


def _no_retry_adapter() -> requests.adapters.HTTPAdapter:
    # Same pool size as firebase-admin's FCM adapter, so send_each keeps its parallelism if it is used later.
    return requests.adapters.HTTPAdapter(pool_connections=100, pool_maxsize=100, max_retries=0)


def to_fcm_message(msg: PushMessage, *, now: float | None = None) -> messaging.Message:
    """Map a :class:`PushMessage` onto FCM's Message: the notification in ``notification``, ``data`` as
    strings, and collapse key, priority and TTL repeated in each platform's own terms."""
    has_alert = msg.title is not None or msg.body is not None
    ttl = msg.ttl_seconds
    apns_headers = {
        # APNs only takes priority 10 for alerts; background (data-only) pushes must use 5.
        "apns-priority": "10" if msg.priority == "high" and has_alert else "5",
        "apns-push-type": "alert" if has_alert else "background",
    }
    if msg.collapse_key:
        apns_headers["apns-collapse-id"] = msg.collapse_key
    if ttl is not None:
        # APNs wants an absolute expiry; 0 means "deliver now or never", like FCM's ttl of 0.
        apns_headers["apns-expiration"] = "0" if ttl == 0 else str(int((now or time.time()) + ttl))
    webpush_headers = {"Urgency": msg.priority}
    if ttl is not None:
        webpush_headers["TTL"] = str(ttl)
    if msg.collapse_key and _WEBPUSH_TOPIC.match(msg.collapse_key):
        webpush_headers["Topic"] = msg.collapse_key
    message = messaging.Message(
        fid=msg.token if msg.token_kind == "installation" else None,
        notification=messaging.Notification(title=msg.title, body=msg.body) if has_alert else None,
        data=dict(msg.data) or None,
        android=messaging.AndroidConfig(collapse_key=msg.collapse_key, priority=msg.priority, ttl=ttl),
        apns=messaging.APNSConfig(
            headers=apns_headers,
            payload=None if has_alert else messaging.APNSPayload(aps=messaging.Aps(content_available=True))),
        webpush=messaging.WebpushConfig(headers=webpush_headers),
    )
    if msg.token_kind == "registration":
        # firebase-admin 7.7 deprecates the ``token=`` argument in favour of ``fid`` and warns on every
        # construction; registration tokens are still what most installed apps hold, so we keep sending
        # them, set as the attribute the encoder reads, without a warning per push.
        message.token = msg.token
    return message


def result_from_error(exc: exceptions.FirebaseError) -> SendResult:
    """Classify a firebase-admin error as Google's FCM documentation says to treat it."""
    response = getattr(exc, "http_response", None)
    code = next((fcm_code for exc_type, fcm_code in _FCM_ERRORS if isinstance(exc, exc_type)), str(exc.code))
    if code in _RETRYABLE or code in _DROP_TOKEN or code in _NEITHER:
        retryable, drop_token = code in _RETRYABLE, code in _DROP_TOKEN
    else:
        # Anything else (a 502 from a proxy, a broken connection mid-response): retry server-side and
        # transport failures, surface the rest.
        retryable, drop_token = response is None or response.status_code >= 500, False
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
    return SendResult.failed(code, retryable=retryable, drop_token=drop_token,
                             retry_after=retry_after if retryable else None, detail=str(exc))


def token_fingerprint(token: str) -> str:
    """A short, stable stand-in for a device token in logs (the token itself identifies a person's phone)."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def _log_result(msg: PushMessage, result: SendResult, *, elapsed_ms: float) -> None:
    token = token_fingerprint(msg.token)
    if result.ok:
        log.info("push.fcm.sent token=%s message_id=%s ms=%.0f", token, result.provider_message_id, elapsed_ms)
    elif result.drop_token:
        log.info("push.fcm.token_unregistered token=%s", token)
    elif result.retryable:
        log.warning("push.fcm.retryable_failure token=%s code=%s retry_after=%s ms=%.0f", token,
                    result.error_code, result.retry_after, elapsed_ms)
    else:
        # Not retryable and not the token's fault: configuration or payload, which an operator must fix.
        log.error("push.fcm.rejected token=%s code=%s detail=%s", token, result.error_code, result.detail)
