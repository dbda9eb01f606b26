"""Settings: one typed object read once from the environment and an optional ``.env`` file.

Nothing else in DataFast reads ``os.environ``. A bad value raises :class:`SettingsError`
whose message is one line naming the variable, so start-up can fail clearly.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol, TypeVar
from urllib.parse import urlsplit

import msgspec
from dotenv import dotenv_values

__all__ = (
    "AccountSettings",
    "BillingSettings",
    "OAuthProvider",
    "Plan",
    "Settings",
    "SettingsError",
    "load_settings",
)

T = TypeVar("T")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LogFormat = Literal["console", "json"]


class SettingsError(ValueError):
    """A setting has a value DataFast cannot use; the message names the variable."""


@dataclass(frozen=True, slots=True)
class OAuthProvider:
    """One OAuth 2.0 login provider; the endpoint URLs are overridable (tests use a local stand-in)."""

    name: str
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    userinfo_url: str
    scope: str


@dataclass(frozen=True, slots=True)
class AccountSettings:
    """Sign-up, mail and OAuth login."""

    signup_open: bool = True
    mail_from: str = "DataFast <noreply@localhost>"
    smtp_url: str | None = None
    resend_api_key: str | None = None
    resend_api_url: str = "https://api.resend.com"
    oauth: tuple[OAuthProvider, ...] = ()
    signup_limit_per_ip: int = 10
    """Sign-ups per hour from one client (IPv4 address or IPv6 /64)."""
    signup_limit_per_domain: int = 50
    """Sign-ups per hour with addresses at one email domain (each one mails a verification link)."""
    require_two_factor_for_owners: bool = False
    """Owners of a site without two-factor sign-in may only enrol it (REQUIRE_TWO_FACTOR_FOR_OWNERS)."""
    alert_webhook_hosts: tuple[str, ...] = ("hooks.slack.com", "discord.com", "discordapp.com")
    """Hosts a site's alert webhook may be on (ALERT_WEBHOOK_HOSTS): the server posts there."""

    def oauth_provider(self, name: str) -> OAuthProvider | None:
        return next((p for p in self.oauth if p.name == name), None)


@dataclass(frozen=True, slots=True)
class Plan:
    """A hosted-mode plan (BILLING_PLANS): what it costs in Stripe and what it allows."""

    name: str
    monthly_price: str
    """Stripe price id billed monthly."""
    yearly_price: str = ""
    """Stripe price id billed yearly (empty: no yearly billing)."""
    events: int = 10_000
    """Events per billing period before the over-allowance grace starts."""
    sites: int = 1
    seats: int = 1
    """Members besides the owner across the owner's sites (invitations count)."""
    retention_days: int = 0


@dataclass(frozen=True, slots=True)
class BillingSettings:
    """Hosted mode: DataFast's own plans, billed through Stripe (BILLING=stripe); off for self-hosters."""

    mode: Literal["off", "stripe"] = "off"
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = "https://api.stripe.com"
    plans: tuple[Plan, ...] = ()
    trial_days: int = 14
    grace_days: int = 7
    """Days an unpaid (past_due) account or one over its allowance keeps sending events."""

    @property
    def enabled(self) -> bool:
        return self.mode == "stripe"

    def plan(self, name: str) -> Plan | None:
        return next((p for p in self.plans if p.name == name), None)

    def plan_for_price(self, price_id: str) -> Plan | None:
        return next((p for p in self.plans if price_id in (p.monthly_price, p.yearly_price)), None)


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    database_url: str
    clickhouse_url: str
    clickhouse_database: str
    clickhouse_cluster: str | None
    valkey_url: str | None
    secret_key: str
    base_url: str
    host: str
    port: int
    workers: int
    log_format: LogFormat
    log_level: str
    otel_endpoint: str | None
    otel_service_name: str
    migrate_on_start: bool
    trusted_proxies: tuple[str, ...]
    geoip_database: Path | None
    ingest_batch_rows: int
    ingest_flush_interval: float
    accounts: AccountSettings = field(default_factory=AccountSettings)
    stats_cache_ttl: float = 30.0
    """Seconds a Stats API result is reused (new data for the site drops it sooner); 0 turns it off."""
    stats_rate_limit: int = 600
    """Stats API requests per minute per user (all their keys and sessions) or share link and client IP."""
    report_max_seconds: float = 30.0
    """ClickHouse ``max_execution_time`` of every read (0: none); over it a report answers 503."""
    report_max_memory: int = 4_000_000_000
    """ClickHouse ``max_memory_usage`` (bytes) of every read (0: none); over it a report answers 503."""
    data_retention_days: int = 0
    """Traffic (events, sessions, rollups) older than this many days is deleted; 0 keeps it all."""
    stripe_api_base: str = "https://api.stripe.com"
    """Stripe's API (STRIPE_API_BASE): hosted billing and the payment history import."""
    polar_api_base: str = "https://api.polar.sh"
    """Polar's API (POLAR_API_BASE; its sandbox is https://sandbox-api.polar.sh): history import."""
    lemonsqueezy_api_base: str = "https://api.lemonsqueezy.com"
    """Lemon Squeezy's API (LEMONSQUEEZY_API_BASE): the payment history import."""
    rates_url: str = ""
    """Where the daily ``rates_refresh`` job downloads exchange rates (RATES_URL); empty: never."""
    ingest_partitions: int = 1
    """Scaled mode: ingest streams; a site's events always go to the same one, processed in one place.
    One per worker lets every worker process at once; more than workers only makes smaller inserts."""
    ingest_heartbeat: int = 15
    """Scaled mode: seconds a partition's drain job may go silent before SAQ retries it on another worker."""
    ingest_backlog_mb: int = 1024
    """Captured data waiting for ClickHouse (spool or stream) above which /track answers 503."""
    ingest_session_memory: int = 200_000
    """Embedded mode: open visits kept in memory; past it the least recently active are dropped."""
    realtime_heartbeat: float = 15.0
    """Seconds between keep-alive comments on an idle realtime (SSE) stream."""
    metrics_token: str | None = None
    """Bearer token for ``GET /metrics``; unset: only direct loopback peers are answered."""
    site_verification_url: str = "https://{domain}/.well-known/datafast.txt"
    """Where a site's domain-ownership proof is fetched (tests point it at a local server)."""
    site_verification_allow_private: bool = False
    """Let the proof be fetched from private/loopback addresses (tests only)."""
    worker_metrics_port: int = 0
    """``datafast worker``: serve its Prometheus metrics (job outcomes, insert batches) on this port
    of ``worker_metrics_host`` (0: off)."""
    worker_metrics_host: str = "127.0.0.1"
    realtime_recheck: float = 10.0
    """Seconds between re-checks of an open realtime stream's credential and site access."""
    billing: BillingSettings = field(default_factory=BillingSettings)

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def embedded_clickhouse(self) -> bool:
        """True when events live in the in-process chDB engine (one process owns its data dir)."""
        return self.clickhouse_url.startswith("chdb:")

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def mode(self) -> Literal["embedded", "scaled"]:
        """Embedded when nothing outside this process is needed; scaled otherwise."""
        if self.embedded_clickhouse and self.uses_sqlite and self.valkey_url is None:
            return "embedded"
        return "scaled"

    def multi_process_problem(self) -> str | None:
        """Why this configuration cannot run several processes at once, or None when it can."""
        if self.embedded_clickhouse:
            return (
                "the embedded ClickHouse engine (chDB) belongs to one process; "
                "set CLICKHOUSE_URL to a ClickHouse server to run more workers"
            )
        if self.valkey_url is None:
            return "cache, rate limits and pub/sub are in-process; set VALKEY_URL to run more workers"
        return None


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | None = ".env",
) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``) over the optional ``env_file``.

    Real environment variables win over the file. ``SECRET_KEY`` is generated once and
    kept in ``DATA_DIR/secret_key`` when it is not set.
    """
    env: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        env.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    env.update(os.environ if environ is None else environ)

    def get(name: str, default: str) -> str:
        value = env.get(name, "").strip()
        return value or default

    def parse(name: str, default: str, convert: Callable[[str], T]) -> T:
        raw = get(name, default)
        try:
            return convert(raw)
        except ValueError as exc:
            raise SettingsError(f"{name}={raw!r} is invalid: {exc}") from None

    data_dir = Path(get("DATA_DIR", "./data")).expanduser().resolve()
    database_url = parse("DATABASE_URL", f"sqlite+aiosqlite:///{data_dir / 'datafast.db'}", _database_url)
    clickhouse_url = parse("CLICKHOUSE_URL", f"chdb://{data_dir / 'clickhouse'}", _clickhouse_url)
    clickhouse_database = parse(
        "CLICKHOUSE_DATABASE", _clickhouse_database_from_url(clickhouse_url), _identifier
    )
    cluster_raw = get("CLICKHOUSE_CLUSTER", "")
    clickhouse_cluster = parse("CLICKHOUSE_CLUSTER", "x", _identifier) if cluster_raw else None
    if clickhouse_cluster and clickhouse_url.startswith("chdb:"):
        raise SettingsError(
            "CLICKHOUSE_CLUSTER needs CLICKHOUSE_URL to point at a ClickHouse server, not chdb://"
        )
    valkey_raw = get("VALKEY_URL", "")
    valkey_url = parse("VALKEY_URL", "", _valkey_url) if valkey_raw else None
    host = get("HOST", "127.0.0.1")
    port = parse("PORT", "8000", _port)
    workers = parse("WORKERS", "1", _positive_int)
    base_url = parse("BASE_URL", f"http://localhost:{port}", _base_url)
    log_format = parse("LOG_FORMAT", "console", _log_format)
    log_level = parse("LOG_LEVEL", "INFO", _log_level)
    otel_endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT", "") or None
    if otel_endpoint is not None:
        otel_endpoint = parse("OTEL_EXPORTER_OTLP_ENDPOINT", otel_endpoint, _http_url)
    migrate_on_start = parse("MIGRATE_ON_START", "auto", _auto_bool)
    secret_key = get("SECRET_KEY", "")
    if secret_key and len(secret_key) < 32:
        raise SettingsError("SECRET_KEY is too short: use at least 32 characters")

    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        clickhouse_url=clickhouse_url,
        clickhouse_database=clickhouse_database,
        clickhouse_cluster=clickhouse_cluster,
        valkey_url=valkey_url,
        secret_key=secret_key,
        base_url=base_url,
        host=host,
        port=port,
        workers=workers,
        log_format=log_format,
        log_level=log_level,
        otel_endpoint=otel_endpoint,
        otel_service_name=get("OTEL_SERVICE_NAME", "datafast"),
        migrate_on_start=(
            migrate_on_start if migrate_on_start is not None else clickhouse_url.startswith("chdb:")
        ),
        trusted_proxies=parse("TRUSTED_PROXIES", "127.0.0.1/32,::1/128", _networks),
        geoip_database=parse("GEOIP_DATABASE", "", _optional_file),
        # Scaled mode's batches cross to a ClickHouse server: bigger inserts cost it less an event.
        ingest_batch_rows=parse("INGEST_BATCH_ROWS", "5000" if valkey_url else "1000", _positive_int),
        ingest_flush_interval=parse("INGEST_FLUSH_INTERVAL", "1", _positive_float),
        data_retention_days=parse("DATA_RETENTION_DAYS", "0", _non_negative_int),
        stripe_api_base=parse("STRIPE_API_BASE", "https://api.stripe.com", _http_url).rstrip("/"),
        polar_api_base=parse("POLAR_API_BASE", "https://api.polar.sh", _http_url).rstrip("/"),
        lemonsqueezy_api_base=parse(
            "LEMONSQUEEZY_API_BASE", "https://api.lemonsqueezy.com", _http_url
        ).rstrip("/"),
        rates_url=parse("RATES_URL", "", _http_url) if get("RATES_URL", "") else "",
        ingest_partitions=parse("INGEST_PARTITIONS", "1", _positive_int),
        ingest_heartbeat=parse("INGEST_HEARTBEAT", "15", _positive_int),
        ingest_backlog_mb=parse("INGEST_BACKLOG_MB", "1024", _positive_int),
        ingest_session_memory=parse("INGEST_SESSION_MEMORY", "200000", _positive_int),
    )
    settings = replace(settings, accounts=_account_settings(get, parse, base_url))
    settings = replace(
        settings,
        stats_cache_ttl=parse("STATS_CACHE_TTL", "30", _non_negative_float),
        stats_rate_limit=parse("STATS_RATE_LIMIT", "600", _positive_int),
        report_max_seconds=parse("REPORT_MAX_SECONDS", "30", _non_negative_float),
        report_max_memory=parse("REPORT_MAX_MEMORY", "4000000000", _non_negative_int),
        realtime_heartbeat=parse("REALTIME_HEARTBEAT", "15", _positive_float),
        realtime_recheck=parse("REALTIME_RECHECK", "10", _positive_float),
        metrics_token=parse("METRICS_TOKEN", "", _metrics_token),
        site_verification_url=get("SITE_VERIFICATION_URL", "https://{domain}/.well-known/datafast.txt"),
        site_verification_allow_private=parse("SITE_VERIFICATION_ALLOW_PRIVATE", "false", _bool),
        worker_metrics_port=parse("WORKER_METRICS_PORT", "0", _non_negative_int),
        worker_metrics_host=get("WORKER_METRICS_HOST", "127.0.0.1"),
    )
    settings = replace(settings, billing=_billing_settings(get, parse))
    if not secret_key:
        settings = _with_secret_key(settings)
    return settings


def _billing_settings(get: Callable[[str, str], str], parse: _Parse) -> BillingSettings:
    mode = get("BILLING", "off")
    if mode not in ("off", "stripe"):
        raise SettingsError(f"BILLING must be off or stripe, not {mode!r}")
    if mode == "off":
        return BillingSettings()
    for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
        if not get(name, ""):
            raise SettingsError(f"BILLING=stripe needs {name}")
    plans = parse("BILLING_PLANS", "", _plans)
    if not plans:
        raise SettingsError("BILLING=stripe needs BILLING_PLANS (a JSON list of plans)")
    return BillingSettings(
        mode="stripe",
        stripe_secret_key=get("STRIPE_SECRET_KEY", ""),
        stripe_webhook_secret=get("STRIPE_WEBHOOK_SECRET", ""),
        stripe_api_base=parse("STRIPE_API_BASE", "https://api.stripe.com", _http_url).rstrip("/"),
        plans=plans,
        trial_days=parse("BILLING_TRIAL_DAYS", "14", _non_negative_int),
        grace_days=parse("BILLING_GRACE_DAYS", "7", _non_negative_int),
    )


def _plans(raw: str) -> tuple[Plan, ...]:
    """``[{"name": "starter", "monthly_price": "price_…", "events": 10000, "sites": 1, …}]``"""
    plans = msgspec.json.decode(raw.encode(), type=tuple[Plan, ...])
    if len({p.name for p in plans}) != len(plans):
        raise ValueError("plan names must be unique")
    for plan in plans:
        if min(plan.events, plan.sites, plan.seats, plan.retention_days) < 0 or not plan.monthly_price:
            raise ValueError(f"plan {plan.name!r}: a monthly_price and non-negative limits are needed")
    return plans


def _metrics_token(raw: str) -> str | None:
    if not raw:
        return None
    if len(raw) < 16:
        raise ValueError("use at least 16 characters")
    return raw


_OAUTH_DEFAULTS = {
    # https://developers.google.com/identity/protocols/oauth2/web-server
    "google": (
        "https://accounts.google.com/o/oauth2/v2/auth",
        "https://oauth2.googleapis.com/token",
        "https://openidconnect.googleapis.com/v1/userinfo",
        "openid email profile",
    ),
    # https://docs.x.com/resources/fundamentals/authentication/oauth-2-0/authorization-code
    "x": (
        "https://x.com/i/oauth2/authorize",
        "https://api.x.com/2/oauth2/token",
        "https://api.x.com/2/users/me?user.fields=confirmed_email",
        "users.read tweet.read users.email",
    ),
}


class _Parse(Protocol):
    def __call__(self, name: str, default: str, convert: Callable[[str], T]) -> T: ...


def _account_settings(get: Callable[[str, str], str], parse: _Parse, base_url: str) -> AccountSettings:
    host = urlsplit(base_url).hostname or "localhost"
    smtp_raw = get("SMTP_URL", "")
    providers = []
    for name, (authorize, token, userinfo, scope) in _OAUTH_DEFAULTS.items():
        prefix = name.upper()
        client_id = get(f"{prefix}_CLIENT_ID", "")
        if not client_id:
            continue
        secret = get(f"{prefix}_CLIENT_SECRET", "")
        if not secret:
            raise SettingsError(f"{prefix}_CLIENT_ID is set but {prefix}_CLIENT_SECRET is not")
        providers.append(
            OAuthProvider(
                name=name,
                client_id=client_id,
                client_secret=secret,
                authorize_url=parse(f"{prefix}_AUTHORIZE_URL", authorize, _http_url),
                token_url=parse(f"{prefix}_TOKEN_URL", token, _http_url),
                userinfo_url=parse(f"{prefix}_USERINFO_URL", userinfo, _http_url),
                scope=get(f"{prefix}_SCOPE", scope),
            )
        )
    return AccountSettings(
        signup_open=parse("SIGNUP_OPEN", "true", _bool),
        mail_from=get("MAIL_FROM", f"DataFast <noreply@{host}>"),
        smtp_url=parse("SMTP_URL", smtp_raw, _smtp_url) if smtp_raw else None,
        resend_api_key=get("RESEND_API_KEY", "") or None,
        resend_api_url=parse("RESEND_API_URL", "https://api.resend.com", _http_url).rstrip("/"),
        oauth=tuple(providers),
        signup_limit_per_ip=parse("SIGNUP_LIMIT_PER_IP", "10", _positive_int),
        signup_limit_per_domain=parse("SIGNUP_LIMIT_PER_DOMAIN", "50", _positive_int),
        require_two_factor_for_owners=parse("REQUIRE_TWO_FACTOR_FOR_OWNERS", "false", _bool),
        alert_webhook_hosts=tuple(
            h.strip().lower()
            for h in get("ALERT_WEBHOOK_HOSTS", "hooks.slack.com,discord.com,discordapp.com").split(",")
            if h.strip()
        ),
    )


def _smtp_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("expected smtp://user:pass@host:587 (STARTTLS when offered) or smtps://host:465")
    _ = parts.port
    return raw


def _with_secret_key(settings: Settings) -> Settings:
    """Keep a generated secret in DATA_DIR so sessions and encrypted secrets survive restarts."""
    path = settings.data_dir / "secret_key"
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        key = path.read_text().strip()
    except OSError as exc:
        raise SettingsError(f"DATA_DIR={str(settings.data_dir)!r} is not writable: {exc}") from None
    if len(key) < 32:
        raise SettingsError(f"SECRET_KEY read from {path} is too short: delete the file or set SECRET_KEY")
    return replace(settings, secret_key=key)


def _database_url(raw: str) -> str:
    if raw.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        return raw
    if raw.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + raw.split("://", 1)[1]
    raise ValueError("expected sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db")


def _clickhouse_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme == "chdb":
        if not parts.path or parts.netloc:
            raise ValueError("expected chdb:///absolute/path")
        return raw
    if parts.scheme in ("http", "https") and parts.hostname:
        _ = parts.port  # raises ValueError for a malformed port
        return raw
    raise ValueError("expected chdb:///path or http(s)://user:pass@host:8123/database")


def _clickhouse_database_from_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        name = parts.path.strip("/")
        if name:
            return name
    return "datafast"


def _identifier(raw: str) -> str:
    if not raw.replace("_", "a").isalnum() or raw[0].isdigit():
        raise ValueError("expected letters, digits and underscores")
    return raw


def _valkey_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("redis", "rediss", "valkey", "valkeys", "unix") or not (
        parts.hostname or parts.path
    ):
        raise ValueError("expected redis://host:6379/0 or valkey://host:6379/0")
    _ = parts.port
    return raw


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected a whole number") from None


def _port(raw: str) -> int:
    port = _int(raw)
    if not 0 < port < 65536:
        raise ValueError("expected a port between 1 and 65535")
    return port


def _positive_int(raw: str) -> int:
    value = _int(raw)
    if value < 1:
        raise ValueError("expected a whole number of at least 1")
    return value


def _non_negative_int(raw: str) -> int:
    value = _int(raw)
    if value < 0:
        raise ValueError("expected a whole number of at least 0")
    return value


def _non_negative_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number") from None
    if not value >= 0:
        raise ValueError("expected a number of at least 0")
    return value


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number") from None
    if not value > 0:
        raise ValueError("expected a number above 0")
    return value


def _networks(raw: str) -> tuple[str, ...]:
    """Comma-separated IPs or CIDR ranges, e.g. ``10.0.0.0/8,127.0.0.1``."""
    networks = []
    for part in (p.strip() for p in raw.split(",")):
        if part:
            try:
                networks.append(str(ipaddress.ip_network(part, strict=False)))
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address or CIDR range") from None
    return tuple(networks)


def _optional_file(raw: str) -> Path | None:
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError("no such file")
    return path


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL")
    _ = parts.port
    return raw


def _base_url(raw: str) -> str:
    return _http_url(raw).rstrip("/")


def _log_format(raw: str) -> LogFormat:
    value = raw.lower()
    if value == "console":
        return "console"
    if value == "json":
        return "json"
    raise ValueError("expected console or json")


def _log_level(raw: str) -> str:
    value = raw.upper()
    if value not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return value


def _bool(raw: str) -> bool:
    value = _auto_bool(raw) if raw.lower() != "auto" else None
    if value is None:
        raise ValueError("expected true or false")
    return value


def _auto_bool(raw: str) -> bool | None:
    value = raw.lower()
    if value == "auto":
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true, false or auto")
