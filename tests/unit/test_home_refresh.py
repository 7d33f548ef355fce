"""HomePublisher: refreshes coalesced per user, a budget per workspace, only users who opened their
Home refreshed after others' changes, and nothing left running after ``aclose``."""

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.model import Actor
from bot.services import Keybot
from bot.services.home import HomeData
from bot.slack.home_refresh import HomePublisher

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Homes:
    async def home(self, actor: Actor) -> HomeData:
        return HomeData(org="Acme", user_id=actor.user_id, grants=[], owned=[], owned_total=0, expiring=[],
                        expiring_total=0, now=NOW)


class FakeKeybot:
    home = Homes()


class Client:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    async def views_publish(self, *, user_id: str, view: dict[str, Any]) -> None:
        self.published.append((user_id, view))


def publisher(client: Client, **kwargs: Any) -> HomePublisher:
    return HomePublisher(cast(Keybot, FakeKeybot()), client=cast(AsyncWebClient, client), **kwargs)


def actor(user: str, team: str = "T1") -> Actor:
    return Actor(team_id=team, user_id=user)


async def test_a_burst_of_refreshes_for_one_user_becomes_one_publish_with_the_latest_notice() -> None:
    client = Client()
    homes = publisher(client, interval=0.01)
    for n in range(10):
        homes.refresh(cast(AsyncWebClient, client), actor("U1"), notice=f"change {n}")
    await homes.settle()
    assert [user for user, _ in client.published] == ["U1"]
    assert "change 9" in str(client.published[0][1])
    for n in range(5):  # within the interval after a publish: one more, at the end of the interval
        homes.refresh(cast(AsyncWebClient, client), actor("U1"), notice=f"later {n}")
    await homes.settle()
    assert len(client.published) == 2 and "later 4" in str(client.published[1][1])
    await homes.aclose()


async def test_others_changes_refresh_only_users_who_opened_their_home_in_that_workspace() -> None:
    client = Client()
    homes = publisher(client, interval=0.01)
    homes.opened(cast(AsyncWebClient, client), actor("UVIEWER"))
    await homes.settle()
    homes.concerned("T1", "UVIEWER")
    homes.concerned("T1", "UNEVER")  # never opened the Home: no publish
    homes.concerned("T2", "UVIEWER")  # the same id in another workspace is someone else
    await homes.settle()
    assert [user for user, _ in client.published] == ["UVIEWER", "UVIEWER"]
    await homes.aclose()


async def test_a_workspace_gets_no_more_publishes_a_minute_than_its_budget_and_aclose_drops_the_rest() -> None:
    client = Client()
    homes = publisher(client, interval=0.01, budget=2)
    for user in ("U1", "U2", "U3"):
        homes.refresh(cast(AsyncWebClient, client), actor(user))
    homes.refresh(cast(AsyncWebClient, client), actor("U4", team="T2"))  # another workspace has its own budget
    for _ in range(500):  # the three publishes within budget go out at once
        if len(client.published) == 3:
            break
        await asyncio.sleep(0.01)
    assert sorted(user for user, _ in client.published) == ["U1", "U2", "U4"]
    assert len(homes.tasks) == 1  # U3 waits for a slot in T1's minute
    await homes.aclose()
    assert not homes.tasks and len(client.published) == 3
    homes.refresh(cast(AsyncWebClient, client), actor("U5"))  # after shutdown: nothing is started
    assert not homes.tasks
