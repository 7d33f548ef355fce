"""``keybot shell``: try every command in a terminal, with no Slack workspace.

The shell runs the real keybot (``bot.runtime.build_runtime``: store, services, Bolt app, web app) on a
free port of 127.0.0.1 and drives it only as Slack would: signed slash commands and button clicks sent
by ``SlackDriver`` (driver.py, wire.py) to ``POST /slack/events``. The Slack Web API and the
``response_url`` endpoints are an in-process ``FakeSlack`` (fakeslack.py); the shell prints what each
user would see in Slack (render.py)::

    @ana> /apikeys create payments checkout
    #3 only you (@ana) see:
      🔑 New key `checkout` in `payments`. Copy it now — it will not be shown again: …
    DM to @ana:
      🔑 @ana created key `checkout` (`kb_7Hq2Lm9x_…a81Z`) in project `payments` on today at 14:05.

- Database: a trial database of its own, ``keybot-shell.db`` in the working folder; ``DATABASE_URL`` is
  ignored, and ``keybot serve`` never reads that file. ``--database-url`` names another database; one
  holding a real workspace's organization (any team id but ``TSHELL0001``) is refused unless
  ``--i-know-this-is-production`` is given (database.py). Audit rows and DMs of the shell are marked
  ``origin = "shell"``; its outbox worker sends only those DMs, and only to the stand-in Slack.
- Workspace: the team id of the database's organization when it has exactly one, else ``TSHELL0001``
  (``SHELL_TEAM_ID``). With no organization for it, the shell offers to bootstrap one, owned by you;
  that is the only direct service call (``keybot.operators.bootstrap``, as ``keybot bootstrap`` does),
  not a Slack command.
- Users: ``/as ana`` acts as ``UANA`` (``U`` + the name's letters and digits, uppercased, so a name is
  the same user in every session); ``/as U123ABC`` acts as that id. ``@ana`` in a typed line is sent
  the way Slack escapes mentions (``should_escape``): ``<@UANA|ana>``.
- ``/click N`` presses button [N] of the latest message with buttons, with the ``response_url`` of that
  message, after asking y/n when the button carries a ``confirm`` dialog.
- ``/say <text>`` posts a ``message`` event in #general as you, and ``/deactivate @name`` a
  ``user_change`` with ``deleted: true``; the shell waits until keybot handled it, then shows the DMs
  and the private warning (``chat.postEphemeral``) it sent.

``Shell`` (repl.py) is the line-at-a-time API (``start``, ``handle``, ``prompt``); ``run_shell``
(terminal.py) is the CLI loop. Nothing here imports storage or SQLAlchemy: data comes through the
services of ``bot.runtime``.
"""

from bot.shell.database import SHELL_DATABASE_URL, SHELL_TEAM_ID
from bot.shell.repl import Shell
from bot.shell.terminal import run_shell
from bot.shell.users import user_id_for

__all__ = ["SHELL_DATABASE_URL", "SHELL_TEAM_ID", "Shell", "run_shell", "user_id_for"]
