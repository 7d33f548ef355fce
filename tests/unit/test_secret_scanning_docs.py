"""The regex, checksum snippet and gitleaks rule that SECURITY.md gives secret scanners, run as
written against generated keys and near misses."""

import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.keys import BASE62, KeyFormat

SECURITY = (Path(__file__).resolve().parents[2] / "SECURITY.md").read_text()
SECTION = SECURITY.split("## For secret scanners", 1)[1].split("\n## ", 1)[0]


def _block(language: str) -> str:
    return SECTION.split(f"```{language}\n", 1)[1].split("```", 1)[0]


REGEX = re.compile(_block("regex").strip())
GITLEAKS = re.compile(tomllib.loads(_block("toml"))["rules"][0]["regex"])
_namespace: dict[str, object] = {}
exec(_block("python"), _namespace)  # the documented snippet, exactly as a scanner would copy it
IS_KEYBOT_KEY = _namespace["is_keybot_key"]


@given(st.integers(min_value=0, max_value=50))
def test_every_generated_key_matches_both_patterns_and_passes_the_documented_checksum(_: int) -> None:
    key = KeyFormat().generate().plaintext
    text = f"token={key}\n"
    assert REGEX.findall(text) == [key]
    assert GITLEAKS.findall(text) == [key]
    assert IS_KEYBOT_KEY(key) is True  # type: ignore[operator]


@given(st.integers(min_value=3, max_value=40), st.sampled_from(BASE62))
def test_one_changed_character_fails_the_documented_checksum(position: int, replacement: str) -> None:
    key = KeyFormat().generate().plaintext
    if key[position] == replacement or key[position] == "_":
        return
    changed = key[:position] + replacement + key[position + 1 :]
    assert IS_KEYBOT_KEY(changed) is False  # type: ignore[operator]


@pytest.mark.parametrize(
    "near_miss",
    [
        "kb_ABCDEFGHIJ_" + "a" * 27,  # one character short
        "kb_ABCDEFGHI_" + "a" * 28,  # a key id one short
        "kx_ABCDEFGHIJ_" + "a" * 28,  # another prefix
        "xkb_ABCDEFGHIJ_" + "a" * 28,  # glued to a word
        "kb_ABCDEFGHIJ_" + "a" * 27 + "-",  # not base62
        "kb_ABCDEFGHIJ\n_" + "a" * 28,  # split across lines
    ],
)
def test_near_misses_do_not_match(near_miss: str) -> None:
    assert REGEX.search(near_miss) is None or REGEX.search(near_miss).group(0) != near_miss  # type: ignore[union-attr]
    assert not GITLEAKS.fullmatch(near_miss)


def test_a_random_string_of_the_right_shape_is_almost_never_a_key() -> None:
    shaped = "kb_ABCDEFGHIJ_" + "a" * 28
    assert REGEX.fullmatch(shaped) and not IS_KEYBOT_KEY(shaped)  # type: ignore[operator]
