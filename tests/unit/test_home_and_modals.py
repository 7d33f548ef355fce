"""The rules of the App Home and the create modal: expiry choices under a policy, and views that stay
within Slack's 100 blocks however many projects and keys there are."""

from datetime import UTC, datetime, timedelta

from slack_sdk.models.views import View

from bot.domain.lifecycle import Policy
from bot.domain.model import KeyRecord, RoleGrant
from bot.services.home import CreateForm, ExpiringKey, HomeData, OwnedProject, StaleKey, expiry_choices
from bot.services.lifecycle import RolledKey
from bot.services.results import CreatedKey
from bot.slack import home, modals

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_without_a_maximum_every_expiry_and_never_are_offered_never_by_default() -> None:
    assert expiry_choices(Policy()) == (["1w", "30d", "90d", "never"], "never")


def test_a_maximum_lifetime_removes_never_and_longer_choices_and_is_offered_itself() -> None:
    assert expiry_choices(Policy(max_lifetime=timedelta(days=60))) == (["1w", "30d", "60d"], "60d")


def test_the_default_lifetime_is_offered_and_chosen_by_default() -> None:
    policy = Policy(max_lifetime=timedelta(days=90), default_lifetime=timedelta(days=14))
    assert expiry_choices(policy) == (["1w", "2w", "30d", "90d"], "2w")


def _key(n: int) -> KeyRecord:
    return KeyRecord(n, 1, f"id{n}", f"key{n}", f"kb_id{n}_…abcd", "U1", NOW, None, expires_at=NOW + timedelta(days=3))


def test_a_home_with_many_projects_and_expiring_keys_stays_within_100_blocks_and_summarises() -> None:
    data = HomeData(
        org="Acme",
        user_id="U1",
        grants=[RoleGrant("U1", "owner", None)],
        owned=[OwnedProject(f"p{n}", n) for n in range(20)],
        owned_total=500,
        expiring=[ExpiringKey("p1", _key(n)) for n in range(15)],
        expiring_total=400,
        now=NOW,
        stale=[StaleKey("p2", _key(100 + n), NOW - timedelta(days=200)) for n in range(15)],
        stale_total=300,
    )
    view = home.home_view(data, notice="done " * 1000)
    assert len(view["blocks"]) <= 60  # nothing cut at 100, and room left for a section of access requests
    View(**view).validate_json()
    text = str(view)
    assert "and 480 more" in text and "and 385 more" in text and "and 285 more" in text
    disable = [b["accessory"] for b in view["blocks"] if b.get("accessory", {}).get("action_id") == home.HOME_DISABLE]
    assert len(disable) == 15 and all("confirm" in button for button in disable)


def test_a_home_with_nothing_to_show_says_so_in_each_section() -> None:
    data = HomeData(org="Acme", user_id="U1", grants=[], owned=[], owned_total=0, expiring=[], expiring_total=0, now=NOW)
    view = home.home_view(data)
    View(**view).validate_json()
    text = str(view)
    assert "none yet" in text and "Keys unused for 90 days or more:* none." in text
    assert not [b for b in view["blocks"] if b["type"] == "actions"]  # no Create key for someone who owns nothing


def test_every_modal_view_parses_with_slack_sdk_even_with_the_longest_names() -> None:
    name, project = "k" * 64, "p" * 64
    created = CreatedKey(project=project, name=name, plaintext="kb_" + "a" * 40, masked="kb_…aaaa", expires_at=NOW)
    rolled = RolledKey(
        project=project, name=name, plaintext="kb_" + "b" * 40, masked="kb_…bbbb", old_masked="kb_…aaaa",
        retiring_at=NOW + timedelta(days=1), now=NOW, expires_at=None,
    )
    views = [
        modals.roll_modal(project=project, name=name, masked="kb_…aaaa", origin="home"),
        modals.created_view(created),
        modals.rolled_view(rolled),
        modals.working_view("Create API key"),
        modals.message_view("Create API key", "x" * 5000),
    ]
    for view in views:
        assert len(view["blocks"]) <= 100
        View(**view).validate_json()


def test_a_create_modal_with_more_than_100_projects_uses_an_external_menu() -> None:
    many = modals.create_modal(CreateForm([f"p{n}" for n in range(101)], ["30d"], "30d"))
    few = modals.create_modal(CreateForm(["p1"], ["30d"], "30d"))
    View(**many).validate_json()
    View(**few).validate_json()
    assert many["blocks"][0]["element"]["type"] == "external_select"
    assert few["blocks"][0]["element"]["type"] == "static_select"
