"""Settings from the environment (DESIGN.md §3). Read once, in bot/cli.py; never at import time."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.domain.hashing import HashParams
from bot.domain.keys import PREFIX_RE


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

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def slack_configured(self) -> bool:
        return self.slack_bot_token is not None

    def require_slack(self) -> None:
        """Raise SettingsError unless the Slack settings needed by ``keybot serve`` are present and valid."""
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


def _hash_params(env: Mapping[str, str]) -> HashParams:
    profile = env.get("KEYBOT_ARGON2_PROFILE", "owasp")
    if profile == "owasp":
        return HashParams()
    if profile == "cheapest":
        return HashParams.cheapest()
    raise SettingsError(
        f"KEYBOT_ARGON2_PROFILE must be 'owasp' (default) or 'cheapest' (tests only), not {profile!r}."
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
    return Settings(
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
    )
