"""Service configuration, read from environment variables (prefix ``BEIDOU_``) and an optional file.

Every option is documented here once; ``beidou --help`` and the README list the same names.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """All settings of the service. Defaults are safe: loopback only, a local secret, no real FCM."""

    model_config = SettingsConfigDict(
        env_prefix="BEIDOU_",
        env_file=os.environ.get("BEIDOU_CONFIG_FILE", None),
        extra="ignore",
        populate_by_name=True,
    )

    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="PostgreSQL/TimescaleDB URL the service connects with (a non-owner role). "
        "Unset: a private local cluster in data_dir is started and used.",
    )
    database_admin_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_ADMIN_URL",
        description="URL of the schema owner, used by `beidou db upgrade` and `beidou db compact`, and by the "
                    "scheduler to compact closed hot days' indexes (off without it). Defaults to DATABASE_URL.",
    )
    data_dir: Path = Field(default=PROJECT_ROOT / ".data", description="Folder for the local cluster and model files.")
    local_pg_port: int = Field(default=55432, description="Port of the private local cluster (127.0.0.1 only).")
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, description="Port the API listens on.")
    api_workers: int = Field(default=0, description="API processes sharing the port (`beidou api`; 0: one per CPU "
                             "core). `--workers` overrides it.")
    pool_min: int = Field(default=2, description="Minimum database connections per process.")
    pool_max: int = Field(default=10, description="Maximum database connections per process.")
    statement_timeout_ms: int = Field(default=15000, description="Database statement timeout for service queries.")

    jwt_secret: str | None = Field(
        default=None,
        description="HS256 secret for local and test tokens. Unset and no JWKS URL: a random secret is kept in data_dir.",
    )
    jwt_jwks_url: str | None = Field(default=None, description="JWKS URL of the insurer's identity provider (RS256).")
    jwt_issuer: str = Field(default="beidou-local", description="Expected `iss` claim.")
    jwt_audience: str = Field(default="health-beidou", description="Expected `aud` claim.")
    jwt_leeway_s: int = Field(default=30, description="Clock skew tolerated when checking exp/nbf.")

    max_body_bytes: int = Field(default=1_048_576, description="Largest accepted HTTP request body.")
    max_batch_readings: int = Field(default=5000, description="Most readings in one HTTP batch or WebSocket frame.")
    max_frame_bytes: int = Field(default=524_288, description="Largest accepted WebSocket frame.")
    max_future_skew_s: int = Field(default=300, description="How far in the future a reading's time may be.")
    max_past_days: int = Field(default=3650, description="How far in the past a reading's time may be.")
    ws_max_inflight_frames: int = Field(default=32, description="Unacknowledged frames per connection before reading pauses.")
    ws_max_frames_per_s: float = Field(default=50.0, description="Frames one WebSocket connection may send per second "
                                       "on average; a faster frame gets a `rate_limited` error (nothing of it stored, "
                                       "resend after `retry_after`) and the connection stays open.")
    ws_frame_burst: int = Field(default=100, description="Frames a connection may send at once before "
                                "BEIDOU_WS_MAX_FRAMES_PER_S applies.")
    ws_compression: bool = Field(default=False, description="Offer permessage-deflate on WebSocket streams.")
    ingest_writers: int = Field(default=3, description="Concurrent group-commit writers per API process.")

    fcm_project_id: str | None = Field(default=None, description="Firebase project id for push notifications.")
    fcm_credentials_file: str | None = Field(default=None, description="Service-account JSON for real FCM.")
    fcm_endpoint: str | None = Field(default=None, description="Send pushes to this FCM-compatible endpoint instead "
                                     "of Google (the local emulator: `beidou fcm-emulator`).")
    push_gateway_url: str | None = Field(default=None, description="The insurer's own push gateway (phones without "
                                         "Google services; devices registered with provider `gateway`): https, or "
                                         "http to loopback. See docs/push.md.")
    push_gateway_secret: str | None = Field(default=None, description="Standard Webhooks secret (`whsec_...`) that "
                                            "signs requests to the push gateway.")
    webhook_max_attempts: int = Field(default=10, description="Deliveries of a webhook event tried before it is a "
                                      "dead letter (replay it with POST /v1/tenant/webhooks/{id}/deliveries/{id}/replay).")
    webhook_timeout_s: float = Field(default=10.0, description="Timeout of one webhook request.")
    push_timeout_s: float = Field(default=10.0, description="Timeout of one push request.")
    push_max_attempts: int = Field(default=6, description="Sends tried before a notification is a dead letter.")
    push_lease_s: float = Field(default=60.0, description="How long a claimed push stays claimed: a sender that dies "
                                "mid-send leaves it to be sent again after this (keep it above BEIDOU_PUSH_TIMEOUT_S).")
    push_backoff_base_s: float = Field(default=2.0, description="First retry delay of a failed push (doubles, "
                                       "with jitter; Retry-After is honoured).")
    need_to_know_days: float = Field(default=14, description="A care agent may look at a person's readings while "
                                     "the person has an alert in the agent's queue, or one resolved within this "
                                     "many days; any other look needs an explicit break-the-glass `reason`.")
    outreach_weekly_cap: int = Field(default=3, description="Non-critical check-ins per person per 7 days.")
    read_database_url: str | None = Field(default=None, description="A streaming replica of the database: care "
                                          "charts, exports, queue listings and the audit view read from it (unset: "
                                          "everything uses DATABASE_URL). Writes and a person's own reads stay on "
                                          "the primary.")
    read_max_lag_s: float = Field(default=10.0, gt=0, description="A replica further behind the primary than this "
                                  "many seconds is skipped (reads go to the primary until it catches up); so is a "
                                  "replica that does not answer.")
    hot_days: int = Field(default=30, ge=1, description="Raw readings stay in the hot table this many days; "
                          "older days are packed by the scheduler into one compressed row per person, data type, "
                          "day and source (per-minute aggregates for dense signals, every value for the rest) "
                          "and stay readable by every reader (docs/scaling.md).")
    detection_allowed_lateness_hours: float = Field(
        default=36.0, gt=0, description="Readings that arrive up to this many hours behind a person's detector "
        "position re-score the windows they touch; older ones are stored and counted, not scored.")
    detection_watermark_hold_hours: float = Field(
        default=120.0, gt=0, description="A device's heart rate whose newest reading is less than this many "
        "hours behind the person's newest reading holds the windows open for its data (a watch that syncs "
        "late); further behind, it no longer holds the other data back.")
    detection_backfill_after_hours: float = Field(
        default=6.0, gt=0, description="A person whose unscored readings reach further back than this many hours "
        "is backfilling: the detection worker serves fresh people first and gives backfill a bounded share of "
        "every pass, in short passes.")
    log_level: str = Field(default="INFO", description="Log level.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own ``Settings``)."""
    return Settings()
