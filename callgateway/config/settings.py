"""Process settings from the environment (12-factor), parsed strictly once at start."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from redis.connection import parse_url as parse_redis_url
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

# Dev-only signing key. Printed at start so `callgateway call` can sign; refused in production.
DEV_AUTH_TOKEN = "dev-auth-token-not-secret-0000000"
DEV_ACCOUNT_SID = "AC00000000000000000000000000000000"
DEV_SECRET_KEY = "dev-console-secret-key-not-secret"


# The example config: in a checkout, config/example.yaml; installed from the wheel, the copy
# shipped inside the package (callgateway/config/example.yaml) when there is none here.
EXAMPLE_CONFIG = Path("config/example.yaml")
PACKAGED_EXAMPLE_CONFIG = Path(__file__).with_name("example.yaml")


def default_config_path(mode: str) -> Path:
    """Where the config is when CALLGATEWAY_CONFIG is not set. Only dev and test fall back
    on the packaged example: production never serves the example clinics by accident."""
    if mode == "production" or EXAMPLE_CONFIG.is_file():
        return EXAMPLE_CONFIG
    return PACKAGED_EXAMPLE_CONFIG


class SettingsError(ValueError):
    """A missing or malformed environment variable, named."""


@dataclass(frozen=True)
class Settings:
    env: str = "dev"
    config_path: Path = Path("config/example.yaml")
    database_url: str = "sqlite:///var/callgateway.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    twilio_account_sid: str = DEV_ACCOUNT_SID
    twilio_auth_token: str = field(default=DEV_AUTH_TOKEN, repr=False)
    # Twilio's secondary auth token, during a rotation: webhooks signed with it are
    # accepted too; the REST client always uses the primary (README, "Rotating the token").
    twilio_auth_token_secondary: str | None = field(default=None, repr=False)
    twilio_api_base: str = "https://api.twilio.com"
    public_base_url: str = "http://127.0.0.1:8000"
    # Where Twilio opens the ConversationRelay WebSocket (the relay process): ws:// or wss://
    # scheme, host and any prefix, without /twilio/relay. Empty: PUBLIC_BASE_URL's, with
    # https becoming wss (http becoming ws).
    relay_public_url: str = ""
    aws_endpoint_url: str | None = None
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    secret_key: str = field(default=DEV_SECRET_KEY, repr=False)
    cell: str | None = None
    subject_salt: str = field(default="dev-subject-salt", repr=False)
    # Reverse proxies in front of the web process whose X-Forwarded-For/-Proto we trust
    # (for the console's per-address login limit and Secure cookies); 0 = none.
    trusted_proxies: int = 0
    # How the call journal (callgateway.calls.journal) reaches the database: "background" (a
    # drainer thread per web process; production) or "inline" (applied by the webhook that
    # appended it: tests and one-shot tools that must read their own writes at once).
    journal: str = "background"
    # Who may read /metrics: clients in these networks, or with this bearer token. Neither
    # set: /metrics answers 404. Dev and test default to loopback.
    metrics_allow_cidrs: tuple[str, ...] = ()
    metrics_token: str | None = field(default=None, repr=False)

    @property
    def relay_url(self) -> str:
        """The full WebSocket URL of the relay, as the TwiML names it and Twilio signs it."""
        return (self.relay_public_url or relay_base(self.public_base_url)) + RELAY_PATH

    @property
    def is_dev(self) -> bool:
        return self.env in ("dev", "test")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        mode = env.get("CALLGATEWAY_ENV", "dev")
        if mode not in ("dev", "test", "production"):
            raise SettingsError(f"CALLGATEWAY_ENV: must be dev, test or production, not {mode!r}")
        base = env.get("PUBLIC_BASE_URL", cls.public_base_url).rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise SettingsError("PUBLIC_BASE_URL: must start with http:// or https://")
        settings = cls(
            env=mode,
            config_path=Path(env.get("CALLGATEWAY_CONFIG") or default_config_path(mode)),
            database_url=_database_url(env.get("DATABASE_URL", cls.database_url)),
            redis_url=_redis_url(env.get("REDIS_URL", cls.redis_url)),
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", DEV_ACCOUNT_SID),
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", DEV_AUTH_TOKEN),
            twilio_auth_token_secondary=env.get("TWILIO_AUTH_TOKEN_SECONDARY") or None,
            twilio_api_base=env.get("TWILIO_API_BASE", cls.twilio_api_base).rstrip("/"),
            public_base_url=base,
            relay_public_url=_relay_public_url(env.get("RELAY_PUBLIC_URL", "")),
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            secret_key=env.get("SECRET_KEY", DEV_SECRET_KEY),
            cell=env.get("CALLGATEWAY_CELL") or None,
            subject_salt=env.get("CALLGATEWAY_SUBJECT_SALT", "dev-subject-salt"),
            trusted_proxies=_int(env, "CALLGATEWAY_TRUSTED_PROXIES", 0, 0, 5),
            journal=env.get("CALLGATEWAY_JOURNAL", "background") or "background",
            metrics_allow_cidrs=_cidrs(
                env.get("METRICS_ALLOW_CIDRS", LOOPBACK if mode in ("dev", "test") else "")
            ),
            metrics_token=env.get("METRICS_TOKEN") or None,
        )
        if settings.journal not in ("background", "inline"):
            raise SettingsError("CALLGATEWAY_JOURNAL: must be background or inline")
        if not settings.is_dev:
            for name, value, default in (
                ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token, DEV_AUTH_TOKEN),
                ("SECRET_KEY", settings.secret_key, DEV_SECRET_KEY),
                ("CALLGATEWAY_SUBJECT_SALT", settings.subject_salt, "dev-subject-salt"),
            ):
                if value == default or not value:
                    raise SettingsError(f"{name}: required outside dev")
            if settings.metrics_token is not None and len(settings.metrics_token) < 16:
                raise SettingsError("METRICS_TOKEN: at least 16 characters outside dev")
            if settings.twilio_auth_token_secondary == DEV_AUTH_TOKEN:
                raise SettingsError("TWILIO_AUTH_TOKEN_SECONDARY: the dev token, outside dev")
        return settings

    @property
    def webhook_signing_tokens(self) -> tuple[str, ...]:
        """The tokens a webhook's signature may be made with: the primary first (what
        Twilio signs with outside a rotation), then the secondary while one is set."""
        secondary = self.twilio_auth_token_secondary
        if secondary and secondary != self.twilio_auth_token:
            return (self.twilio_auth_token, secondary)
        return (self.twilio_auth_token,)


RELAY_PATH = "/twilio/relay"


def relay_base(public_base_url: str) -> str:
    """PUBLIC_BASE_URL as a WebSocket base: https -> wss, http -> ws."""
    scheme, sep, rest = public_base_url.partition("://")
    return {"https": "wss", "http": "ws"}.get(scheme, scheme) + sep + rest


def _relay_public_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    if not url:
        return ""
    if url.startswith(("http://", "https://")):
        url = relay_base(url)
    if not url.startswith(("ws://", "wss://")) or not url.split("://", 1)[1]:
        raise SettingsError("RELAY_PUBLIC_URL: must start with wss:// (or ws:// in dev)")
    # The full URL of the socket is accepted too: the path is ours to add.
    return url.removesuffix(RELAY_PATH)


# Messages below never echo the URL: it may hold a password.


def _database_url(url: str) -> str:
    """Refuse, at start, a URL SQLAlchemy cannot use: otherwise the first query fails
    deep inside a request or a command, as a traceback."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise SettingsError(
            "DATABASE_URL: not a SQLAlchemy URL (e.g. postgresql://user:pass@host/db)"
        ) from None
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise SettingsError(
            f"DATABASE_URL: unknown database dialect {parsed.drivername!r}"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise SettingsError(
            f"DATABASE_URL: the driver for {dialect.name}+{dialect.driver} is not "
            f"installed ({exc.name or exc})"
        ) from None
    return url


def _redis_url(url: str) -> str:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError("REDIS_URL: must start with redis://, rediss:// or unix://")
    try:
        parse_redis_url(url)  # what redis.Redis.from_url will do with it
    except ValueError:
        raise SettingsError(
            "REDIS_URL: malformed (expected redis://[[user]:password@]host[:port][/db])"
        ) from None
    return url


def _int(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().isdigit() or not low <= int(raw) <= high:
        raise SettingsError(f"{name}: must be a whole number from {low} to {high}")
    return int(raw)


LOOPBACK = "127.0.0.0/8,::1/128"


def _cidrs(raw: str) -> tuple[str, ...]:
    """METRICS_ALLOW_CIDRS: comma-separated networks (`10.0.0.0/8, 192.168.1.5`)."""
    networks = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise SettingsError(
                f"METRICS_ALLOW_CIDRS: {part!r} is not a network (e.g. 10.0.0.0/8)"
            ) from None
    return tuple(networks)
