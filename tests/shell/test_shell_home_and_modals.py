"""The App Home and the create and roll modals in ``keybot shell``: ``/home`` shows the Home as text with
clickable buttons, a modal is a form filled field by field (keybot's inline errors ask a field again),
and the new secret is shown once, in the modal."""

from bot.settings import Settings
from tests.shell.conftest import SECRET_RE, after, reply_to, transcript
from tests.shell.test_shell_nudges import reminders_fall_due

SETUP = ("y", "project create payments")


def test_home_shows_your_roles_and_projects_and_its_create_button_opens_a_form_showing_the_secret_once(
    settings: Settings,
) -> None:
    text = transcript(settings, *SETUP, "/home", "/click 1", "", "ci-deploy", "", "for CI", "list payments")
    home = reply_to(text, "/home")
    assert "Home of @ana:" in home and "Your roles: organization owner" in home
    assert "`payments` — 1 key" in home and "[1] Create key (primary)" in home
    opened = reply_to(text, "/click 1")
    assert "Modal for @ana:" in opened and "Create API key" in opened and "[1] payments" in opened
    submitted = reply_to(text, "for CI")
    assert "Modal for @ana (updated):" in submitted and "will not be shown again" in submitted
    [secret] = SECRET_RE.findall(submitted)
    assert "Home of @ana (refreshed):" in submitted and "Created key `ci-deploy` in `payments`" in submitted
    assert "`payments` — 2 keys" in after(submitted, "(refreshed)")
    assert text.count(secret) == 1  # never again: not in the Home, the list or any DM
    assert "ci-deploy" in reply_to(text, "list payments")


def test_a_taken_name_is_asked_again_with_keybots_error_and_the_other_answers_are_kept(settings: Settings) -> None:
    text = transcript(settings, *SETUP, "/apikeys create", "", "default", "2", "", "ci", "show payments ci")
    assert "Fill it in field by field" in reply_to(text, "/apikeys create")
    refused = reply_to(text, "", occurrence=2)  # the note, the last field: the form is submitted
    assert "Slack shows what to fix, next to the field:" in refused and "already exists" in refused
    assert not SECRET_RE.search(refused)
    accepted = reply_to(text, "ci")
    assert len(SECRET_RE.findall(accepted)) == 1
    assert "Expires: never" not in reply_to(text, "show payments ci")  # the expiry chosen before the error was kept


def test_a_bad_menu_answer_and_an_empty_required_field_are_asked_again_before_anything_is_sent(
    settings: Settings,
) -> None:
    text = transcript(settings, *SETUP, "/shortcut create", "7", "1", "", "k1", "soon", "1", "")
    assert "Choose one of the options by its number or its name." in reply_to(text, "7")
    assert "Key name is required." in reply_to(text, "", occurrence=1)
    assert "Choose one of the options" in reply_to(text, "soon")
    assert len(SECRET_RE.findall(reply_to(text, "", occurrence=2))) == 1


def test_cancel_closes_the_modal_and_nothing_is_created(settings: Settings) -> None:
    text = transcript(settings, *SETUP, "/shortcut create", "1", "/cancel", "list payments")
    assert "Closed the modal; nothing was submitted." in reply_to(text, "/cancel")
    assert "all 1," in reply_to(text, "list payments")


def test_someone_who_owns_no_project_gets_a_modal_saying_why(settings: Settings) -> None:
    text = transcript(settings, *SETUP, "/as carl", "/shortcut create", "/shortcut nope", "/home")
    refusal = reply_to(text, "/shortcut create")
    assert "Modal for @carl:" in refusal and "You own no project" in refusal and "Fill it in" not in refusal
    assert "Usage: /shortcut create" in reply_to(text, "/shortcut nope")
    home = reply_to(text, "/home")
    assert "none yet" in home and "Create key" not in home


def test_roll_and_extend_from_the_home_show_the_new_secret_once_and_refresh_the_home(settings: Settings) -> None:
    text = transcript(settings, *SETUP, "create payments soon expires 5d", "/home", "/click 2", "4", "/click 3")
    home = reply_to(text, "/home")
    assert "`soon` in `payments`" in home and "[2] Roll  [3] Extend 30 days" in home
    assert "none: stop the old secret now" in reply_to(text, "/click 2")
    assert "✎ The old secret keeps working for [24 hours (default)] > 4" in text
    rolled = reply_to(text, "4")
    [secret] = SECRET_RE.findall(rolled)
    assert "stopped working now" in rolled and "Rolled key `soon` in `payments`." in rolled
    assert text.count(secret) == 1
    extended = reply_to(text, "/click 3")
    assert "Home of @ana (refreshed):" in extended and "now expires" in extended
    assert "Keys expiring within 14 days: none." in extended


def test_another_owners_change_refreshes_the_home_of_whoever_opened_it_and_of_no_one_else(settings: Settings) -> None:
    text = transcript(
        settings, *SETUP, "grant @bob owner payments", "grant @carl owner payments", "/home",
        "/as bob", "create payments bobkey", "/as ana", "revoke @bob payments",
    )
    created = reply_to(text, "create payments bobkey")
    assert "Home of @ana (refreshed):" in created and "`payments` — 2 keys" in created
    assert "Home of @carl" not in text and "Home of @bob" not in text  # they never opened theirs
    assert "Home of @ana" not in reply_to(text, "revoke @bob payments")  # her own change: no refresh for it


def test_a_revoked_role_refreshes_the_home_of_the_person_who_lost_it(settings: Settings) -> None:
    text = transcript(settings, *SETUP, "grant @bob owner payments", "/as bob", "/home", "/as ana", "revoke @bob payments")
    assert "owner of `payments`" in reply_to(text, "/home")
    revoked = reply_to(text, "revoke @bob payments")
    assert "Home of @bob (refreshed):" in revoked
    assert "none yet" in after(revoked, "Home of @bob (refreshed):")


def test_a_button_on_someone_elses_home_says_whose_it_is(settings: Settings) -> None:
    text = transcript(settings, *SETUP, "grant @bob owner payments", "/as bob", "/home", "/as ana", "/click 1")
    assert "Button [1] is on the Home of @bob. Use /as bob." in reply_to(text, "/click 1")


def test_roll_from_a_reminder_dm_opens_the_roll_form_and_shows_the_new_secret_once(settings: Settings) -> None:
    transcript(settings, "y", "/apikeys project create web", "/apikeys create web ci expires 3d")
    reminders_fall_due(settings)
    text = transcript(settings, "whoami", "/click 1", "2", "/click 1")
    assert "[1] Roll (primary)  [2] Extend 30 days  [3] Let it expire" in reply_to(text, "whoami")
    opened = reply_to(text, "/click 1")
    assert "Modal for @ana:" in opened and "Give key `ci`" in opened and "fresh lifetime" in opened
    rolled = reply_to(text, "2")
    [secret] = SECRET_RE.findall(rolled)
    assert "It now expires on" in rolled and "DM to @ana (updated):" in rolled and "@ana rolled key `ci`" in rolled
    assert text.count(secret) == 1
    assert "gone: its DM was updated" in reply_to(text, "/click 1", occurrence=2)
