"""Settings from the environment (DESIGN.md §3). Read once, in bot/cli.py; never at import time."""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.domain.hashing import HashParams
from bot.domain.keys import PREFIX_RE

# ``scheme://user:`` and everything up to the last ``@``: the password, however it is spelled.
_URL_PASSWORD = re.compile(r"^([\w+.-]+://[^:/@]*):.*@")


def without_password(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1:***@", url)


# The bot scopes of manifest.yaml, asked for at each OAuth install unless SLACK_SCOPES says otherwise.
DEFAULT_SCOPES = ("commands", "chat:write")


class SettingsError(Exception):
    """A missing or malformed setting; ``str()`` is one line saying which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite+aiosqlite:///keybot.db"
    host: str = "0.0.0.0"
    port: int = 3000
    verify_token: str | None = field(default=None, repr=False)
    key_prefix: str = "kb"
    hash_params: HashParams = field(default_factory=HashParams)
    log_level: str = "INFO"
    # how long the periodic purge keeps rows (None: for ever); audit events are always kept
    retain_sent_dms: timedelta | None = timedelta(days=30)
    retain_dead_dms: timedelta | None = timedelta(days=90)
    retain_pending_deletions: timedelta | None = timedelta(days=1)  # after they expired or were used
    dm_merge_seconds: int = 3  # changes for one person within this many seconds make one DM
    metrics: bool = True  # GET /metrics (KEYBOT_METRICS=off: no metrics at all, e.g. to measure their cost)
    metrics_port: int | None = None  # also serve /metrics alone on this port
    log_format: str = "text"  # or "json": one JSON object per line, with the request id
    github_keys_url: str | None = None  # GitHub's secret-scanning keys: serves POST /v1/leaks/github
    # OAuth v2 (many workspaces): both set switch it on; SLACK_BOT_TOKEN is then unused
    slack_client_id: str | None = None
    slack_client_secret: str | None = field(default=None, repr=False)
    slack_scopes: tuple[str, ...] = DEFAULT_SCOPES
    # every audit event POSTed there, HMAC-SHA256-signed with the secret (bot/audit_webhook.py); the URL
    # may carry a token in its query, so neither is shown by repr
    audit_webhook_url: str | None = field(default=None, repr=False)
    audit_webhook_secret: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        """The dataclass repr, minus the secrets (``repr=False``) and the URLs' passwords."""

        def shown(name: str) -> str:
            value = getattr(self, name)
            return repr(without_password(value) if name.endswith("_url") and isinstance(value, str) else value)

        return "Settings(" + ", ".join(f"{f.name}={shown(f.name)}" for f in fields(self) if f.repr) + ")"

    @property
    def hashing_for_tests_only(self) -> bool:
        """KEYBOT_ARGON2_PROFILE=cheapest: hashes anyone who sees them could brute-force."""
        return self.hash_params == HashParams.cheapest()

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def slack_configured(self) -> bool:
        return self.slack_bot_token is not None or self.oauth

    @property
    def oauth(self) -> bool:
        """Whether keybot is installed through OAuth in many workspaces (one token per installation)."""
        return self.slack_client_id is not None and self.slack_client_secret is not None

    def require_slack(self) -> None:
        """Raise SettingsError unless the Slack settings needed by ``keybot serve`` are present and valid."""
        if self.oauth:
            self._require_oauth()
            return
        if not self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token):
            given = "SLACK_APP_TOKEN" if self.slack_app_token else "SLACK_SIGNING_SECRET"
            raise SettingsError(
                f"{given} is set but SLACK_BOT_TOKEN is not: keybot needs both. Copy the Bot User OAuth "
                "Token (xoxb-…) from the app's OAuth & Permissions page and export it as SLACK_BOT_TOKEN "
                "(or set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to install keybot in many workspaces)."
            )
        if not self.slack_bot_token:
            raise SettingsError(
                "SLACK_BOT_TOKEN is not set: create the Slack app from manifest.yaml (README, 'Create the "
                "Slack app'), install it, and export its Bot User OAuth Token (xoxb-…); "
                "or run `keybot shell` to try keybot without Slack."
            )
        if not self.slack_bot_token.startswith("xoxb-"):
            raise SettingsError(
                "SLACK_BOT_TOKEN must be a bot token starting with xoxb- (OAuth & Permissions page)."
            )
        if self.slack_app_token is not None and not self.slack_app_token.startswith("xapp-"):
            raise SettingsError(
                "SLACK_APP_TOKEN must be an app-level token starting with xapp- (Basic Information page)."
            )
        if self.slack_app_token is None and not self.slack_signing_secret:
            raise SettingsError(
                "SLACK_SIGNING_SECRET is not set: copy the Signing Secret from the app's Basic Information page "
                "(or set SLACK_APP_TOKEN to use Socket Mode)."
            )


    def _require_oauth(self) -> None:
        if self.slack_app_token is not None:
            raise SettingsError(
                "SLACK_APP_TOKEN is set with SLACK_CLIENT_ID: installing keybot in many workspaces needs HTTP "
                "mode (Slack redirects browsers to /slack/oauth_redirect). Unset SLACK_APP_TOKEN."
            )
        if not self.slack_signing_secret:
            raise SettingsError(
                "SLACK_SIGNING_SECRET is not set: installing through OAuth needs keybot's HTTP endpoints; copy "
                "the Signing Secret from the app's Basic Information page."
            )


def _scopes(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return DEFAULT_SCOPES
    scopes = tuple(s.strip() for s in raw.split(",") if s.strip())
    if not scopes or any(re.fullmatch(r"[a-z][a-z0-9_.:-]{0,63}", s) is None for s in scopes):
        raise SettingsError(
            "SLACK_SCOPES must be bot scopes separated by commas, such as commands,chat:write."
        )
    if "commands" not in scopes or "chat:write" not in scopes:
        raise SettingsError("SLACK_SCOPES must include commands and chat:write (keybot needs both).")
    return scopes


def _oauth_credentials(client_id: str | None, client_secret: str | None) -> None:
    if (client_id is None) != (client_secret is None):
        given, missing = (
            ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET") if client_id else ("SLACK_CLIENT_SECRET", "SLACK_CLIENT_ID")
        )
        raise SettingsError(
            f"{given} is set but {missing} is not: installing keybot through OAuth needs both "
            "(the app's Basic Information page, App Credentials)."
        )


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number between {low} and {high}, not {raw!r}.") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, not {value}.")
    return value


_DURATION = re.compile(r"([0-9]{1,6})([hdw])")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def _retention(env: Mapping[str, str], name: str, default: timedelta | None) -> timedelta | None:
    """A retention period: ``12h``, ``30d``, ``2w`` (1 hour to 10 years), or ``forever``."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw == "forever":
        return None
    match = _DURATION.fullmatch(raw)
    value = int(match[1]) * _UNITS[match[2]] if match else None
    if value is None or not timedelta(hours=1) <= value <= timedelta(days=3650):
        raise SettingsError(
            f"{name} must be a duration from 1h to 3650d such as 36h, 30d or 2w, or 'forever'; "
            f"not {env[name].strip()[:40]!r}."
        )
    return value


def _hash_params(env: Mapping[str, str]) -> HashParams:
    profile = env.get("KEYBOT_ARGON2_PROFILE", "owasp")
    if profile == "owasp":
        return HashParams()
    if profile == "cheapest":
        return HashParams.cheapest()
    raise SettingsError(
        f"KEYBOT_ARGON2_PROFILE must be 'owasp' (default) or 'cheapest' (tests only), not {profile!r}."
    )


def _check_database_url(url: str) -> None:
    """Parse ``url`` as the engine will, so that a malformed one is one line, never a traceback. The
    message never repeats the URL: it may hold a password."""
    try:
        port = make_url(url).port
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise SettingsError(
            "DATABASE_URL is malformed (is its port a number from 1 to 65535?): it should look like "
            "postgresql+asyncpg://user:password@host:5432/dbname."
        )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from ``env`` (default: os.environ), or raise SettingsError."""
    env = os.environ if env is None else env

    def opt(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    database_url = opt("DATABASE_URL") or Settings.database_url
    if not database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        if database_url.startswith(("postgres://", "postgresql://")):
            raise SettingsError(
                "DATABASE_URL must name the asyncpg driver: postgresql+asyncpg://user@host:5432/dbname"
            )
        raise SettingsError(
            "DATABASE_URL must start with sqlite+aiosqlite:/// or postgresql+asyncpg://, "
            f"not {database_url.split(':', 1)[0]!r}."
        )
    _check_database_url(database_url)
    api_url = opt("SLACK_API_URL") or Settings.slack_api_url
    if not api_url.startswith(("http://", "https://")):
        raise SettingsError(
            f"SLACK_API_URL must be an http(s) URL such as https://slack.com/api/, not {api_url!r}."
        )
    if not api_url.endswith("/"):
        api_url += "/"
    prefix = opt("KEYBOT_KEY_PREFIX") or Settings.key_prefix
    if PREFIX_RE.fullmatch(prefix) is None:
        raise SettingsError(
            "KEYBOT_KEY_PREFIX must be 1–16 lowercase letters or digits, starting with a letter."
        )
    level = (opt("KEYBOT_LOG_LEVEL") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError("KEYBOT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR.")
    metrics = (opt("KEYBOT_METRICS") or "on").lower()
    if metrics not in ("on", "off"):
        raise SettingsError(f"KEYBOT_METRICS must be 'on' (default) or 'off', not {metrics[:20]!r}.")
    log_format = (opt("KEYBOT_LOG_FORMAT") or "text").lower()
    if log_format not in ("text", "json"):
        raise SettingsError(f"KEYBOT_LOG_FORMAT must be 'text' (default) or 'json', not {log_format[:20]!r}.")
    metrics_port = _int(env, "KEYBOT_METRICS_PORT", 0, low=1, high=65535) if opt("KEYBOT_METRICS_PORT") else None
    github_keys_url = opt("KEYBOT_GITHUB_KEYS_URL")
    if github_keys_url is not None and not github_keys_url.startswith(("http://", "https://")):
        raise SettingsError(
            "KEYBOT_GITHUB_KEYS_URL must be an http(s) URL, normally "
            "https://api.github.com/meta/public_keys/secret_scanning."
        )
    client_id, client_secret = opt("SLACK_CLIENT_ID"), opt("SLACK_CLIENT_SECRET")
    _oauth_credentials(client_id, client_secret)
    webhook_url, webhook_secret = _audit_webhook(opt("KEYBOT_AUDIT_WEBHOOK_URL"), opt("KEYBOT_AUDIT_WEBHOOK_SECRET"))
    return Settings(
        slack_client_id=client_id,
        slack_client_secret=client_secret,
        slack_scopes=_scopes(opt("SLACK_SCOPES")),
        slack_bot_token=opt("SLACK_BOT_TOKEN"),
        slack_signing_secret=opt("SLACK_SIGNING_SECRET"),
        slack_app_token=opt("SLACK_APP_TOKEN"),
        slack_api_url=api_url,
        database_url=database_url,
        host=opt("KEYBOT_HOST") or Settings.host,
        port=_int(env, "PORT", Settings.port, low=0, high=65535),
        verify_token=opt("KEYBOT_VERIFY_TOKEN"),
        key_prefix=prefix,
        hash_params=_hash_params(env),
        log_level=level,
        retain_sent_dms=_retention(env, "KEYBOT_RETAIN_SENT_DMS", Settings.retain_sent_dms),
        retain_dead_dms=_retention(env, "KEYBOT_RETAIN_DEAD_DMS", Settings.retain_dead_dms),
        retain_pending_deletions=_retention(
            env, "KEYBOT_RETAIN_PENDING_DELETIONS", Settings.retain_pending_deletions
        ),
        dm_merge_seconds=_int(env, "KEYBOT_DM_MERGE_SECONDS", Settings.dm_merge_seconds, low=0, high=60),
        metrics=metrics == "on",
        metrics_port=metrics_port,
        log_format=log_format,
        github_keys_url=github_keys_url,
        audit_webhook_url=webhook_url,
        audit_webhook_secret=webhook_secret,
    )


MIN_WEBHOOK_SECRET = 32


def _audit_webhook(url: str | None, secret: str | None) -> tuple[str | None, str | None]:
    """Both or neither; an http(s) URL and a secret long enough that nobody guesses it. The messages
    never repeat either value (a URL may carry a token)."""
    if url is None and secret is None:
        return None, None
    if url is None:
        raise SettingsError(
            "KEYBOT_AUDIT_WEBHOOK_SECRET is set but KEYBOT_AUDIT_WEBHOOK_URL is not: set the URL that "
            "should receive every audit event, or unset the secret."
        )
    if not url.startswith(("http://", "https://")):
        raise SettingsError("KEYBOT_AUDIT_WEBHOOK_URL must be an http(s) URL such as https://siem.example.com/keybot.")
    if secret is None or len(secret) < MIN_WEBHOOK_SECRET:
        raise SettingsError(
            f"KEYBOT_AUDIT_WEBHOOK_SECRET must be set, at least {MIN_WEBHOOK_SECRET} characters, when "
            "KEYBOT_AUDIT_WEBHOOK_URL is: it signs every delivery. Make one with `openssl rand -hex 32` "
            "and give the receiver the same value."
        )
    return url, secret
