"""The HTTP API keeps its contract, bot/openapi.json (OpenAPI 3.1): real answers of the running app
validate against it, ``GET /openapi.json`` serves it, and a bounded schemathesis run against a real
``keybot serve`` finds no 5xx and no answer outside it (``make fuzz`` runs a longer one)."""

import asyncio
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from bot.observability import OPENAPI
from bot.shell.fakeslack import FakeSlack
from tests.e2e.conftest import Harness
from tests.e2e.contract import SPEC, conforms
from tests.e2e.test_github_leaks import GitHubStandIn, github  # noqa: F401 (a fixture)
from tests.e2e.test_verify_api import well_formed
from tests.procs import running_keybot

TOKEN = "contract-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEY_RE = re.compile(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}")


@pytest.fixture
def e2e_overrides() -> dict[str, object]:
    return {"verify_token": TOKEN}


async def call_verify(harness: Harness, body: Any, *, headers: dict[str, str] = AUTH) -> dict[str, Any]:
    async with harness.session.post(f"{harness.base_url}/v1/keys/verify", json=body, headers=headers) as response:
        answer = await response.json()
        conforms("/v1/keys/verify", "post", response.status, response.headers["Content-Type"], answer)
        return {"status": response.status, **answer}


async def new_key(harness: Harness, text: str) -> str:
    [key] = set(KEY_RE.findall((await harness.as_owner(text)).text))
    return key


async def test_every_verify_answer_of_the_running_app_matches_the_contract(harness: Harness) -> None:
    forever = await new_key(harness, "project create payments")
    expiring = await new_key(harness, "create payments soon expires 30d")
    rolled = await new_key(harness, "create payments rolled")
    await harness.as_owner("roll payments rolled grace 24h")
    disabled = await new_key(harness, "create payments off")
    await harness.as_owner("disable payments off")

    answers = [
        await call_verify(harness, {"key": forever}),
        await call_verify(harness, {"key": expiring}),
        await call_verify(harness, {"key": rolled}),
        await call_verify(harness, {"key": disabled}),
        await call_verify(harness, {"key": "kb_not-a-key"}),
        await call_verify(harness, {"key": well_formed()}),
        await call_verify(harness, {"key": 12}),
        await call_verify(harness, {"nokey": 1}),
        await call_verify(harness, ["key"]),
        await call_verify(harness, {"key": forever}, headers={}),
        await call_verify(harness, {"key": forever}, headers={"Authorization": "Bearer wrong"}),
    ]
    harness.clock.shift(timedelta(days=31))
    answers.append(await call_verify(harness, {"key": expiring}))

    seen = [(a["status"], a.get("code"), "retiring_at" in a, a.get("expires_at") is not None) for a in answers]
    assert seen == [
        (200, None, False, False),
        (200, None, False, True),
        (200, None, True, False),
        (200, "DISABLED", False, False),
        (200, "MALFORMED", False, False),
        (200, "NOT_FOUND", False, False),
        (200, "MALFORMED", False, False),
        (400, None, False, False),
        (400, None, False, False),
        (401, None, False, False),
        (401, None, False, False),
        (200, "EXPIRED", False, False),
    ]


async def test_health_metrics_and_the_contract_itself_are_served_as_described(harness: Harness) -> None:
    async with harness.session.get(f"{harness.base_url}/healthz") as response:
        conforms("/healthz", "get", response.status, response.headers["Content-Type"], await response.json())
        assert response.status == 200
    async with harness.session.get(f"{harness.base_url}/metrics") as response:
        conforms("/metrics", "get", response.status, response.headers["Content-Type"], await response.text())
    async with harness.session.get(f"{harness.base_url}/openapi.json") as response:
        assert response.status == 200
        assert await response.json() == SPEC


def test_the_contract_is_a_valid_openapi_3_1_document() -> None:
    assert SPEC["openapi"].startswith("3.1")
    Draft202012Validator.check_schema({**SPEC})
    for schema in SPEC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_the_busy_answer_web_py_gives_matches_the_contract() -> None:
    conforms(
        "/v1/keys/verify", "post", 503, "application/json",
        {"error": "busy verifying other keys; retry later", "retry_after": 1},
    )
    conforms("/v1/keys/verify", "post", 503, "application/json", {"error": "key database unavailable; retry"})
    conforms("/healthz", "get", 503, "application/json", {"status": "unavailable", "database": "unreachable"})


FUZZ_EXAMPLES = int(os.environ.get("KEYBOT_FUZZ_EXAMPLES", "100"))


async def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_contract(
    tmp_path: Path, slack: FakeSlack, github: GitHubStandIn  # noqa: F811 (the fixture)
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keybot.db'}"
    async with running_keybot(
        database_url=url, slack_api_url=slack.api_url, log_path=tmp_path / "keybot.log", KEYBOT_VERIFY_TOKEN=TOKEN,
        KEYBOT_GITHUB_KEYS_URL=github.url,
    ) as kb:
        base = kb.events_url.rsplit("/slack/events", 1)[0]
        run = await asyncio.to_thread(
            subprocess.run,
            [
                str(Path(sys.executable).with_name("st")), "run", str(OPENAPI), "--url", base,
                "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                "response_schema_conformance",
                "--max-examples", str(FUZZ_EXAMPLES), "--workers", "1", "--phases", "examples,coverage,fuzzing",
                "-H", f"Authorization: Bearer {TOKEN}", "--seed", "1",
            ],
            capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,  # its cache stays there
        )
        code, log = await kb.stop()
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.search(r"Tested: 5\b", run.stdout) and re.search(r"[1-9][0-9]* generated", run.stdout), run.stdout[-2000:]
    assert code == 0, log
