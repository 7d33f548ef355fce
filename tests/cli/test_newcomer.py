"""What a newcomer meets first: `make run` on a fresh clone, `keybot serve --help`, start-up messages,
the manifest and the README — as real processes and real files."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from jsonschema import Draft7Validator

from bot.settings import load_settings
from bot.shell.fakeslack import FakeSlack
from bot.slack.commands import COMMANDS
from tests.procs import ROOT, running_keybot

KEYBOT = [sys.executable, "-m", "bot.cli"]


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a newcomer's terminal: no keybot settings, and not inside another make."""
    dropped = ("SLACK_", "KEYBOT_", "DATABASE_URL", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(extra)
    return env


def _keybot(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KEYBOT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def _tracked_files_copied_to(target: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_make_run_on_a_fresh_clone_installs_only_the_runtime_and_reaches_the_shell(tmp_path: Path) -> None:
    clone = _tracked_files_copied_to(tmp_path / "keybot")
    run = subprocess.run(
        ["make", "run"],
        cwd=clone,
        env=_clean_env(PY=sys.executable),
        input="n\n/quit\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = run.stdout.splitlines()
    assert run.returncode == 0, run.stdout + run.stderr
    assert lines[0].startswith("Installing keybot into .venv"), lines[:3]
    assert not any("pip" in line.lower() or "Requirement" in line for line in lines), lines[:10]
    assert "keybot shell" in run.stdout
    assert (clone / ".venv/bin/keybot").exists()
    assert not (clone / ".venv/bin/pytest").exists(), "the test toolchain belongs to `make test`"


def _settings_read_by_load_settings() -> set[str]:
    class Recording(dict[str, str]):
        def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
            asked.add(key)
            return super().get(key, default)

    asked: set[str] = set()
    load_settings(Recording())
    return asked


def test_serve_help_lists_every_environment_variable_keybot_reads(tmp_path: Path) -> None:
    names = _settings_read_by_load_settings()
    assert {"SLACK_BOT_TOKEN", "DATABASE_URL", "KEYBOT_VERIFY_TOKEN"} <= names
    shown = _keybot(["serve", "--help"], _clean_env(), tmp_path)
    assert shown.returncode == 0
    missing = sorted(name for name in names if name not in shown.stdout)
    assert missing == []


def test_a_signing_secret_without_a_bot_token_says_which_token_is_missing(tmp_path: Path) -> None:
    result = _keybot(["serve"], _clean_env(SLACK_SIGNING_SECRET="abc123"), tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "SLACK_SIGNING_SECRET is set but SLACK_BOT_TOKEN is not" in line
    assert "xoxb-" in line


def test_an_sqlite_database_in_a_missing_folder_says_so_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nowhere' / 'kb.db'}"
    result = _keybot(["db", "upgrade"], _clean_env(DATABASE_URL=url), tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert f"the folder {tmp_path / 'nowhere'}" in line and "does not exist" in line
    assert "server is running" not in line
    assert "Traceback" not in result.stderr


async def test_serve_starts_without_bolts_token_will_be_unused_warning(tmp_path: Path) -> None:
    async with FakeSlack(team_id="T0001") as slack, running_keybot(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}",
        slack_api_url=slack.api_url,
        log_path=tmp_path / "serve.log",
    ) as kb:
        code, log = await kb.stop()
    assert code == 0
    assert "keybot listening" in log
    assert "will be unused" not in log and "will be ignored" not in log


def test_the_manifest_usage_hint_names_every_command() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yaml").read_text())
    [command] = manifest["features"]["slash_commands"]
    hint = command["usage_hint"]
    missing = [verb for verb in COMMANDS if not re.search(rf"(^|[\s|]){re.escape(verb)}\b", hint)]
    assert missing == []


def test_the_repository_docs_link_nothing_outside_the_repository() -> None:
    docs = [ROOT / "README.md", ROOT / "SECURITY.md", ROOT / "ARCHITECTURE.md", *(ROOT / "docs").glob("*.md")]
    for doc in docs:
        text = doc.read_text()
        for target in re.findall(r"\]\(([^)]+)\)", text) + re.findall(r"`(\.\./[^`]*)`", text):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            assert not target.startswith("../"), f"{doc.name} links outside the repository: {target}"
            assert (doc.parent / target.split("#")[0]).exists(), f"{doc.name} links to a missing {target}"
        assert "shared/DESIGN" not in text, doc.name


def test_the_manifest_is_valid_against_slacks_published_schema() -> None:
    schema_dir = ROOT / "tests" / "data" / "slack-manifest-schema"
    schema = json.loads((schema_dir / "manifest.schema.1.0.0.json").read_text())
    manifest = yaml.safe_load((ROOT / "manifest.yaml").read_text())
    errors = [e.message for e in Draft7Validator(schema).iter_errors(manifest)]
    assert errors == []
    assert manifest["features"]["slash_commands"][0]["should_escape"] is True


def _normalized(text: str) -> list[str]:
    text = re.sub(r"kb_[A-Za-z0-9]{10}_[A-Za-z0-9]{28}", "<KEY>", text)
    text = re.sub(r"kb_[A-Za-z0-9]{10}_…[A-Za-z0-9]{4}", "<MASKED>", text)
    text = re.sub(r"today at \d\d:\d\d", "today at <TIME>", text)
    return [line.rstrip() for line in text.strip().splitlines()]


def test_the_readmes_shell_transcript_is_what_the_shell_really_prints(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("$ make run\n", 1)[1].split("\n```\n", 1)[0]
    shown = block.splitlines()[2:]  # after make's own two lines: what `keybot shell --as you` prints
    # what was typed: after a user's prompt (@you> ) or a modal field's (✎ Key name > ; empty: Enter)
    typed = [match[2] for line in shown if (match := re.match(r"(@\w+|✎ [^>]*?) ?>(?: (.*))?$", line))]
    typed = [answer or "" for answer in typed]
    answer = next(line.rsplit(" ", 1)[1] for line in shown if line.endswith("[Y/n] y"))
    env = _clean_env(KEYBOT_ARGON2_PROFILE="cheapest")
    run = subprocess.run(
        [*KEYBOT, "shell", "--as", "you"],
        input="\n".join([answer, *typed, "/quit"]) + "\n",
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    printed = _normalized(run.stdout)
    assert printed[-2:] == ["@ana> /quit", "Bye."]  # the shell echoes what it reads when not on a terminal
    assert printed[:-2] == _normalized("\n".join(shown))
