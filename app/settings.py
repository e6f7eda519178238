"""All configuration in one place: environment variables with the KOPPEL_ prefix.

`Settings()` reads the environment (and a `.env` file if present). Defaults are the
embedded mode: a SQLite file under ./var, a private Redis, the bundled Exact sandbox.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

VAR_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOPPEL_", env_file=".env", extra="ignore")

    # --- storage -------------------------------------------------------------------------
    database_url: str = Field(
        default=f"sqlite+aiosqlite:///{VAR_DIR / 'koppel.db'}",
        description="SQLAlchemy async URL; postgresql+asyncpg://… in production.",
    )
    database_pool_size: int = 10
    # A write that waits longer than this for a lock gives up; the webhook then answers 503.
    database_lock_timeout_ms: int = 5000
    # None means: start a private redis-server (embedded mode).
    redis_url: str | None = None

    # --- secrets ---------------------------------------------------------------------------
    # Encrypts Exact tokens and webhook secrets at rest. The embedded default is fine for a
    # laptop; production must set its own (see README).
    secret_key: SecretStr = SecretStr("koppel-embedded-development-key-change-me")

    # --- intake ----------------------------------------------------------------------------
    max_body_bytes: int = 1024 * 1024
    # How long an API process may keep an integration's secret, settings and VAT codes.
    config_cache_seconds: float = 5.0

    # --- Exact Online ----------------------------------------------------------------------
    exact_client_id: str = "koppel-sandbox"
    exact_client_secret: SecretStr = SecretStr("koppel-sandbox-secret")
    exact_redirect_uri: str = "http://127.0.0.1:8000/oauth/exact/callback"
    exact_timeout_seconds: float = 20.0

    # --- worker ----------------------------------------------------------------------------
    queue_name: str = "koppel:queue"
    job_timeout_seconds: int = 60
    # Failed booking attempts (timeouts, 5xx) before an order is set failed; waiting for
    # Exact's rate budget does not count.
    max_booking_attempts: int = 8
    # First retry after about this long; each further one waits twice as long (max 10 min).
    booking_retry_base_seconds: float = 5.0
    worker_max_jobs: int = 10
    sweeper_interval_seconds: int = 30
    # Port for this worker's Prometheus metrics (0: off). Give each worker on a host its own.
    worker_metrics_port: int = 0

    # --- logging ---------------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = True

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
