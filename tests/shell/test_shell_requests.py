"""Access requests in ``keybot shell``: a member asks, the owner sees the request as a DM with numbered
buttons and approves it with ``/click``, the member reveals the key from their own DM, once."""

from bot.settings import Settings
from tests.shell.conftest import SECRET_RE, reply_to, transcript


def test_a_request_is_approved_and_revealed_once_by_clicking_the_dms_buttons(settings: Settings) -> None:
    text = transcript(
        settings,
        "y",
        "/apikeys project create web",
        "/apikeys grant @bob read-write web",
        "/as bob",
        "/apikeys request web expires 30d for the importer",
        "/as ana",
        "/click 1",
        "/as bob",
        "/click 1",
        "/click 1",
        "/apikeys requests",
    )
    asked = reply_to(text, "/apikeys request web expires 30d for the importer")
    assert "Asked for a key of `web` for: the importer" in asked
    assert "DM to @ana:" in asked and "@bob asks for a key of project `web`" in asked
    assert "[1] Approve (primary)  [2] Deny (danger)" in asked
    approved = reply_to(text, "/click 1")
    assert "Approved @bob's request" in approved and "DM to @bob:" in approved and "[1] Reveal key" in approved
    assert "DM to @ana (updated):" in approved and "@ana approved @bob's request" in approved
    revealed = reply_to(text, "/click 1", occurrence=2)
    assert "only you (@bob) see" in revealed and len(SECRET_RE.findall(revealed)) == 1
    assert "DM to @bob (updated):" in revealed and "You revealed your key" in revealed
    assert "gone: its DM was updated" in reply_to(text, "/click 1", occurrence=3)
    assert "revealed as key `request-1`, approved by @ana" in reply_to(text, "/apikeys requests")
    assert len(set(SECRET_RE.findall(text))) == 2  # the project's default key, and the revealed one


def test_dms_shows_each_dm_as_it_is_now_and_its_numbers_are_what_click_presses(settings: Settings) -> None:
    """`/dms` numbers the live buttons it shows, so `/click` presses those (not the previous output's:
    after `list`, `/click 2` was that list's Roll), and an answered request shows its answer, not dead
    Approve/Deny buttons."""
    text = transcript(
        settings,
        "y",
        "/apikeys project create payments",
        "/apikeys grant @bob read-write payments",
        "/as bob",
        "/apikeys request payments for the export",
        "/as ana",
        "/apikeys list payments",
        "/dms @ana",
        "/click 2",
        "/dms @ana",
        "/apikeys show payments default",
    )
    listed = reply_to(text, "/dms @ana")
    assert "@bob asks for a key of project `payments`" in listed and "[1] Approve (primary)  [2] Deny (danger)" in listed
    denied = reply_to(text, "/click 2")
    assert "Denied @bob's request" in denied and "Rolled" not in denied
    again = reply_to(text, "/dms @ana", occurrence=2)
    assert "@ana denied @bob's request" in again and "Approve" not in again
    assert "rolled" not in reply_to(text, "/apikeys show payments default").lower()
