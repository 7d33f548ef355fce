"""Every series ``/metrics`` exports, on PostgreSQL with the audit webhook on, after a busy session: each
label is one of a fixed few with a bounded set of values (never a user, project, key or anything typed),
more users and projects add no series, and every metric the Grafana dashboard (docs/grafana/keybot.json)
queries is there."""

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.observability import MAX_SLACK_ERRORS
from bot.shell.fakeslack import SlackError
from bot.slack.codec import ActionId
from bot.slack.commands import COMMANDS
from tests.e2e.conftest import OWNER, Harness
from tests.e2e.test_audit_webhook import SECRET, Receiver, receiver  # noqa: F401 (a fixture)
from tests.e2e.test_metrics import scrape
from tests.e2e.test_secret_never_leaks import KEY_RE
from tests.procs import fresh_postgres_database

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "keybot.json"
CODES = {"VALID", "MALFORMED", "NOT_FOUND", "EXPIRED", "DISABLED"}
BOUNDED: dict[str, object] = {  # label name: its allowed values (a set, or a pattern)
    "surface": {"command", "click", "verify", "health", "other"},
    "name": set(COMMANDS) | {a.value for a in ActionId}
    | {"help", "unknown", "unreadable", "verify", "healthz", "slack_check", "/metrics", "/openapi.json", "unmatched"},
    "status": re.compile(r"[1-5][0-9][0-9]"),
    "code": CODES,
    "cache": {"matched", "refused"},
    "lane": {"argon2-create", "argon2-verify"},
    "method": re.compile(r"[a-z]+(\.[a-zA-Z]+)+"),
    "error": re.compile(r"[a-z_]{1,60}|[A-Za-z]{1,60}"),  # Slack's error word, or an exception's class
    "le": re.compile(r"[0-9.]+|\+Inf"),
    "quantile": re.compile(r"[0-9.]+"),
}


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def e2e_overrides(receiver: Receiver, pg_url: str) -> dict[str, object]:  # noqa: F811 (the fixture)
    return {"database_url": pg_url, "audit_webhook_url": receiver.url, "audit_webhook_secret": SECRET}


async def busy_session(harness: Harness, *, tag: str) -> list[str]:
    """Commands, clicks, verifies, a Slack error and webhook deliveries, naming users and projects
    after ``tag``; the words that must never become a label."""
    assert harness.runtime.webhook is not None
    harness.runtime.webhook.wake()
    user, project = f"U{tag.upper()}SER1", f"secret-project-{tag}"
    reply = await harness.as_owner(f"project create {project}")
    [key] = set(KEY_RE.findall(reply.text))
    harness.slack.fail_next("chat.postMessage", SlackError("channel_not_found"))
    await harness.as_owner(f"grant <@{user}> member")  # a DM to them, refused by Slack
    await harness.as_owner(f"list {project}")
    await harness.as_owner(f"frobnicate-{tag} {project}")
    delete = await harness.as_owner(f"delete {project} default")
    [cancel] = [b for b in delete.buttons() if b["action_id"] == "delete_cancel"]
    await harness.driver.click(OWNER, cancel)
    for candidate in (key, key, "kb_" + tag, key[:-4] + "AAAA"):
        async with harness.session.post(f"{harness.base_url}/v1/keys/verify", json={"key": candidate}) as response:
            assert response.status == 200
    async with harness.session.get(f"{harness.base_url}/healthz?who={user}") as response:
        assert response.status == 200
    async with harness.session.get(f"{harness.base_url}/no-such-page-{tag}") as response:
        assert response.status == 404
    await harness.outbox_drained()
    return [user, project, key, key[3:13], tag]


def series(samples: dict[str, dict[tuple[tuple[str, str], ...], float]]) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {(name, labels) for name, by_labels in samples.items() for labels in by_labels}


def out_of_bounds(name: str, label: str, value: str) -> bool:
    allowed = BOUNDED.get(label)
    if isinstance(allowed, re.Pattern):
        return allowed.fullmatch(value) is None
    return allowed is None or value not in allowed  # type: ignore[operator]


async def test_every_exported_series_has_bounded_labels_and_more_users_or_projects_add_none(
    harness: Harness, receiver: Receiver  # noqa: F811 (the fixture)
) -> None:
    harness.runtime.webhook.start()  # type: ignore[union-attr]
    await scrape(harness)  # so that the scrape itself is counted in both
    private = await busy_session(harness, tag="first")
    first = await scrape(harness)
    private += await busy_session(harness, tag="second")
    second = await scrape(harness)

    assert series(second) == series(first)  # new users, projects and keys: no new series
    bad = [(n, k, v) for n, labels in series(second) for k, v in labels if out_of_bounds(n, k, v)]
    assert bad == []
    values = " ".join(v for _, labels in series(second) for _, v in labels)
    assert [word for word in private if word in values] == []
    errors = {v for n, labels in series(second) for k, v in labels if k == "error"}
    assert 1 <= len(errors) <= MAX_SLACK_ERRORS + 1
    assert second["keybot_audit_webhook_deliveries_total"][()] >= 4
    assert second["keybot_db_pool_size"][()] >= 1


def dashboard_metrics() -> set[str]:
    exprs = [t["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for t in panel["targets"]]
    return set(re.findall(r"\bkeybot_[a-z0-9_]+", " ".join(exprs)))


async def test_every_metric_the_grafana_dashboard_queries_is_exported(
    harness: Harness, receiver: Receiver  # noqa: F811 (the fixture)
) -> None:
    harness.runtime.webhook.start()  # type: ignore[union-attr]
    await busy_session(harness, tag="dash")
    exported = set(await scrape(harness))
    queried = dashboard_metrics()
    assert len(queried) >= 20
    assert sorted(queried - exported) == []


def test_the_dashboard_covers_every_metric_keybot_documents() -> None:
    documented = set(re.findall(r"`(keybot_[a-z0-9_]*[a-z0-9])[`{]", (DASHBOARD.parents[2] / "README.md").read_text()))
    queried = {re.sub(r"_(bucket|count|sum|total)$", "", m) for m in dashboard_metrics()}
    missing = {m for m in documented if re.sub(r"_(bucket|count|sum|total)$", "", m) not in queried}
    assert sorted(missing) == []
