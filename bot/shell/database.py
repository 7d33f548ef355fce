"""Which database ``keybot shell`` uses, and the guard that keeps it off real workspaces' data.

- The shell keeps a trial database of its own, ``keybot-shell.db`` in the working folder, so a
  newcomer's trial survives restarts. It never reads ``DATABASE_URL`` (bot/cli.py gives it
  ``SHELL_DATABASE_URL`` unless ``--database-url`` names another), and ``keybot serve`` never reads
  ``keybot-shell.db``: a key made in the shell never verifies on a server.
- ``guard`` refuses a database that holds the organization of a real Slack workspace (any team id but
  ``SHELL_TEAM_ID``) unless ``--i-know-this-is-production`` was given. It reads the organizations
  before anything is migrated or written.
- Everything the shell changes is stamped ``SHELL_ORIGIN`` (audit rows and DMs), and its outbox worker
  sends only the DMs it queued, so a server's pending DMs are never claimed by the shell.
"""

from bot.runtime import StartupError, existing_org_teams, redacted
from bot.settings import Settings

SHELL_TEAM_ID = "TSHELL0001"
SHELL_DATABASE_URL = "sqlite+aiosqlite:///keybot-shell.db"
SHELL_DATABASE_NAME = "keybot-shell.db"
PRODUCTION_FLAG = "--i-know-this-is-production"


def _teams(teams: list[str]) -> str:
    shown = ", ".join(teams[:3])
    return shown + (f" and {len(teams) - 3} more" if len(teams) > 3 else "")


def _database(settings: Settings) -> str:
    if settings.database_url == SHELL_DATABASE_URL:
        return SHELL_DATABASE_NAME
    return redacted(settings.database_url)


async def guard(settings: Settings, *, production: bool) -> list[str]:
    """The real workspaces (team ids other than ``SHELL_TEAM_ID``) whose organizations the database
    holds; ``StartupError`` (one line) if there are any and ``production`` is False."""
    real = [team for team in await existing_org_teams(settings) if team != SHELL_TEAM_ID]
    if real and not production:
        kind = "workspace" if len(real) == 1 else "workspaces"
        raise StartupError(
            f"keybot shell will not open {_database(settings)}: it holds the organization of real Slack "
            f"{kind} {_teams(real)}, where the shell could act as anyone. Leave out --database-url to use "
            f"the shell's own trial database, or add {PRODUCTION_FLAG} if you mean to change real data."
        )
    return real


def workspace(teams: list[str]) -> str:
    """The workspace a session acts in: the database's one organization's, else ``SHELL_TEAM_ID``."""
    return teams[0] if len(teams) == 1 else SHELL_TEAM_ID


def database_banner(settings: Settings, *, real: list[str]) -> str:
    """The banner's words about the database."""
    if settings.database_url == SHELL_DATABASE_URL:
        return f"database {SHELL_DATABASE_NAME} (a trial database of its own; `serve` never reads it)"
    line = f"database {_database(settings)}"
    if real:
        kind = "workspace" if len(real) == 1 else "workspaces"
        line += (
            f".\nIt holds real data: the organization of Slack {kind} {_teams(real)}. What you change "
            "here is real, and its audit log marks it (in keybot shell); DMs are only shown here, never "
            "sent to Slack"
        )
    return line
