"""The lifecycle's ``/apikeys`` words (bot/slack/lifecycle_commands.py) through ``run_command``, on the
in-memory store: what each line is understood as, and the usage each wrong line gets."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.errors import InvalidInput, KeybotError
from bot.domain.model import Actor
from bot.services import Keybot
from bot.slack.commands import COMMANDS, run_command
from tests.fakes import FakeClock, MemoryStore


@pytest.fixture
async def kb(keybot: Keybot, org: Actor) -> Keybot:
    await keybot.projects.create(org, name="web")
    return keybot


async def test_create_takes_an_expiry_and_a_note_of_many_words_as_typed(
    kb: Keybot, org: Actor, store: MemoryStore, clock: FakeClock
) -> None:
    note = "rotates with the deploy of the web app on Fridays, ask <@U0ANA> first & last"
    reply = await run_command(kb, org, f"create web ci expires 30d note   {note}")
    assert "New key `ci`" in reply["blocks"][0]["text"]["text"]
    [row] = [r for r in store.state.keys.values() if r.name == "ci"]
    assert row.note == note and row.expires_at is not None
    await run_command(kb, org, "CREATE web cd note expires 30d is part of the note")
    [row] = [r for r in store.state.keys.values() if r.name == "cd"]
    assert (row.note, row.expires_at) == ("expires 30d is part of the note", None)


async def test_a_key_named_like_an_option_word_is_still_a_key_name(kb: Keybot, org: Actor, store: MemoryStore) -> None:
    await run_command(kb, org, "create web note")
    await run_command(kb, org, "create web expires expires never")
    assert {r.name for r in store.state.keys.values()} >= {"note", "expires"}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("create web my key", "did you mean `my-key`"),
        ("create web ci expires", "`expires` needs a time, like `expires 30d`"),
        ("create web ci expires 30d soon", "I don't understand `soon` here"),
        ("create web ci lasting 30d", "did you mean `ci-lasting-30d`"),
        ("create web ci expire 30d", "I don't understand `expire` here: did you mean `expires`?"),
        ("create web ci notes x", "did you mean `note`?"),
        ("create web", "Missing argument. Usage: `/apikeys create <project> <key-name> [expires <when>] [note <text…>]`"),
        ("create web ci expires tomorrow", "`30d`"),
        ("create web ci note", "A note needs some text"),
        ("roll web default forever", "`grace 2h`"),
        ("roll web default grace", "`grace 2h`"),
        ("roll web default grace 1y", "not a duration"),
        ("expiry web default", "Missing argument. Usage: `/apikeys expiry <project> <key-name> <when>`"),
        ("disable web", "Usage: `/apikeys disable <project> <key-name>`"),
        ("enable web default now", "Too many words. Usage: `/apikeys enable <project> <key-name>`"),
        ("show web", "Usage: `/apikeys show <project> <key-name>`"),
        ("policy max-lifetime", "needs a value, like `/apikeys policy max-lifetime 90d`"),
        ("policy lifetime 3d", "`max-lifetime`, `default-lifetime`"),
        ("policy max-lifetime 3d extra", "Too many words"),
    ],
)
async def test_each_wrong_lifecycle_line_says_what_is_accepted_and_changes_nothing(
    kb: Keybot, org: Actor, store: MemoryStore, text: str, says: str
) -> None:
    before = [(r.key_id, r.expires_at, r.disabled_at) for r in store.state.keys.values()]
    with pytest.raises(InvalidInput) as err:
        await run_command(kb, org, text)
    assert says in str(err.value)
    assert [(r.key_id, r.expires_at, r.disabled_at) for r in store.state.keys.values()] == before


async def test_every_lifecycle_command_is_a_command(kb: Keybot, org: Actor) -> None:
    assert {"show", "expiry", "disable", "enable", "roll", "policy", "create"} <= set(COMMANDS)
    for text, expected in [
        ("show web default", "*Status:* active"),
        ("disable web default", "Disabled key `default`"),
        ("enable web default", "Enabled key `default`"),
        ("expiry web default 2w", "now expires"),
        ("roll web default grace 0", "stopped working now"),
        ("policy", "*Key policy of `Acme`*"),
        ("policy stale-after 30d", "Changed `stale-after`"),
    ]:
        reply = await run_command(kb, org, text)
        assert expected in str(reply["blocks"]), text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tail=st.text(alphabet=st.sampled_from(list("ab <>@!`&|_-.\t\n\u00e9\u200b0123456789")))
    | st.lists(st.sampled_from(["expires", "note", "30d", "never", "2027-03-01", "x", "<@U1>", "", "grace", "0"]))
    .map(" ".join),
    verb=st.sampled_from(["create web k", "create", "roll web default", "expiry web default", "policy", "show web"]),
)
async def test_no_lifecycle_line_raises_anything_but_a_message_for_the_user(
    kb: Keybot, org: Actor, verb: str, tail: str
) -> None:
    try:
        reply = await run_command(kb, org, f"{verb} {tail}")
    except KeybotError:
        return
    assert reply["response_type"] == "ephemeral"
