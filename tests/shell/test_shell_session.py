"""``keybot shell`` driven through its line loop: scripted lines in, the transcript out."""

import asyncio
import io
from dataclasses import replace
from pathlib import Path

import pytest

from bot.runtime import bootstrap
from bot.settings import Settings
from bot.shell import run_shell
from tests.shell.conftest import SECRET_RE, after, reply_to, transcript

BOOTSTRAP_QUESTION = "No organization yet. Create one with you as its owner? [Y/n] "


def test_an_empty_database_offers_bootstrap_and_yes_makes_you_the_org_owner(settings: Settings) -> None:
    text = transcript(settings, "y", "whoami")
    assert BOOTSTRAP_QUESTION + "y\n" in text
    assert "you (@ana) are its owner" in text
    whoami = reply_to(text, "whoami")
    assert "only you (@ana) see:" in whoami
    assert "• an owner of the organization — you may do everything in every project" in whoami


def test_pressing_enter_at_the_bootstrap_question_means_yes(settings: Settings) -> None:
    text = transcript(settings, "", "whoami")
    assert "owner of the organization" in reply_to(text, "whoami")


def test_declining_bootstrap_leaves_keybot_saying_it_is_not_set_up(settings: Settings) -> None:
    text = transcript(settings, "n", "whoami")
    assert "No organization created" in text
    assert "keybot is not set up for this workspace yet" in reply_to(text, "whoami")


def test_the_next_run_finds_the_organization_and_does_not_ask_again(settings: Settings) -> None:
    transcript(settings, "y")
    text = transcript(settings, "whoami", user="bob")
    assert "Create one" not in text
    assert "Owners of this organization: @UANA. Type /as UANA to act as one." in text
    assert "with no role yet" in reply_to(text, "whoami")


def test_a_database_with_one_organization_uses_its_workspace_when_told_it_is_production(
    settings: Settings,
) -> None:
    print(asyncio.run(bootstrap(settings, team_id="T0ACME", owner="UANA", org="Acme")))
    text = transcript(settings, "whoami", production=True)
    assert "Workspace T0ACME" in text
    assert "Create one" not in text
    assert "You are @ana in Acme" in reply_to(text, "whoami")


def test_project_create_shows_the_default_key_only_to_you_and_dms_the_other_owner_without_it(
    settings: Settings,
) -> None:
    text = transcript(settings, "y", "grant @bob owner", "/apikeys project create payments")
    reply = reply_to(text, "/apikeys project create payments")
    shown, dm = reply.split("DM to @bob:\n")
    assert shown.startswith("#2 only you (@ana) see:\n")
    assert "Created project `payments`; its `default` key" in shown
    assert "DM to @ana" not in reply  # you saw the reply: no DM about your own change
    [secret] = SECRET_RE.findall(shown)
    assert "created key `default`" in dm
    assert secret not in dm
    assert f"`{secret[:14]}…{secret[-4:]}`" in dm


def test_a_new_key_secret_is_printed_once_and_only_in_its_creators_reply(settings: Settings) -> None:
    text = transcript(
        settings,
        "y",
        "grant @bob owner",
        "project create payments",
        "create payments checkout",
        "list payments",
        "audit payments",
        "/dms",
    )
    created = reply_to(text, "create payments checkout")
    assert "only you (@ana) see:" in created
    assert "it will not be shown again" in created
    [secret] = SECRET_RE.findall(created.split("DM to")[0])
    assert text.count(secret) == 1
    assert "DM to @bob:\n  🔑 @ana created key `checkout`" in created  # the DM was there, without it
    assert "DM to @ana" not in created


def test_list_shows_keys_masked_newest_first_and_never_a_secret(settings: Settings) -> None:
    text = transcript(settings, "y", "project create payments", "create payments checkout", "list payments")
    [checkout] = SECRET_RE.findall(reply_to(text, "create payments checkout"))
    listing = reply_to(text, "list payments")
    assert "Keys in `payments` — all 2, newest first" in listing
    assert f"checkout   `{checkout[:14]}…{checkout[-4:]}`" in listing
    assert listing.index("checkout") < listing.index("default")
    assert "created by @ana today at" in listing
    assert not SECRET_RE.search(listing)
    assert "{" not in listing and '"type"' not in listing


def test_delete_shows_numbered_buttons_and_the_confirm_dialog_before_anything_happens(
    settings: Settings,
) -> None:
    text = transcript(settings, "y", "project create payments", "delete payments default", "/click 1")
    asked = reply_to(text, "delete payments default")
    assert "[1] Delete (danger)  [2] Cancel" in asked
    dialog = reply_to(text, "/click 1")
    assert dialog.startswith("Slack asks: Delete this key?\n  default (kb_")
    assert "stops working immediately." in dialog
    assert text.endswith("Delete (y) or Keep it (n)? [y/N] \n")
    assert "Deleted key" not in text


def test_confirming_delete_with_y_deletes_the_key_and_replaces_the_message(settings: Settings) -> None:
    text = transcript(
        settings,
        "y",
        "project create payments",
        "grant @bob owner payments",
        "delete payments default",
        "/click 1",
        "y",
        "list payments",
    )
    outcome = after(text, "Delete (y) or Keep it (n)? [y/N] y\n").split("@ana> ")[0]
    assert outcome.startswith("#4 only you (@ana) see (replaces message #3):\n")
    assert "🗑️ Deleted key `default`" in outcome
    assert "DM to @bob:\n  🗑️ @ana deleted key `default`" in outcome
    assert "DM to @ana" not in outcome
    assert "No keys in `payments`" in reply_to(text, "list payments")


def test_answering_no_to_the_confirm_dialog_sends_nothing_and_keeps_the_key(settings: Settings) -> None:
    text = transcript(
        settings, "y", "project create payments", "delete payments default", "/click 1", "n", "list payments"
    )
    assert "[y/N] n\nKeep it: nothing was sent.\n" in text
    assert "default   `kb_" in reply_to(text, "list payments")


def test_cancel_button_replaces_the_confirmation_and_its_buttons_are_gone(settings: Settings) -> None:
    text = transcript(
        settings, "y", "project create payments", "delete payments default", "/click 2", "/click 1"
    )
    cancelled = reply_to(text, "/click 2")
    assert cancelled.startswith("#3 only you (@ana) see (replaces message #2):\n")
    assert "Cancelled. Key `default` in `payments` was not deleted." in cancelled
    assert reply_to(text, "/click 1") == "Button [1] is gone: message #2 was replaced.\n"


def test_another_user_is_refused_with_the_same_friendly_error_as_in_slack(settings: Settings) -> None:
    text = transcript(
        settings,
        "y",
        "project create payments",
        "/as bob",
        "list payments",
        "/as ana",
        "grant @bob read-only payments",
        "/as bob",
        "create payments mine",
        "delete payments default",
    )
    assert "You are now @bob (UBOB)." in text
    stranger = reply_to(text, "list payments")
    assert stranger.startswith("#2 only you (@bob) see:\n")
    assert "⚠️ No project named `payments` that you can see." in stranger
    reader = reply_to(text, "create payments mine")
    assert "⚠️ Only owners of `payments` can " in reader
    assert not SECRET_RE.search(reader)
    assert "⚠️ Only owners of `payments` can " in reply_to(
        text, "delete payments default"
    )


def test_a_button_on_another_users_private_message_cannot_be_pressed(settings: Settings) -> None:
    text = transcript(
        settings, "y", "project create payments", "delete payments default", "/as bob", "/click 1"
    )
    assert reply_to(text, "/click 1") == "Button [1] is on message #2, which only @ana sees. Use /as ana.\n"


def test_dms_go_to_the_right_users_and_dms_lists_them_by_user(settings: Settings) -> None:
    text = transcript(
        settings,
        "y",
        "project create payments",
        "grant @bob owner payments",
        "/as bob",
        "create payments checkout",
        "/dms @bob",
        "/dms",
    )
    granted = reply_to(text, "grant @bob owner payments")
    assert "@bob is now owner in `payments`. That lets them create keys" in granted
    assert "DM to @bob:\n  👤 @ana made you owner in `payments`, today at" in granted
    assert "DM to @ana" not in granted
    created = reply_to(text, "create payments checkout")
    assert "DM to @ana:\n  🔑 @bob created key `checkout`" in created  # the org owner, not bob who made it
    assert "DM to @bob" not in created
    only_bob = reply_to(text, "/dms @bob")
    assert "DM to @bob:" in only_bob and "DM to @ana:" not in only_bob
    everyone = reply_to(text, "/dms")
    assert everyone.index("DM to @bob:") < everyone.index("DM to @ana:")


def test_lines_without_the_apikeys_prefix_are_keybot_commands_too(settings: Settings) -> None:
    text = transcript(settings, "y", "/apikeys projects", "projects")
    assert reply_to(text, "/apikeys projects").replace("#1", "#2") == reply_to(text, "projects")
    assert "There is no project yet. Create one with `/apikeys project create <project>`." in reply_to(
        text, "projects"
    )


def test_an_unknown_keybot_word_gets_the_nearest_command_or_a_pointer_to_help(settings: Settings) -> None:
    text = transcript(settings, "y", "frobnicate payments", "lsit payments")
    assert "I don't know `frobnicate`. `/apikeys help` lists what I can do." in reply_to(text, "frobnicate payments")
    assert "Did you mean `list`? Usage: `/apikeys list <project>`" in reply_to(text, "lsit payments")


def test_an_unknown_slash_command_gets_the_shell_help(settings: Settings) -> None:
    text = transcript(settings, "y", "/frob")
    reply = reply_to(text, "/frob")
    assert reply.startswith("/frob is not a valid command")
    assert "/click N" in reply and "/as <name or U…>" in reply


def test_click_without_buttons_or_with_a_wrong_number_says_why(settings: Settings) -> None:
    text = transcript(
        settings,
        "y",
        "/click 1",
        "delete payments x",
        "project create payments",
        "delete payments default",
        "/click 3",
        "/click one",
    )
    assert reply_to(text, "/click 1") == "There are no buttons to press yet.\n"
    assert reply_to(text, "/click 3") == "There is no button [3]; the latest buttons are [1]–[2].\n"
    assert reply_to(text, "/click one").startswith("Usage: /click N")


def test_paging_buttons_replace_the_list_with_the_next_page(settings: Settings) -> None:
    keys = [f"create payments k{i:02d}" for i in range(20)]
    text = transcript(settings, "y", "project create payments", *keys, "list payments", "/click 101")
    first = reply_to(text, "list payments")
    assert "1–20 of 21" in first
    assert "[100] Audit log" in first and "[101] Older ▶" in first  # each row's menu first, then paging
    assert "default" not in first
    older = reply_to(text, "/click 101")
    assert "(replaces message #22)" in older
    assert "21 of 21, newest first" in older and "default" in older and "[6] ◀ Newer" in older


def test_quit_ends_the_session_with_exit_code_zero(settings: Settings) -> None:
    text = transcript(settings, "y", "/quit", "whoami")
    assert text.endswith("@ana> /quit\nBye.\n")


def test_an_unreachable_database_stops_the_shell_with_one_clear_line(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unreachable = replace(settings, database_url=f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'keybot.db'}")
    assert run_shell(unreachable, user="ana", stdin=io.StringIO("whoami\n"), stdout=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err.startswith("keybot: cannot reach the database at sqlite+aiosqlite:///")
    assert "Traceback" not in err


def test_a_user_that_is_neither_a_name_nor_an_id_is_refused_before_starting(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_shell(settings, user="...", stdin=io.StringIO(""), stdout=io.StringIO()) == 2
    assert "neither a name nor a Slack user id" in capsys.readouterr().err


def test_dms_for_a_nonsense_name_shows_the_usage(settings: Settings) -> None:
    text = transcript(settings, "y", "/dms @...")
    assert reply_to(text, "/dms @...") == "Usage: /dms or /dms @name.\n"
