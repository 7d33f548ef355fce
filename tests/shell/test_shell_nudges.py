"""Reminders in ``keybot shell``: a due reminder shows up as a DM with numbered buttons, ``/click N``
presses one from the DM, and the DM is shown again, updated, once decided."""

import sqlite3
from datetime import UTC, datetime, timedelta

from sqlalchemy import make_url

from bot.settings import Settings
from tests.shell.conftest import reply_to, transcript


def reminders_fall_due(settings: Settings) -> None:
    """As if the reminders' day had come: every pending expiry reminder due a second ago."""
    path = make_url(settings.database_url).database
    assert path is not None
    moment = (datetime.now(UTC) - timedelta(seconds=1)).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(path) as db:
        changed = db.execute(
            "UPDATE jobs SET due_at = ? WHERE kind = 'expiry nudge' AND done_at IS NULL", (moment,)
        ).rowcount
    assert changed == 1


def test_a_due_reminder_is_a_dm_with_buttons_and_clicking_one_updates_it(settings: Settings) -> None:
    transcript(settings, "y", "/apikeys project create web", "/apikeys create web ci expires 3d")
    reminders_fall_due(settings)
    text = transcript(settings, "whoami", "/click 2", "/click 2")
    shown = reply_to(text, "whoami")
    assert "DM to @ana:" in shown and "Key `ci` (`kb_" in shown and "expires" in shown
    assert "[1] Roll (primary)  [2] Extend 30 days  [3] Let it expire" in shown
    clicked = reply_to(text, "/click 2")
    assert "only you (@ana) see" in clicked and "now expires" in clicked
    assert "DM to @ana (updated):" in clicked and "@ana extended key `ci`" in clicked
    assert "gone: its DM was updated" in reply_to(text, "/click 2", occurrence=2)
