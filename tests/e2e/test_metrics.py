"""``GET /metrics``: request latency by surface and subcommand, verify outcomes and cache hits, argon2
lanes, the outbox and Slack API errors — with labels that never name a user, project or key."""

import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bot.domain.tracing import new_request_id
from bot.observability import Labels, Metrics, Sources, serve_metrics
from bot.runtime import build_runtime
from bot.shell.fakeslack import FakeSlack, SlackError
from bot.shell.wire import event_body, post_signed
from tests.e2e.conftest import OWNER, SIGNING_SECRET, TEAM, Harness, e2e_settings

SECOND = "USECOND01"
KEY_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")


async def scrape(harness: Harness, url: str | None = None) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of ``/metrics``: {sample name: {sorted labels: value}}."""
    async with harness.session.get(url or f"{harness.base_url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


async def verify(harness: Harness, key: str) -> dict[str, object]:
    async with harness.session.post(f"{harness.base_url}/v1/keys/verify", json={"key": key}) as response:
        return dict(await response.json())


async def test_requests_are_counted_by_surface_and_subcommand_and_unknown_words_are_not_labels(
    harness: Harness,
) -> None:
    await harness.as_owner("project create payments-secret-project")
    await harness.as_owner("list payments-secret-project")
    await harness.as_owner("list payments-secret-project")
    await harness.as_owner("frobnicate-UEVILUSER the-project-name")
    async with harness.session.get(f"{harness.base_url}/healthz") as response:
        assert response.status == 200

    samples = await scrape(harness)
    counts = samples["keybot_request_seconds_count"]
    assert counts[(("name", "list"), ("surface", "command"))] == 2
    assert counts[(("name", "project"), ("surface", "command"))] == 1
    assert counts[(("name", "unknown"), ("surface", "command"))] == 1
    assert counts[(("name", "healthz"), ("surface", "health"))] == 1
    responses = samples["keybot_responses_total"]
    assert responses[(("status", "200"), ("surface", "command"))] == 4
    async with harness.session.get(f"{harness.base_url}/metrics") as response:
        text = await response.text()
    for private in ("payments-secret-project", "frobnicate", "UEVILUSER", "the-project-name", OWNER):
        assert private not in text


async def test_verify_outcomes_and_cache_hits_and_the_argon2_lane_are_reported(harness: Harness) -> None:
    reply = await harness.as_owner("project create payments")
    [key] = set(KEY_RE.findall(reply.text))
    assert (await verify(harness, key))["valid"] is True  # first time: argon2
    assert (await verify(harness, key))["valid"] is True  # then from the cache
    assert (await verify(harness, "kb_nonsense"))["code"] == "MALFORMED"

    samples = await scrape(harness)
    assert samples["keybot_verify_total"][(("code", "VALID"),)] == 2
    assert samples["keybot_verify_total"][(("code", "MALFORMED"),)] == 1
    assert samples["keybot_verify_cache_hits_total"][(("cache", "matched"),)] == 1
    assert samples["keybot_request_seconds_count"][(("name", "verify"), ("surface", "verify"))] == 3
    lanes = samples["keybot_argon2_seconds_count"]
    assert lanes[(("lane", "argon2-verify"),)] == 1  # the one first-time verification
    assert lanes[(("lane", "argon2-create"),)] >= 1  # the key's hash
    assert samples["keybot_argon2_queue_depth"][(("lane", "argon2-verify"),)] == 0
    assert samples["keybot_argon2_queue_capacity"][(("lane", "argon2-verify"),)] > 0
    assert samples["keybot_outbox_pending"][()] >= 0
    assert samples["keybot_database_up"][()] == 1


async def test_a_click_is_labelled_with_its_action_id(harness: Harness) -> None:
    await harness.as_owner("project create payments")
    reply = await harness.as_owner("delete payments default")
    [confirm] = [b for b in reply.buttons() if b["action_id"] == "delete_cancel"]
    await harness.driver.click(OWNER, confirm)

    samples = await scrape(harness)
    assert samples["keybot_request_seconds_count"][(("name", "delete_cancel"), ("surface", "click"))] == 1


async def test_slack_api_errors_are_counted_by_method_and_error(harness: Harness) -> None:
    harness.slack.fail_next("chat.postMessage", SlackError("channel_not_found"))
    await harness.as_owner("project create payments")
    await harness.as_owner(f"grant <@{SECOND}> member")  # a DM to SECOND, refused by Slack
    await harness.outbox_drained()
    samples = await scrape(harness)
    errors = samples["keybot_slack_api_errors_total"]
    assert errors[(("error", "channel_not_found"), ("method", "chat.postMessage"))] == 1
    assert samples["keybot_outbox_dead_letters_total"][()] == 1
    assert samples["keybot_outbox_dead"][()] == 1


async def test_every_response_names_its_request_id_and_a_sane_given_id_is_kept(harness: Harness) -> None:
    async with harness.session.get(f"{harness.base_url}/healthz", headers={"X-Request-Id": "lb-42.a_b"}) as response:
        assert response.headers["X-Request-Id"] == "lb-42.a_b"
    async with harness.session.get(
        f"{harness.base_url}/healthz", headers={"X-Request-Id": "evil\tid with spaces"}
    ) as response:
        assert response.headers["X-Request-Id"] != "evil\tid with spaces"
        assert re.fullmatch(r"[0-9a-f]{6}-[0-9a-f]+", response.headers["X-Request-Id"])


@pytest.fixture
def e2e_overrides() -> dict[str, object]:
    return {}


async def test_metrics_off_serves_no_metrics(tmp_path: Path, slack: FakeSlack) -> None:
    runtime = await build_runtime(e2e_settings(slack, tmp_path / "k.db", metrics=False))
    try:
        assert runtime.metrics is None
        runner = web.AppRunner(runtime.web_app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 404
        await runner.cleanup()
    finally:
        await runtime.aclose()


async def test_metrics_can_be_served_on_a_port_of_their_own(harness: Harness) -> None:
    assert harness.runtime.metrics is not None
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cleanup = await serve_metrics(harness.runtime.metrics, "127.0.0.1", port)
    try:
        samples = await scrape(harness, f"http://127.0.0.1:{port}/metrics")
        assert "keybot_argon2_queue_depth" in samples
    finally:
        await cleanup()


def test_two_runtimes_in_one_process_keep_registries_of_their_own() -> None:
    first = Metrics(subcommands=["list"], action_ids=[], sources=Sources())
    second = Metrics(subcommands=["list"], action_ids=[], sources=Sources())
    first.observe("command", "list", seconds=0.01, status=200)
    assert first.registry.get_sample_value("keybot_request_seconds_count", {"surface": "command", "name": "list"}) == 1
    assert second.registry.get_sample_value("keybot_request_seconds_count", {"surface": "command", "name": "list"}) is None


@pytest.mark.parametrize(
    ("body", "label"),
    [
        (b"command=%2Fapikeys&text=list+payments&user_id=U1", "list"),
        (b"command=%2Fapikeys&text=LIST&user_id=U1", "list"),
        (b"command=%2Fapikeys&text=&user_id=U1", "help"),
        (b"command=%2Fapikeys&user_id=U1", "help"),
        (b"command=%2Fapikeys&text=%F0%9F%92%A5+x", "unknown"),
        (b"command=%2Fapikeys&text=projects-of-U123", "unknown"),
    ],
)
def test_a_subcommand_label_is_one_of_keybots_words_or_unknown(body: bytes, label: str) -> None:
    assert Labels(subcommands=["list", "help"], action_ids=[]).subcommand(body) == label


@pytest.mark.parametrize(
    ("body", "label"),
    [
        (b'payload=%7B%22actions%22%3A%5B%7B%22action_id%22%3A%22keys_older%22%7D%5D%7D', "keys_older"),
        (b'payload=%7B%22actions%22%3A%5B%7B%22action_id%22%3A%22U12345%22%7D%5D%7D', "unknown"),
        (b"payload=not-json", "unknown"),
        (b'payload=%7B%22actions%22%3A5%7D', "unknown"),
    ],
)
def test_an_action_label_is_one_of_keybots_action_ids_or_unknown(body: bytes, label: str) -> None:
    assert Labels(subcommands=[], action_ids=["keys_older"]).action(body) == label


def test_slack_errors_beyond_the_bound_are_labelled_other() -> None:
    metrics = Metrics(subcommands=[], action_ids=[], sources=Sources())
    for n in range(80):
        metrics.slack_error("chat.postMessage", f"error_{n}")
    values = {
        sample.labels["error"]
        for family in metrics.registry.collect()
        for sample in family.samples
        if family.name == "keybot_slack_api_errors"
    }
    assert "other" in values
    assert len(values - {"other"}) == 50


def test_request_ids_differ() -> None:
    assert new_request_id() != new_request_id()


async def test_a_message_whose_text_looks_like_a_form_is_counted_as_an_event_not_a_command_or_click(
    harness: Harness,
) -> None:
    """Anyone in a channel writes what they like: ``command=`` or ``&payload=`` inside a message's JSON
    does not make it a slash command or a click in the metrics."""
    for text in ("see https://x.example/?command=/apikeys&text=grant", "a=1&payload={}", "command=/apikeys"):
        event = {"type": "message", "channel": "C1", "user": "U1", "ts": "1.1", "text": text}
        status, _ = await post_signed(
            harness.session, harness.driver.events_url, event_body(event=event, team_id=TEAM),
            signing_secret=SIGNING_SECRET, content_type="application/json",
        )  # fmt: skip
        assert status == 200
    counted = (await scrape(harness))["keybot_request_seconds_count"]
    assert {k: v for k, v in counted.items() if ("surface", "command") in k or ("surface", "click") in k} == {}
    assert counted[(("name", "slack_check"), ("surface", "other"))] == 3
