"""One Settings object, read from the environment and `.env`.

Operators migrating from the original deployment keep their variable names (`DB_HOST`,
`REDIS_HOST`, `LOG_LEVEL` …); PixWave's own clearer names (`DATABASE_URL`, `REDIS_URL`) win when
both are set. Everything has an embedded default so `pixwave up` needs no configuration at all.
"""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_NULLISH = {"", "null", "none"}


def _nullish(value: str | None) -> str | None:
    """Laravel `.env` files write `null` for an absent password; treat it as absent."""
    if value is None or value.strip().lower() in _NULLISH:
        return None
    return value


class Settings(BaseSettings):
    """Every knob PixWave reads. Field names are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- application -------------------------------------------------------------------------
    app_env: str = Field(default="local", description="Environment name (APP_ENV).")
    app_debug: bool = Field(default=False, description="Verbose errors and SQL echo (APP_DEBUG).")
    app_url: str | None = Field(
        default=None,
        description="Public base URL (APP_URL); unset: http://localhost:<PORT>, the port served.",
    )
    host: str = Field(default="127.0.0.1", description="Interface the API binds to.")
    port: int = Field(default=8000, description="Port the API listens on (PORT).")
    log_level: str = Field(default="info", description="Log level (LOG_LEVEL).")
    data_dir: Path = Field(
        default=Path("var"), description="Where the embedded default keeps files."
    )
    python_gc_threshold: int = Field(
        default=50_000,
        ge=0,
        description="Server processes: Python's young-generation GC threshold, with everything "
        "alive after start-up frozen out of collections (0: Python's defaults).",
    )

    # --- database ----------------------------------------------------------------------------
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; wins over DB_*.")
    db_connection: str | None = Field(default=None, description="`mysql` or `sqlite` (original).")
    db_host: str | None = None
    db_port: int = 3306
    db_database: str | None = None
    db_username: str | None = None
    db_password: str | None = None
    db_pool_size: int = Field(default=20, description="Connections per process (MySQL).")
    db_pool_overflow: int = Field(default=10, description="Extra connections under bursts.")
    db_pool_timeout: float = Field(default=5.0, description="Seconds to wait for a connection.")
    db_connect_timeout: int = Field(default=5, description="Seconds to open a connection.")
    db_ping_after_idle_seconds: float = Field(
        default=5.0, description="Ping a pooled connection before use if idle this long."
    )

    # --- redis ---------------------------------------------------------------------------------
    redis_url: str | None = Field(default=None, description="redis:// URL; wins over REDIS_*.")
    redis_host: str | None = None
    redis_port: int = 6379
    redis_password: str | None = None
    redis_timeout: float = Field(default=2.0, description="Seconds for any Redis call.")

    # --- API behaviour -------------------------------------------------------------------------
    max_body_bytes: int = Field(default=64 * 1024, description="Larger request bodies get 413.")
    idempotency_ttl_seconds: int = Field(default=24 * 3600, description="How long keys replay.")
    idempotency_lock_seconds: int = Field(default=60, description="In-flight lock lifetime.")
    token_cache_seconds: float = Field(
        default=30.0, description="Auth lookups cached this long (a revoked token works that long)."
    )
    currency: Literal["BRL"] = "BRL"
    group_commit: bool = Field(
        default=True,
        description="Coalesce concurrent transfers, and concurrent withdrawals' acceptance, "
        "into one database transaction and one COMMIT (GROUP_COMMIT); false runs each in its "
        "own.",
    )
    group_commit_window_ms: float = Field(
        default=1.0,
        ge=0,
        le=50,
        description="How long the first payment of a group waits for others to join it.",
    )
    group_commit_max_size: int = Field(
        default=64, ge=1, le=1000, description="Payments at most in one group commit."
    )
    engine_batch: bool = Field(
        default=True,
        description="Move the payments a process holds jobs for together — webhook "
        "notifications and payment looks: one read, the gateway reads at once, the credits "
        "in one database transaction and one COMMIT (ENGINE_BATCH); false moves each alone.",
    )
    engine_batch_window_ms: float = Field(
        default=50.0,
        ge=0,
        le=1000,
        description="While a batch is in flight, how long the next one waits for it at most "
        "before it goes too (a quiet worker never waits; a gateway read that hangs delays "
        "the next batch no longer than this).",
    )
    engine_batch_max_size: int = Field(
        default=64, ge=1, le=1000, description="Payments at most in one batch."
    )

    # --- money limits on withdrawals and transfers --------------------------------------------
    limit_per_transaction: int | None = Field(
        default=None,
        gt=0,
        description="Largest single withdrawal or transfer, in centavos (unset/`none`: no "
        "limit). An admin can set another per user.",
    )
    limit_daily: int | None = Field(
        default=None,
        gt=0,
        description="Most a user may send per calendar day in LIMIT_TIMEZONE, in centavos "
        "(unset/`none`: no limit). Per user by an admin.",
    )
    limit_nighttime: int | None = Field(
        default=100_000,
        gt=0,
        description="Most a user may send during one night period, in centavos: the Central "
        "Bank's R$ 1,000 for individuals by default (`none`: no limit). Per user by an admin.",
    )
    limit_night_starts: time = Field(
        default=time(20, 0), description="The night period starts at this local time (HH:MM)."
    )
    limit_night_ends: time = Field(
        default=time(6, 0), description="…and ends at this local time (HH:MM)."
    )
    limit_timezone: str = Field(
        default="America/Sao_Paulo",
        description="The time zone days and nights are counted in (IANA name).",
    )

    # --- gateways --------------------------------------------------------------------------
    sandbox_gateways: bool | None = Field(
        default=None,
        description=(
            "Mount the built-in gateway simulators. true: every gateway is simulated (refused "
            "beside any gateway credentials, and with APP_ENV=production); false: never; unset: "
            "only in the pure demo, with no gateway credentials at all."
        ),
    )
    sandbox_time_scale: float = Field(
        default=1.0, gt=0, description="Built-in simulators: multiplies webhook retry waits."
    )
    gateway_connect_timeout: float = Field(default=3.0, gt=0, description="Seconds to connect.")
    gateway_read_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for a gateway's answer."
    )
    # Each gateway family's own settings (credentials, hosts, webhook checks) live in its
    # package's spec (`gateways/<family>/spec.py`), read from the same environment.

    # --- jobs and the payments engine -----------------------------------------------------------
    queue_connection: str | None = Field(
        default=None,
        description="(original) `redis` (Redis streams) or `sync` (in-process); default: redis "
        "when Redis is configured.",
    )
    worker_processes: int = Field(default=2, ge=1, description="`pixwave worker` processes.")
    worker_concurrency: int = Field(default=50, ge=1, description="Jobs at once per process.")
    job_redelivery_seconds: float = Field(
        default=300.0, gt=0, description="An unacknowledged job goes to another worker after this."
    )
    job_stream_maxlen: int = Field(default=100_000, description="Approximate stream length cap.")
    sweep_interval_seconds: float = Field(default=1.0, gt=0, description="Reconciliation tick.")
    probe_interval_seconds: float = Field(default=5.0, gt=0, description="Open-circuit probes.")
    inbox_retry_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A stored notification still unhandled this long is handed to a job again "
        "(checked this often).",
    )
    payment_lease_seconds: float = Field(
        default=30.0, gt=0, description="One worker owns a payment this long (renewed per call)."
    )
    retry_tries_per_gateway: int = Field(default=3, ge=1, description="Tries before fallback.")
    retry_base_delay: float = Field(default=0.2, ge=0, description="Backoff base (seconds).")
    retry_max_delay: float = Field(default=5.0, ge=0, description="Backoff ceiling (seconds).")
    retry_max_retry_after: float = Field(
        default=10.0, ge=0, description="Longer Retry-After → fall back instead of waiting."
    )
    ambiguous_query_delay: float = Field(
        default=1.0, ge=0, description="Wait before asking a gateway about an unanswered send."
    )
    charge_poll_seconds: float = Field(
        default=30.0,
        gt=0,
        description="First look at an unpaid charge; each later look waits twice as long.",
    )
    charge_poll_max_seconds: float = Field(
        default=600.0, gt=0, description="Longest wait between two looks at an unpaid charge."
    )
    send_poll_seconds: float = Field(
        default=5.0, gt=0, description="Ask about an accepted, unsettled send this often."
    )
    review_after_seconds: float = Field(
        default=900.0, gt=0, description="Unresolved this long → needs_review with an alert."
    )
    deposit_expires_in: int = Field(
        default=3600, ge=60, description="Default lifetime of a deposit charge (seconds)."
    )
    transaction_cache_seconds: float = Field(
        default=30.0, ge=0, description="GET /v1/transactions/{id} cached in Redis this long."
    )
    health_window_seconds: float = Field(
        default=60.0, gt=0, description="Gateway success rate and latency over this window."
    )
    routing_min_samples: int = Field(
        default=5,
        ge=1,
        description="Calls in the health window before routing judges a gateway's success rate "
        "and latency; below it the operator's priority decides.",
    )
    circuit_failure_threshold: int = Field(
        default=5, ge=1, description="Failures in the window before a circuit may open."
    )
    circuit_failure_rate: float = Field(
        default=0.5, gt=0, le=1, description="…and at least this share of calls failing."
    )
    circuit_consecutive_failures: int = Field(
        default=10,
        ge=0,
        description="This many failures in a row open a circuit whatever the window holds "
        "(0: off).",
    )
    circuit_open_seconds: float = Field(
        default=10.0, gt=0, description="An open circuit waits this long before one probe."
    )
    run_jobs_in_api: bool | None = Field(
        default=None,
        description="Run workers and the scheduler inside the API process (default: when the "
        "queue is in-process; `pixwave up` always does).",
    )
    prefer_wait_max_seconds: float = Field(
        default=10.0, ge=0, description="Longest `Prefer: wait=N` honoured."
    )

    # --- events out: the outbox relay, SNS, operator webhooks ---------------------------------
    outbox_relay_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often the relay looks for unpublished events."
    )
    outbox_relay_batch: int = Field(
        default=500, ge=1, le=10_000, description="Events one relay round reads at most."
    )
    outbox_retention_hours: float = Field(
        default=168.0,
        gt=0,
        description="Relayed events (and their webhook delivery log) are kept this long.",
    )
    outbox_purge_interval_seconds: float = Field(
        default=3600.0, gt=0, description="How often relayed events past retention are purged."
    )
    outbox_lag_alert_seconds: float = Field(
        default=60.0,
        gt=0,
        description="An event unpublished this long raises `alert.outbox_lagging` (once per "
        "lagging spell).",
    )
    aws_sns_topic_arn: str | None = Field(
        default=None, description="(original) SNS topic for every `transaction.*` event."
    )
    aws_sns_alerts_topic_arn: str | None = Field(
        default=None,
        description="SNS topic for `alert.*` events; unset: alerts go to AWS_SNS_TOPIC_ARN.",
    )
    sns_api_key: str | None = Field(
        default=None,
        description="(original) SNS credentials as `ACCESS_KEY_ID:SECRET_ACCESS_KEY`, for SNS "
        "only; unset: the standard AWS credentials chain.",
    )
    aws_default_region: str | None = Field(
        default=None, description="(original) AWS region (also AWS_REGION)."
    )
    aws_endpoint_url: str | None = Field(
        default=None, description="AWS endpoint override (an emulator, a VPC endpoint)."
    )
    aws_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Connect and read timeout of every SNS/SQS call."
    )
    aws_sqs_queue: str | None = Field(
        default=None,
        description="(original) SQS queue URL of the job broker (with QUEUE_CONNECTION=sqs).",
    )
    sqs_wait_seconds: int = Field(
        default=10, ge=0, le=20, description="SQS long-poll wait of a worker's receive."
    )
    webhook_allow_private_urls: bool | None = Field(
        default=None,
        description="Accept operator webhook URLs resolving to loopback, link-local or private "
        "addresses. Unset: only in the pure demo with mounted gateway simulators.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="Seconds one operator webhook delivery may take."
    )
    webhook_retry_schedule: str = Field(
        default="5,300,1800,7200,18000,36000,36000",
        description="Seconds between delivery attempts after the first (comma-separated; about "
        "a day in all). A delivery that exhausts it fails; an endpoint with nothing delivered "
        "since it started failing is then disabled with `alert.webhook_endpoint_disabled`.",
    )

    # --- rate limiting (docs/security.md, "Rate limiting") ----------------------------------
    rate_limit_enabled: bool | None = Field(
        default=None,
        description="Limit requests per token and per address, and failed authentications per "
        "address (429). Unset: on when Redis is configured (the production shape), off in the "
        "embedded default.",
    )
    rate_limit_per_token: str = Field(
        default="600/minute", description="Requests per API token, as COUNT/WINDOW."
    )
    rate_limit_per_ip: str = Field(
        default="1200/minute", description="Requests per client address (IPv6: per /64)."
    )
    rate_limit_auth_failures: str = Field(
        default="10/5minutes",
        description="401 answers per client address; past it the address gets 429 until the "
        "window ends.",
    )
    rate_limit_timeout: float = Field(
        default=0.1,
        gt=0,
        le=2,
        description="Seconds the limiter waits for Redis; past it the request goes through "
        "unlimited (fail open).",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1,::1",
        description="Peers (comma-separated addresses or networks, `*` for any) whose "
        "X-Forwarded-For and X-Forwarded-Proto uvicorn believes: your proxy's or ingress's. "
        "Anyone else's are ignored, so a caller cannot choose the address it is limited by.",
    )

    # --- logs and metrics ---------------------------------------------------------------------
    log_format: Literal["json", "console"] | None = Field(
        default=None,
        description="`json` (Elastic Common Schema, one object per line) or `console`; unset: "
        "console on a terminal, JSON otherwise.",
    )
    logstash_host: str | None = Field(
        default=None, description="(original) Logstash TCP input host; unset: stdout only."
    )
    logstash_port: int = Field(default=5044, description="(original) Logstash TCP input port.")
    logstash_buffer_path: Path | None = Field(
        default=None,
        description="SQLite file buffering lines while Logstash is unreachable; unset: memory.",
    )
    metrics_enabled: bool = Field(default=True, description="Serve Prometheus metrics.")
    metrics_token: str | None = Field(
        default=None,
        description="Bearer token `/metrics` requires. Unset: open, except with "
        "APP_ENV=production, where it is then refused.",
    )
    metrics_port: int = Field(
        default=9100,
        ge=0,
        description="Port of `/metrics` for worker and scheduler processes (0: none).",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Interface the worker/scheduler metrics server binds to (0.0.0.0 to be "
        "scraped from other hosts or pods, as the Kubernetes and compose files set).",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _strip_null(cls, value: Any, info: ValidationInfo) -> Any:
        """Laravel `.env` files write `null` (or nothing) for an absent value: every setting
        that may be absent (default None) reads those as absent."""
        if isinstance(value, str) and info.field_name in _OPTIONAL:
            return _nullish(value)
        return value

    # --- derived -------------------------------------------------------------------------------
    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, from DATABASE_URL, the original DB_* names, or the embedded file."""
        if self.database_url:
            return _async_driver(self.database_url)
        kind = (self.db_connection or ("mysql" if self.db_host else "sqlite")).lower()
        if kind in {"mysql", "mariadb"}:
            user = quote(self.db_username or "root", safe="")
            password = f":{quote(self.db_password, safe='')}" if self.db_password else ""
            host = self.db_host or "127.0.0.1"
            name = self.db_database or "pixwave"
            return f"mysql+aiomysql://{user}{password}@{host}:{self.db_port}/{name}?charset=utf8mb4"
        if kind == "sqlite":
            path = Path(self.db_database) if self.db_database else self.data_dir / "pixwave.db"
            return f"sqlite+aiosqlite:///{path}"
        raise ValueError(f"DB_CONNECTION={self.db_connection!r} is not supported (mysql, sqlite)")

    @property
    def redis_dsn(self) -> str | None:
        """Redis URL, or None for the embedded default (in-process locks and caches)."""
        if self.redis_url:
            return self.redis_url
        if self.redis_host:
            auth = f":{quote(self.redis_password, safe='')}@" if self.redis_password else ""
            return f"redis://{auth}{self.redis_host}:{self.redis_port}/0"
        return None

    @property
    def public_url(self) -> str:
        """Where clients and gateways reach this API: APP_URL, or this machine's served port."""
        return (self.app_url or f"http://localhost:{self.port}").rstrip("/")

    @property
    def is_production(self) -> bool:
        """APP_ENV=production: no simulator, no untokened /metrics, no private webhook URLs."""
        return self.app_env.strip().lower() == "production"

    @property
    def is_embedded(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def queue_backend(self) -> Literal["redis", "sqs", "memory"]:
        """Redis streams when Redis is configured (unless QUEUE_CONNECTION=sync); SQS with
        QUEUE_CONNECTION=sqs (it needs Redis too, for leases and locks: see ``check``)."""
        wanted = (self.queue_connection or "").strip().lower()
        if wanted == "sqs":
            return "sqs"
        if wanted == "sync" or not self.redis_dsn:
            return "memory"
        return "redis"

    @property
    def aws_region(self) -> str | None:
        """AWS_DEFAULT_REGION (the original name) or AWS_REGION; None: boto's own lookup."""
        import os

        return self.aws_default_region or _nullish(os.environ.get("AWS_REGION"))

    @property
    def webhook_retry_delays(self) -> tuple[float, ...]:
        return tuple(float(part) for part in self.webhook_retry_schedule.split(",") if part)

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        try:
            delays = [float(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise ValueError("WEBHOOK_RETRY_SCHEDULE is comma-separated seconds") from None
        if not delays or any(delay <= 0 for delay in delays):
            raise ValueError("WEBHOOK_RETRY_SCHEDULE needs at least one positive delay")
        return ",".join(str(delay) for delay in delays)

    @field_validator("limit_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"LIMIT_TIMEZONE {value!r} is not an IANA time zone") from None
        return value

    @field_validator("limit_night_ends")
    @classmethod
    def _night(cls, value: time, info: ValidationInfo) -> time:
        if value == info.data.get("limit_night_starts"):
            raise ValueError("LIMIT_NIGHT_STARTS and LIMIT_NIGHT_ENDS must differ")
        return value

    @property
    def rate_limiting(self) -> bool:
        """RATE_LIMIT_ENABLED, or by default: on when Redis is configured."""
        if self.rate_limit_enabled is not None:
            return self.rate_limit_enabled
        return self.redis_dsn is not None

    @field_validator("rate_limit_per_token", "rate_limit_per_ip", "rate_limit_auth_failures")
    @classmethod
    def _rate(cls, value: str, info: ValidationInfo) -> str:
        from pixwave.kit.ratelimit import Rate

        try:
            return str(Rate.parse(value))
        except ValueError as exc:
            raise ValueError(f"{(info.field_name or '').upper()}: {exc}") from None

    @field_validator("sns_api_key")
    @classmethod
    def _sns_key(cls, value: str | None) -> str | None:
        if value is not None and ":" not in value:
            raise ValueError("SNS_API_KEY is ACCESS_KEY_ID:SECRET_ACCESS_KEY")
        return value


#: Settings that may be absent: `null`/empty in the environment means absent for them.
_OPTIONAL: frozenset[str] = frozenset(
    name
    for name, field in Settings.model_fields.items()
    if field.default is None or type(None) in get_args(field.annotation)
)


def _async_driver(url: str) -> str:
    """Accept the URLs operators already have (`mysql://`, `sqlite:///`) and pick async drivers."""
    for plain, asynchronous in (
        ("mysql://", "mysql+aiomysql://"),
        ("mariadb://", "mysql+aiomysql://"),
        ("mysql+pymysql://", "mysql+aiomysql://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return asynchronous + url[len(plain) :]
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
