"""``keybot serve | bootstrap | shell | db upgrade | outbox``: argument parsing; bot/runtime/ wires the parts."""

import argparse
import asyncio
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time

from bot.audit_export import FORMATS
from bot.domain.errors import InvalidInput
from bot.domain.names import ORG_NAME_MAX, shown, validate_org_name
from bot.logs import setup_logging
from bot.runtime import (
    StartupError,
    audit_export,
    bootstrap,
    db_upgrade,
    keep_secrets_out_of_logs,
    outbox_list,
    outbox_retry,
    serve,
)
from bot.settings import Settings, SettingsError, load_settings

SERVE_ENVIRONMENT = """\
settings, from the environment:
  SLACK_BOT_TOKEN        xoxb-… bot token (one workspace; required unless OAuth is set up)
  SLACK_CLIENT_ID        the app's client id: with SLACK_CLIENT_SECRET, install keybot in many
                         workspaces through OAuth (GET /slack/install); SLACK_BOT_TOKEN is then unused
  SLACK_CLIENT_SECRET    the app's client secret (with SLACK_CLIENT_ID)
  SLACK_SCOPES           bot scopes asked at install, comma-separated (default commands,chat:write)
  SLACK_SIGNING_SECRET   the app's signing secret (required in HTTP mode)
  SLACK_APP_TOKEN        xapp-… app-level token: use Socket Mode instead of HTTP
  SLACK_API_URL          Web API base URL (default https://slack.com/api/)
  DATABASE_URL           sqlite+aiosqlite:///keybot.db (default) or postgresql+asyncpg://user@host:5432/db
  PORT                   HTTP port (default 3000)
  KEYBOT_HOST            HTTP bind address (default 0.0.0.0)
  KEYBOT_VERIFY_TOKEN    when set, /v1/keys/verify requires Authorization: Bearer <it>
  KEYBOT_KEY_PREFIX      prefix of new keys (default kb)
  KEYBOT_ARGON2_PROFILE  owasp (default) or cheapest (tests only)
  KEYBOT_LOG_LEVEL       DEBUG, INFO (default), WARNING or ERROR
  KEYBOT_RETAIN_SENT_DMS  keep sent DMs this long: 36h, 30d (default), 2w, … or forever
  KEYBOT_RETAIN_DEAD_DMS  keep dead DMs (refused by Slack for good) this long (default 90d)
  KEYBOT_RETAIN_PENDING_DELETIONS  keep used or expired delete confirmations this long (default 1d)
  KEYBOT_DM_MERGE_SECONDS  changes for one person within this many seconds make one DM (default 3, 0–60)
  KEYBOT_METRICS         on (default): Prometheus metrics at GET /metrics; off: none
  KEYBOT_METRICS_PORT    also serve GET /metrics alone on this port (default: the main port only)
  KEYBOT_LOG_FORMAT      text (default) or json: one JSON object per line, with a request id
  KEYBOT_GITHUB_KEYS_URL  GitHub's secret-scanning public keys, normally
                         https://api.github.com/meta/public_keys/secret_scanning: serves
                         POST /v1/leaks/github (unset: no such endpoint)
  KEYBOT_AUDIT_WEBHOOK_URL  POST every audit event there as JSON, through the outbox with retries
                         (unset: no webhook)
  KEYBOT_AUDIT_WEBHOOK_SECRET  signs each delivery (HMAC-SHA256, X-Keybot-Signature); at least 32
                         characters, required with the URL
The README's Settings section describes every setting."""


def _slack_id(kind: str, prefixes: str) -> Callable[[str], str]:
    def check(raw: str) -> str:
        if not re.fullmatch(f"[{prefixes}][A-Z0-9]{{2,20}}", raw):
            raise argparse.ArgumentTypeError(
                f"{raw!r} is not a Slack {kind} id (like {prefixes[0]}0123ABCD); find it in Slack's "
                f"{'workspace settings' if kind == 'workspace' else 'profile menu → Copy member ID'}"
            )
        return raw

    return check


SHELL_DESCRIPTION = """\
Try every command in a terminal: the real keybot, driven as Slack drives it, against a stand-in Slack.

The shell keeps its own trial database, keybot-shell.db in the working folder (kept between runs).
It never reads DATABASE_URL, and `keybot serve` never reads keybot-shell.db, so nothing made in the
shell reaches a real workspace. --database-url points it at another database; it refuses one that
holds a real Slack workspace's organization unless --i-know-this-is-production is given too."""


def _database_url(raw: str) -> str:
    if not raw.startswith(("sqlite+aiosqlite:///", "postgresql+asyncpg://")):
        raise argparse.ArgumentTypeError(
            "must start with sqlite+aiosqlite:/// or postgresql+asyncpg:// "
            "(like sqlite+aiosqlite:///trial.db)"
        )
    return raw


def _shell_environment(database_url: str | None) -> dict[str, str]:
    """The environment ``keybot shell`` reads: DATABASE_URL is its own trial database, or --database-url."""
    from bot.shell import SHELL_DATABASE_URL

    return {**os.environ, "DATABASE_URL": database_url or SHELL_DATABASE_URL}


def _org_name(raw: str) -> str:
    try:
        return validate_org_name(raw)
    except InvalidInput:
        raise argparse.ArgumentTypeError(
            f"{shown(raw)!r} is not an organization name: use 1–{ORG_NAME_MAX} printable characters"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keybot", description="Manage your projects' API keys from Slack.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "serve",
        help="serve Slack, the verify API and /healthz",
        description="Serve Slack (HTTP or Socket Mode), POST /v1/keys/verify and GET /healthz.",
        epilog=SERVE_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    boot = sub.add_parser("bootstrap", help="create a workspace's organization and its first owner")
    boot.add_argument(
        "--team-id", required=True, type=_slack_id("workspace", "TE"), help="the Slack workspace id, T… (E…: an Enterprise Grid org installed org-wide)"
    )
    boot.add_argument(
        "--owner",
        required=True,
        type=_slack_id("user", "UW"),
        help="the Slack user id of the first owner, U…",
    )
    boot.add_argument(
        "--org", default=None, type=_org_name, help="organization name, 1–64 characters (default: the team id)"
    )
    audit = sub.add_parser("audit", help="the audit trail, for a SIEM or an archive")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    export = audit_sub.add_parser(
        "export", help="write audit events to stdout as JSON lines or CSV, oldest first, streamed"
    )
    export.add_argument("--since", required=True, type=_since, help="first day to export (UTC), e.g. 2026-01-01")
    export.add_argument(
        "--org", default=None, type=_slack_id("workspace", "TE"), help="only this workspace's org (T…)"
    )
    export.add_argument("--format", default="jsonl", choices=FORMATS, help="jsonl (default) or csv")
    shell = sub.add_parser(
        "shell",
        help="try every command in a terminal, with no Slack workspace",
        description=SHELL_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    shell.add_argument("--as", dest="user", default=None, help="act as this Slack user id")
    shell.add_argument(
        "--database-url",
        metavar="URL",
        type=_database_url,
        default=None,
        help="use this database instead of keybot-shell.db (the shell ignores DATABASE_URL)",
    )
    shell.add_argument(
        "--i-know-this-is-production",
        dest="production",
        action="store_true",
        help="run even on a database that holds a real Slack workspace's organization: changes there are "
        "real (the audit log marks them as made in keybot shell); DMs are only shown here",
    )
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply schema migrations")
    outbox = sub.add_parser(
        "outbox",
        help="list DMs not sent yet, and send dead ones again",
        description="List the DMs waiting to be sent and the dead ones (Slack refused them for good, "
        "for example a user id that does not exist); `retry` queues dead DMs again.",
    )
    outbox_sub = outbox.add_subparsers(dest="outbox_command")
    retry = outbox_sub.add_parser("retry", help="queue dead DMs again: by id, or --all-dead")
    retry.add_argument("ids", nargs="*", type=_dm_id, metavar="ID", help="a dead DM's id, as `keybot outbox` lists it")
    retry.add_argument("--all-dead", action="store_true", help="every dead DM")
    return parser


def _dm_id(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a DM id (a whole number, as `keybot outbox` lists it)")
    return int(raw)


def _outbox(args: argparse.Namespace, settings: Settings) -> int:
    if args.outbox_command != "retry":
        print(asyncio.run(outbox_list(settings)))
        return 0
    if bool(args.ids) == args.all_dead:
        print("keybot: outbox retry needs the ids of dead DMs (see `keybot outbox`) or --all-dead, not both.",
              file=sys.stderr)
        return 2
    every_id_revived, report = asyncio.run(outbox_retry(settings, ids=None if args.all_dead else args.ids))
    print(report)
    return 0 if every_id_revived else 1


def _since(raw: str) -> datetime:
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a date like 2026-01-31") from None
    return datetime.combine(day, time(0), tzinfo=UTC)


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(audit_export(settings, since=args.since, team_id=args.org, fmt=args.format, out=sys.stdout))
    return 0


def _setup_logging(level: str, log_format: str = "text") -> None:
    setup_logging(level=level, log_format=log_format)
    # Database drivers log bound parameters (hashes, tokens) and Bolt and slack-sdk bodies (secrets).
    keep_secrets_out_of_logs(logging.getLevelName(level))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(_shell_environment(args.database_url) if args.command == "shell" else None)
        _setup_logging(settings.log_level, settings.log_format)
        if args.command == "serve":
            asyncio.run(serve(settings))
        elif args.command == "bootstrap":
            print(
                asyncio.run(
                    bootstrap(settings, team_id=args.team_id, owner=args.owner, org=args.org or args.team_id)
                )
            )
        elif args.command == "db":
            print(asyncio.run(db_upgrade(settings)))
        elif args.command == "outbox":
            return _outbox(args, settings)
        elif args.command == "audit":
            return _audit(args, settings)
        elif args.command == "shell":
            from bot.shell import run_shell

            return run_shell(settings, user=args.user, production=args.production)
    except (SettingsError, StartupError) as err:
        print(f"keybot: {err}", file=sys.stderr)
        return 2 if isinstance(err, SettingsError) else 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
