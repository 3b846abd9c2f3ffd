"""What alerts/push/fcm.py relies on inside firebase-admin. A failure here after an upgrade means: read the new
firebase-admin's messaging.py and _http_client.py, then adapt _configure_messaging (and docs/push.md)."""
from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Iterator

import firebase_admin
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from firebase_admin import messaging

from alerts.push.emulator import FcmEmulator
from alerts.push.fcm import EmulatorCredential, FcmProvider


@pytest.fixture(scope="module")
def fcm() -> Iterator[FcmEmulator]:
    with FcmEmulator() as emulator:
        yield emulator


@pytest.fixture()
def bare_app() -> Iterator[firebase_admin.App]:
    """A firebase app configured by nobody but firebase-admin."""
    app = firebase_admin.initialize_app(EmulatorCredential(), {"projectId": "contract", "httpTimeout": 1},
                                        name=f"contract-{uuid.uuid4().hex}")
    yield app
    firebase_admin.delete_app(app)


def test_the_send_url_and_session_live_where_fcm_py_changes_them(bare_app):
    service = messaging._get_messaging_service(bare_app)
    assert service._fcm_url == "https://fcm.googleapis.com/v1/projects/contract/messages:send"
    assert isinstance(service._client.session, requests.Session)
    # messaging.send reads the URL from the instance on every call, so setting it there redirects sends.
    assert messaging._get_messaging_service(bare_app) is service


def test_no_emulator_switch_exists_for_fcm(bare_app, monkeypatch):
    # If firebase-admin ever honours an FCM emulator variable, prefer it over setting _fcm_url.
    for name in ("FIREBASE_MESSAGING_EMULATOR_HOST", "FCM_EMULATOR_HOST", "FIREBASE_FCM_EMULATOR_HOST"):
        monkeypatch.setenv(name, "127.0.0.1:1")
    app = firebase_admin.initialize_app(EmulatorCredential(), {"projectId": "contract"},
                                        name=f"contract-env-{uuid.uuid4().hex}")
    try:
        assert messaging._get_messaging_service(app)._fcm_url.startswith("https://fcm.googleapis.com/")
    finally:
        firebase_admin.delete_app(app)


def test_firebase_admin_retries_5xx_by_itself_which_is_why_we_turn_it_off(bare_app, fcm):
    service = messaging._get_messaging_service(bare_app)
    service._fcm_url = f"{fcm.url}/v1/projects/contract/messages:send"   # URL only, retries left as shipped
    fcm.reset()
    fcm.set_behaviour("fid-retried", "unavailable", times=1)
    message_id = messaging.send(messaging.Message(fid="fid-retried"), app=bare_app)
    assert message_id.startswith("projects/contract/messages/")
    assert [m["outcome"] for m in fcm.messages("fid-retried")] == ["UNAVAILABLE", "delivered"]


def test_the_provider_only_touches_its_own_app(bare_app, fcm):
    with FcmProvider.from_settings("contract", None, fcm.url, timeout=1) as provider:
        assert provider.send_url == f"{fcm.url}/v1/projects/contract/messages:send"
        assert messaging._get_messaging_service(bare_app)._fcm_url.startswith("https://fcm.googleapis.com/")
        adapter = messaging._get_messaging_service(provider.app)._client.session.get_adapter(provider.send_url)
        assert adapter.max_retries.total == 0


def test_every_field_firebase_admin_can_emit_passes_the_emulators_schema(fcm):
    """The emulator must not refuse what real FCM accepts: a message using every builder firebase-admin has."""
    with FcmProvider.from_settings("contract", None, fcm.url, timeout=1) as provider:
        message = messaging.Message(
            fid="fid-kitchen-sink",
            data={"k": "v"},
            notification=messaging.Notification(title="t", body="b", image="https://example.org/i.png"),
            android=messaging.AndroidConfig(
                collapse_key="c", priority="normal", ttl=3.5, restricted_package_name="org.example",
                data={"a": "1"}, fcm_options=messaging.AndroidFCMOptions(analytics_label="label"),
                direct_boot_ok=True, bandwidth_constrained_ok=True, restricted_satellite_ok=False,
                notification=messaging.AndroidNotification(
                    title="t", body="b", icon="i", color="#112233", sound="s", tag="tag", click_action="c",
                    body_loc_key="k", body_loc_args=["a"], title_loc_key="k", title_loc_args=["a"],
                    channel_id="alerts", image="https://example.org/i.png", ticker="t", sticky=True,
                    event_timestamp=datetime.datetime(2024, 1, 1), local_only=True,
                    priority="high", vibrate_timings_millis=[100, 200.5], default_vibrate_timings=False,
                    default_sound=False, default_light_settings=False, visibility="private",
                    notification_count=3, proxy="deny",
                    light_settings=messaging.LightSettings(color="#11223344", light_on_duration_millis=100,
                                                           light_off_duration_millis=200))),
            apns=messaging.APNSConfig(
                headers={"apns-priority": "10"}, live_activity_token="lat",
                fcm_options=messaging.APNSFCMOptions(analytics_label="label", image="https://example.org/i.png"),
                payload=messaging.APNSPayload(
                    aps=messaging.Aps(alert=messaging.ApsAlert(title="t", subtitle="s", body="b"), badge=1,
                                      sound=messaging.CriticalSound("default", critical=True, volume=0.5),
                                      content_available=True, mutable_content=True, category="c",
                                      thread_id="th", custom_data={"x": 1}),
                    extra="value")),
            webpush=messaging.WebpushConfig(
                headers={"TTL": "60"}, data={"w": "1"},
                fcm_options=messaging.WebpushFCMOptions(link="https://example.org/"),
                notification=messaging.WebpushNotification(
                    title="t", body="b", icon="i", badge="b", image="i", language="en", renotify=True,
                    require_interaction=True, silent=False, tag="t", timestamp_millis=1, vibrate=[100],
                    direction="ltr", data={"d": 1},
                    actions=[messaging.WebpushNotificationAction("open", "Open", icon="i")])),
            fcm_options=messaging.FCMOptions(analytics_label="label"),
        )
        assert messaging.send(message, app=provider.app).startswith("projects/contract/messages/")


def test_the_real_fcm_path_builds_from_a_service_account_file_without_network(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "from-file", "private_key_id": "k1", "private_key": pem,
        "client_email": "push@from-file.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }))
    with FcmProvider.from_settings(None, str(path), None, timeout=10) as provider:
        assert provider.send_url == "https://fcm.googleapis.com/v1/projects/from-file/messages:send"
        session = messaging._get_messaging_service(provider.app)._client.session
        assert session.get_adapter(provider.send_url).max_retries.total == 0


def test_an_emulator_needs_a_project_id():
    with pytest.raises(ValueError):
        FcmProvider.from_settings(None, None, "http://127.0.0.1:1", timeout=1)
