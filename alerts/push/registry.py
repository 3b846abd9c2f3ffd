"""The push providers a deployment can use, by the name notifications and devices carry (``devices.provider``).

Each entry builds its provider from the settings, or answers None when the deployment has not configured it.
The sender gets every configured one; a contract test runs the same checks against every entry here, so a new
provider is one entry plus the harness that lets the test script its outcomes.
"""
from __future__ import annotations

from collections.abc import Callable

from alerts.push.provider import PushProvider
from app.core.settings import Settings


def _fcm(settings: Settings) -> PushProvider | None:
    if not (settings.fcm_endpoint or settings.fcm_credentials_file):
        return None
    from alerts.push.fcm import FcmProvider  # loads firebase-admin only when FCM is configured
    return FcmProvider.from_settings(settings.fcm_project_id, settings.fcm_credentials_file, settings.fcm_endpoint,
                                     settings.push_timeout_s)


def _gateway(settings: Settings) -> PushProvider | None:
    if not (settings.push_gateway_url and settings.push_gateway_secret):
        return None
    from alerts.push.gateway import GatewayProvider
    return GatewayProvider(settings.push_gateway_url, settings.push_gateway_secret, timeout_s=settings.push_timeout_s)


PROVIDERS: dict[str, Callable[[Settings], PushProvider | None]] = {
    "fcm": _fcm,
    "gateway": _gateway,
}


def configured(settings: Settings) -> dict[str, PushProvider]:
    """Every provider the settings configure, by name."""
    built = {name: build(settings) for name, build in PROVIDERS.items()}
    return {name: provider for name, provider in built.items() if provider is not None}
