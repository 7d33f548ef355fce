"""``keybot serve | bootstrap | shell | db upgrade``: argument parsing; bot/runtime.py wires the parts."""

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Callable, Sequence

from bot.runtime import StartupError, bootstrap, db_upgrade, serve
from bot.settings import SettingsError, load_settings


def _slack_id(kind: str, prefixes: str) -> Callable[[str], str]:
    def check(raw: str) -> str:
        if not re.fullmatch(f"[{prefixes}][A-Z0-9]{{2,20}}", raw):
            raise argparse.ArgumentTypeError(
                f"{raw!r} is not a Slack {kind} id (like {prefixes[0]}0123ABCD); find it in Slack's "
                f"{'workspace settings' if kind == 'workspace' else 'profile menu → Copy member ID'}"
            )
        return raw

    return check


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keybot", description="Manage your projects' API keys from Slack.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve Slack, the verify API and /healthz")
    boot = sub.add_parser("bootstrap", help="create a workspace's organization and its first owner")
    boot.add_argument(
        "--team-id", required=True, type=_slack_id("workspace", "TE"), help="the Slack workspace id, T…"
    )
    boot.add_argument(
        "--owner",
        required=True,
        type=_slack_id("user", "UW"),
        help="the Slack user id of the first owner, U…",
    )
    boot.add_argument("--org", default=None, help="organization name (default: the team id)")
    shell = sub.add_parser("shell", help="try every command in a terminal, with no Slack workspace")
    shell.add_argument("--as", dest="user", default=None, help="act as this Slack user id")
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply schema migrations")
    return parser


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Bolt and slack-sdk log request and response bodies at DEBUG; a body can hold a new key's secret.
    for name in ("slack_bolt", "keybot.bolt", "slack_sdk"):
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLevelName(level)))
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        _setup_logging(settings.log_level)
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
        elif args.command == "shell":
            from bot.shell import run_shell

            return run_shell(settings, user=args.user)
    except (SettingsError, StartupError) as err:
        print(f"keybot: {err}", file=sys.stderr)
        return 2 if isinstance(err, SettingsError) else 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
