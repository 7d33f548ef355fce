"""Domain errors made of parts (bot/domain/errors.py), how each front end shows them, and ``Actor``."""

import pytest

from bot.domain.errors import (
    ConfirmationRefused,
    InvalidInput,
    KeybotError,
    NotFound,
    PermissionDenied,
    User,
)
from bot.domain.model import Actor
from bot.slack.blocks import Message
from bot.slack.errors import guarded


def test_str_shows_a_user_as_at_id() -> None:
    err = ConfirmationRefused("Only ", User("U1"), ", who asked, can confirm.")
    assert str(err) == "Only @U1, who asked, can confirm."


def test_render_shows_each_user_its_own_way() -> None:
    err = NotFound(User("U1"), " and ", User("U2"), " have no role.")
    assert err.render(lambda user_id: f"<@{user_id}>") == "<@U1> and <@U2> have no role."
    assert err.render(lambda user_id: user_id.lower()) == "u1 and u2 have no role."


def test_the_parts_are_kept_as_given() -> None:
    err = KeybotError("a ", User("U1"), " b")
    assert err.parts == ("a ", User("U1"), " b")
    assert err.args == err.parts


def test_a_message_of_text_only_is_its_text() -> None:
    assert str(InvalidInput("bad name")) == "bad name"
    assert InvalidInput("bad name").render(lambda _: "never") == "bad name"


def test_a_message_may_be_one_user() -> None:
    assert str(NotFound(User("U9"))) == "@U9"


async def test_the_slack_error_handler_mentions_users() -> None:
    async def work() -> Message:
        raise PermissionDenied("Ask ", User("U0OWNER"), " for access.")

    message, ok = await guarded(work)
    assert not ok
    assert message["response_type"] == "ephemeral"
    assert "Ask <@U0OWNER> for access." in message["text"]


async def test_the_slack_error_handler_hides_unexpected_errors() -> None:
    async def work() -> Message:
        raise RuntimeError("secret internals")

    message, ok = await guarded(work)
    assert not ok
    assert "secret internals" not in message["text"] and "ref" in message["text"]


def test_an_actor_has_no_enterprise_by_default() -> None:
    assert Actor("T1", "U1").enterprise_id is None
    assert Actor(team_id="T1", user_id="U1") == Actor("T1", "U1", None)


def test_an_actor_of_an_enterprise_grid_keeps_it() -> None:
    actor = Actor("T1", "U1", enterprise_id="E1")
    assert actor.enterprise_id == "E1"
    assert actor != Actor("T1", "U1")


def test_an_actor_is_immutable() -> None:
    with pytest.raises(AttributeError):
        Actor("T1", "U1").enterprise_id = "E1"  # type: ignore[misc]
