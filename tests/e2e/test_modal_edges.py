"""Create and roll forms at their edges, over the wire: a refused submission leaves the App Home
without a success line, a pasted name's surrounding spaces do not refuse it, and text PostgreSQL
cannot keep (NUL) is refused inline instead of failing the form."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.shell.wire import block_actions_body
from bot.slack import home, modals
from tests.e2e.conftest import OWNER, TEAM, Harness
from tests.e2e.test_home_and_modals import (
    KEY_RE,
    opened_view,
    post,
    shortcut_modal,
    submit,
    text_of,
    values,
    view_calls,
)
from tests.procs import fresh_postgres_database


async def from_home(h: Harness, action_id: str, value: str) -> dict[str, Any]:
    """Click a Home button that opens a form; the form opened."""
    before = len(view_calls(h, "views.open"))
    click = block_actions_body(
        user_id=OWNER, team_id=TEAM, action_id=action_id, value=value, response_url="",
        container={"type": "view", "view_id": "VHOME"},
    )  # fmt: skip
    assert (await post(h, click))[0] == 200
    return await opened_view(h, before)


def home_texts(h: Harness) -> list[str]:
    return [text_of(c.args["view"]) for c in view_calls(h, "views.publish")]


async def test_a_refused_create_from_the_home_leaves_no_created_line_on_it(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    view = await from_home(harness, home.HOME_CREATE, "-")
    answer = await submit(harness, OWNER, view, values(project="payments", name="default"))  # taken
    assert answer["response_action"] == "errors" and modals.NAME in answer["errors"], answer
    await harness.runtime.home.settle()
    assert not any("Created key `default`" in text for text in home_texts(harness))
    answer = await submit(harness, OWNER, view, values(project="payments", name="web"))
    assert answer["response_action"] == "update" and KEY_RE.search(text_of(answer["view"]))
    await harness.runtime.home.settle()
    assert any("Created key `web` in `payments`" in text for text in home_texts(harness))


async def test_a_refused_roll_from_the_home_leaves_no_rolled_line_on_it(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    await harness.as_owner("create payments soon expires 5d")
    await harness.as_owner("disable payments soon")  # a disabled key is not rolled
    view = await from_home(harness, home.HOME_ROLL, home.key_value("payments", "soon"))
    grace = {modals.GRACE: {modals.GRACE: {"type": "static_select", "selected_option": {"value": "0"}}}}
    answer = await submit(harness, OWNER, view, grace)
    assert answer["response_action"] == "errors", answer
    await harness.runtime.home.settle()
    assert not any("Rolled key `soon`" in text for text in home_texts(harness))


@pytest.mark.parametrize("typed", ["ci-deploy ", " ci-deploy", "\tci-deploy\n"])
async def test_a_pasted_key_name_with_spaces_around_it_is_created_trimmed(harness: Harness, typed: str) -> None:
    await harness.as_owner("project create payments")
    view = await shortcut_modal(harness)
    answer = await submit(harness, OWNER, view, values(project="payments", name=typed))
    assert answer["response_action"] == "update", answer
    assert "`ci-deploy`" in text_of(answer["view"]) and KEY_RE.search(text_of(answer["view"]))
    assert "*ci-deploy*" in (await harness.as_owner("list payments")).text


class TestOnPostgres:
    @pytest.fixture
    async def e2e_overrides(self) -> AsyncIterator[dict[str, object]]:
        async with fresh_postgres_database() as url:
            yield {"database_url": url}

    async def test_a_nul_in_a_note_or_reason_is_refused_where_it_was_typed(self, harness: Harness) -> None:
        await harness.as_owner("project create payments")
        view = await shortcut_modal(harness)
        answer = await submit(harness, OWNER, view, values(project="payments", name="k2", note="a\x00b"))
        assert answer["response_action"] == "errors", answer
        assert "control characters" in answer["errors"][modals.NOTE]
        reply = await harness.as_owner("create payments k9 note a\x00b")
        assert reply.status == 200 and "control characters" in reply.text and not KEY_RE.search(reply.text)
        await harness.as_owner("grant <@UWRITER1> read-write payments")
        reply = await harness.cmd("UWRITER1", "request payments for a\x00b")
        assert reply.status == 200 and "control characters" in reply.text
        answer = await submit(harness, OWNER, view, values(project="payments", name="k2", note="a b"))
        assert answer["response_action"] == "update"  # the same form, fixed, goes through


async def test_a_key_pasted_into_a_note_is_refused_next_to_the_note_and_kept_nowhere(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    [key] = set(KEY_RE.findall((await harness.as_owner("create payments ci")).text))
    view = await shortcut_modal(harness)
    answer = await submit(harness, OWNER, view, values(project="payments", name="web", note=f"same as {key}"))
    assert answer["response_action"] == "errors" and "cannot hold an API key" in answer["errors"][modals.NOTE]
    assert key not in text_of(answer)
    reply = await harness.as_owner(f"create payments web note like {key}")
    assert "cannot hold an API key" in reply.text and key not in reply.text
    stored = b"".join(p.read_bytes() for p in harness.db_path.parent.iterdir() if p.name.startswith("keybot.db"))
    assert key.encode() not in stored
    assert "*web*" not in (await harness.as_owner("list payments")).text


async def test_a_key_pasted_as_a_key_name_is_refused_next_to_the_name_and_never_listed(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    [key] = set(KEY_RE.findall((await harness.as_owner("create payments ci")).text))
    view = await shortcut_modal(harness)
    answer = await submit(harness, OWNER, view, values(project="payments", name=key))
    assert answer["response_action"] == "errors" and "cannot hold an API key" in answer["errors"][modals.NAME]
    for command in (f"create payments {key}", f"project create {key}"):
        reply = await harness.as_owner(command)
        assert "cannot hold an API key" in reply.text and key not in reply.text
    assert key not in (await harness.as_owner("list payments")).text + (await harness.as_owner("audit")).text
