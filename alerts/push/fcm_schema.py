"""The FCM HTTP v1 ``messages:send`` request schema and Google's error bodies, as the emulator checks them."""
from __future__ import annotations

import re
from dataclasses import dataclass
import json
from typing import Any

# --- the v1 Message schema ---------------------------------------------------------------------------
# Field names may arrive snake_case (what firebase-admin sends) or lowerCamelCase: proto3 JSON accepts both.
# Map keys (data, headers) and free-form Structs (apns.payload, webpush.notification) are not renamed.

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
_FCM = "type.googleapis.com/google.firebase.fcm.v1."
MAX_TTL_SECONDS = 2_419_200  # four weeks; FCM answers INVALID_ARGUMENT above it
_DURATION = re.compile(r"^(?P<seconds>\d+)(\.\d{1,9})?s$")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
_TOPIC = re.compile(r"^[a-zA-Z0-9\-_.~%]+$")
_ANALYTICS_LABEL = re.compile(r"^[a-zA-Z0-9\-_.~%]{1,50}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Violation:
    field: str
    description: str


def _snake_name(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _snake(obj: dict[str, Any]) -> dict[str, Any]:
    return {_snake_name(key): value for key, value in obj.items()}


class _Checker:
    """Walks a request body and collects every violation, the way Google's JSON parser reports them."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def bad(self, path: str, description: str) -> None:
        self.violations.append(Violation(path, description))

    def bad_value(self, path: str, type_name: str, value: Any) -> None:
        self.bad(path, f"Invalid value at '{path}' ({type_name}), {json.dumps(value)}")

    def string(self, v: Any, path: str) -> None:
        if not isinstance(v, str):
            self.bad_value(path, "TYPE_STRING", v)

    def boolean(self, v: Any, path: str) -> None:
        if not isinstance(v, bool):
            self.bad_value(path, "TYPE_BOOL", v)

    def integer(self, v: Any, path: str) -> None:
        if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, str) and v.lstrip("-").isdigit())):
            self.bad_value(path, "TYPE_INT32", v)

    def number(self, v: Any, path: str) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.bad_value(path, "TYPE_FLOAT", v)

    def string_map(self, v: Any, path: str) -> None:
        if not isinstance(v, dict):
            return self.bad_value(path, "TYPE_MESSAGE", v)
        for i, (key, value) in enumerate(v.items()):
            self.string(value, f"{path}[{i}].value")

    def struct(self, v: Any, path: str) -> None:
        if not isinstance(v, dict):
            self.bad_value(path, "type.googleapis.com/google.protobuf.Struct", v)

    def duration(self, v: Any, path: str) -> None:
        if not isinstance(v, str) or not _DURATION.match(v):
            self.bad_value(path, "type.googleapis.com/google.protobuf.Duration", v)

    def timestamp(self, v: Any, path: str) -> None:
        if not isinstance(v, str) or not _TIMESTAMP.match(v):
            self.bad_value(path, "type.googleapis.com/google.protobuf.Timestamp", v)

    def message(self, v: Any, path: str, type_name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Check one object against ``spec`` (field -> checker); returns it with snake_case keys."""
        if not isinstance(v, dict):
            self.bad_value(path, _FCM + type_name, v)
            return {}
        for raw_name, value in v.items():
            name = _snake_name(raw_name)
            if name not in spec:
                where = f" at '{path}'" if path else ""
                self.bad(path, f"Invalid JSON payload received. Unknown name \"{raw_name}\"{where}: "
                               "Cannot find field.")
            elif value is not None:
                spec[name](self, value, f"{path}.{name}" if path else name)
        return _snake(v)


def _enum(type_name: str, *values: str):
    # FCM accepts enum names in any case: firebase-admin sends android.priority as "high"/"normal".
    def check(c: _Checker, v: Any, path: str) -> None:
        if not isinstance(v, str) or v.upper() not in values:
            c.bad_value(path, _FCM + type_name, v)
    return check


def _repeated(item, type_name: str):
    """A JSON array whose elements ``item`` checks; anything else is a bad ``type_name`` (the element type)."""
    def check(c: _Checker, v: Any, path: str) -> None:
        if not isinstance(v, list):
            return c.bad_value(path, type_name, v)
        for i, element in enumerate(v):
            item(c, element, f"{path}[{i}]")
    return check


def _nested(type_name: str, spec: dict[str, Any]):
    return lambda c, v, path: c.message(v, path, type_name, spec)


def _pattern(regex: re.Pattern[str], what: str):
    def check(c: _Checker, v: Any, path: str) -> None:
        c.string(v, path)
        if isinstance(v, str) and not regex.match(v):
            c.bad(path, f"Invalid {what}: {v!r}")
    return check


_S, _B = _Checker.string, _Checker.boolean
_STRINGS = _repeated(_Checker.string, "TYPE_STRING")
_DURATIONS = _repeated(_Checker.duration, "type.googleapis.com/google.protobuf.Duration")
_ANALYTICS = _pattern(_ANALYTICS_LABEL, "analytics label")
_LIGHT_SETTINGS = {
    "color": _nested("Color", dict.fromkeys(("red", "green", "blue", "alpha"), _Checker.number)),
    "light_on_duration": _Checker.duration, "light_off_duration": _Checker.duration,
}
_ANDROID_NOTIFICATION = {
    **dict.fromkeys(("title", "body", "icon", "sound", "tag", "click_action", "body_loc_key", "title_loc_key",
                     "channel_id", "ticker", "image"), _S),
    "color": _pattern(_COLOR, "color, expected #rrggbb"),
    "body_loc_args": _STRINGS, "title_loc_args": _STRINGS,
    **dict.fromkeys(("sticky", "local_only", "default_sound", "default_vibrate_timings", "default_light_settings",
                     "bypass_proxy_notification"), _B),
    "event_time": _Checker.timestamp, "vibrate_timings": _DURATIONS,
    "notification_priority": _enum("NotificationPriority", "PRIORITY_UNSPECIFIED", "PRIORITY_MIN", "PRIORITY_LOW",
                                   "PRIORITY_DEFAULT", "PRIORITY_HIGH", "PRIORITY_MAX"),
    "visibility": _enum("Visibility", "VISIBILITY_UNSPECIFIED", "PRIVATE", "PUBLIC", "SECRET"),
    "notification_count": _Checker.integer,
    "light_settings": _nested("LightSettings", _LIGHT_SETTINGS),
    "proxy": _enum("Proxy", "PROXY_UNSPECIFIED", "ALLOW", "DENY", "IF_PRIORITY_LOWERED"),
}
_ANDROID = {
    "collapse_key": _S, "restricted_package_name": _S, "ttl": _Checker.duration,
    "priority": _enum("AndroidMessagePriority", "NORMAL", "HIGH"),
    "data": _Checker.string_map,
    "notification": _nested("AndroidNotification", _ANDROID_NOTIFICATION),
    "fcm_options": _nested("AndroidFcmOptions", {"analytics_label": _ANALYTICS}),
    **dict.fromkeys(("direct_boot_ok", "bandwidth_constrained_ok", "restricted_satellite_ok"), _B),
}
_APNS = {
    "headers": _Checker.string_map, "payload": _Checker.struct, "live_activity_token": _S,
    "fcm_options": _nested("ApnsFcmOptions", {"analytics_label": _ANALYTICS, "image": _S}),
}
_WEBPUSH = {
    "headers": _Checker.string_map, "data": _Checker.string_map, "notification": _Checker.struct,
    "fcm_options": _nested("WebpushFcmOptions", {"link": _S, "analytics_label": _ANALYTICS}),
}
_MESSAGE = {
    "name": _S, "token": _S, "fid": _S, "topic": _S, "condition": _S,
    "data": _Checker.string_map,
    "notification": _nested("Notification", {"title": _S, "body": _S, "image": _S}),
    "android": _nested("AndroidConfig", _ANDROID),
    "apns": _nested("ApnsConfig", _APNS),
    "webpush": _nested("WebpushConfig", _WEBPUSH),
    "fcm_options": _nested("FcmOptions", {"analytics_label": _ANALYTICS}),
}
_REQUEST = {"validate_only": _B, "message": _nested("Message", _MESSAGE)}


def validate_send_request(body: Any) -> list[Violation]:
    """Every reason FCM would refuse this ``messages:send`` body; empty when it would accept it."""
    c = _Checker()
    if not isinstance(body, dict):
        c.bad("", "Invalid JSON payload received. Expected an object.")
        return c.violations
    request = c.message(body, "", "SendMessageRequest", _REQUEST)
    message = request.get("message")
    if message is None:
        c.bad("message", "Request contains an invalid argument: message is required.")
    elif isinstance(message, dict) and not c.violations:
        _check_semantics(c, _snake(message))
    return c.violations


def _check_semantics(c: _Checker, message: dict[str, Any]) -> None:
    """FCM's rules beyond JSON types, from its v1 reference and error-code documentation."""
    targets = [name for name in ("token", "fid", "topic", "condition") if message.get(name)]
    if not targets:
        c.bad("message", "Recipient of the message is not set.")
    elif len(targets) > 1:
        c.bad(f"message.{targets[1]}", f"Invalid JSON payload received. Oneof field 'target' is already set. "
                                       f"Cannot set '{targets[1]}'")
    if message.get("topic") and not _TOPIC.match(message["topic"]):
        c.bad("message.topic", "Invalid topic name: only [a-zA-Z0-9-_.~%] are allowed.")
    data = message.get("data") or {}
    for key in data:
        if key == "from" or key.lower().startswith(("google", "gcm")):
            c.bad("message.data", f"Invalid data payload key: {key!r} is reserved by FCM.")
    notification = message.get("notification") or {}
    size = sum(len(k.encode()) + len(v.encode()) for k, v in data.items()) + sum(
        len(str(v).encode()) for v in notification.values())
    limit = 2048 if message.get("topic") else 4096
    if size > limit:
        c.bad("message", f"Message is too big: {size} bytes of payload, the limit is {limit}.")
    ttl = _snake(message.get("android") or {}).get("ttl")
    if isinstance(ttl, str) and int(_DURATION.match(ttl)["seconds"]) > MAX_TTL_SECONDS:
        c.bad("message.android.ttl", f"Invalid TTL: {ttl} is above the maximum of {MAX_TTL_SECONDS}s.")
    headers = (message.get("apns") or {}).get("headers") or {}
    collapse_id = headers.get("apns-collapse-id")
    if collapse_id is not None and len(collapse_id.encode()) > 64:
        c.bad("message.apns.headers", "apns-collapse-id must not exceed 64 bytes.")


def invalid_argument_body(violations: list[Violation]) -> dict[str, Any]:
    """The 400 body for a malformed message: FcmError INVALID_ARGUMENT plus a google.rpc.BadRequest that
    names the fields, as FCM documents."""
    return google_error(
        400, "INVALID_ARGUMENT", violations[0].description, fcm_error_code="INVALID_ARGUMENT",
        details=[{"@type": BAD_REQUEST_TYPE, "fieldViolations": [
            {"field": v.field, "description": v.description} for v in violations]}])


def google_error(http_status: int, status: str, message: str, *, fcm_error_code: str | None = None,
                 details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ``{"error": {...}}`` body Google APIs answer with."""
    all_details = [{"@type": FCM_ERROR_TYPE, "errorCode": fcm_error_code}] if fcm_error_code else []
    all_details += details or []
    error: dict[str, Any] = {"code": http_status, "message": message, "status": status}
    if all_details:
        error["details"] = all_details
    return {"error": error}
