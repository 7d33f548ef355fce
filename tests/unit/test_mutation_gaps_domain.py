"""Domain rules that mutation testing (``make mutate``) showed no test held: how a typed word is echoed
back, the texts of the refusals, the key format's refusals of near-valid keys, and the argon2 lanes'
threads, priority, names and shutdown."""

import asyncio
import os
import threading
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.durations import format_span, parse_duration, parse_when
from bot.domain.errors import Busy, InvalidInput
from bot.domain.hashing import RETRY_AFTER_SECONDS, Hasher, HashParams
from bot.domain.keys import BASE62, KeyFormat, checksum
from bot.domain.lifecycle import (
    LeakAction,
    Policy,
    PolicyField,
    clean_note,
    grace_period,
    policy_field_named,
    policy_text,
    policy_value,
)
from bot.domain.names import shown, validate_name, validate_org_name
from bot.domain.notices import Notice, NoticeKind
from bot.domain.roles import org_role_named

# --- shown(): a typed word made safe to echo ----------------------------------------------------------


def test_a_word_of_forty_characters_is_echoed_whole() -> None:
    assert shown("a" * 40) == "a" * 40


def test_a_longer_word_is_cut_to_forty_characters_and_an_ellipsis() -> None:
    assert shown("a" * 41) == "a" * 40 + "…"
    assert shown("b" * 500) == "b" * 40 + "…"
    assert shown("c" * 12, limit=10) == "c" * 10 + "…"


def test_control_characters_are_echoed_as_question_marks() -> None:
    assert shown("a\x00b\nc\u202ed\x1b") == "a?b?c?d?"


def test_mention_brackets_and_backticks_cannot_close_or_open_markup() -> None:
    assert shown("<@U123>") == "‹@U123›"
    assert shown("<!channel>") == "‹!channel›"
    assert shown("`code`") == "'code'"


def test_an_organization_name_refusal_says_what_a_name_may_be() -> None:
    with pytest.raises(InvalidInput) as err:
        validate_org_name("   ")
    assert str(err.value) == "`   ` is not a valid organization name. Use 1–64 printable characters."


def test_a_name_refusal_names_the_kind_and_every_rule() -> None:
    with pytest.raises(InvalidInput) as err:
        validate_name("-web", kind="key")
    assert str(err.value) == (
        "`-web` is not a valid key name. Use 1–64 ASCII letters (a–z, A–Z), digits, `-`, `_` or `.`, "
        "starting with a letter or digit."
    )


def test_an_unknown_org_role_says_how_to_grant_a_project_role_instead() -> None:
    with pytest.raises(InvalidInput) as err:
        org_role_named("admin")
    assert str(err.value) == (
        "`admin` is not an organization role. Organization roles: `owner`, `billing-admin`, `member`. "
        "To grant a project role, add the project: `/apikeys grant @user <role> <project>`."
    )


# --- durations and moments -------------------------------------------------------------------------------


def test_a_wrong_duration_says_what_a_duration_is() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_duration("soon")
    assert str(err.value) == "`soon` is not a duration. Use a number of hours, days or weeks, like `12h`, `30d` or `2w`."


def test_where_zero_is_allowed_a_wrong_duration_says_so() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_duration("soon", allow_zero=True)
    assert str(err.value).endswith("like `12h`, `30d` or `2w`, or `0`.")


def test_a_date_whose_last_second_is_now_is_in_the_past() -> None:
    now = datetime(2027, 3, 1, 23, 59, 59, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="is in the past"):
        parse_when("2027-03-01", now=now)
    assert parse_when("2027-03-02", now=now) == datetime(2027, 3, 2, 23, 59, 59, tzinfo=UTC)


# --- errors and notices -------------------------------------------------------------------------------------


def test_busy_asks_for_a_retry_after_one_second_unless_told_otherwise() -> None:
    assert Busy("busy").retry_after == 1


def test_an_error_does_not_end_its_prompt_unless_told_to() -> None:
    assert InvalidInput("no").final is False
    assert InvalidInput("no", final=True).final is True


def test_a_notice_is_stored_as_compact_json() -> None:
    notice = Notice(
        kind=NoticeKind.KEY_CREATED, recipient="U1", team_id="T1", actor="U2",
        at=datetime(2025, 1, 1, tzinfo=UTC), project="payments", key_name="ci",
    )
    text = notice.to_json()
    assert '", "' not in text and '": ' not in text
    assert text.startswith('{"kind":"key created","recipient":"U1",')
    assert Notice.from_json(text) == notice


# --- the key format: near-valid keys ----------------------------------------------------------------------

FMT = KeyFormat()
VALID = (lambda body: body + checksum(body))("kb_7Hq2Lm9xAb_" + "S3cr3tS3cr3tS3cr3tS3cr")


def with_char(position: int, char: str) -> str:
    """``VALID`` with one character of its body changed and its checksum made right again."""
    body = VALID[: -6]
    changed = body[:position] + char + body[position + 1 :]
    return changed + checksum(changed)


def test_the_near_valid_keys_start_from_a_valid_key() -> None:
    assert FMT.parse(VALID).key_id == "7Hq2Lm9xAb"


@pytest.mark.parametrize("position", [2, 13])
@pytest.mark.parametrize("char", ["-", "A", "0", "z", ".", " "])
def test_a_key_with_a_wrong_separator_and_a_right_checksum_is_malformed(position: int, char: str) -> None:
    with pytest.raises(InvalidInput) as err:
        FMT.parse(with_char(position, char))
    assert str(err.value) == "malformed key"


@pytest.mark.parametrize("position", range(3, 13))
@pytest.mark.parametrize("char", ["-", "_", "é", "+", "/"])
def test_a_key_id_with_a_character_outside_base62_and_a_right_checksum_is_malformed(
    position: int, char: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        FMT.parse(with_char(position, char))
    assert str(err.value) == "malformed key"


@pytest.mark.parametrize("position", range(14, 36))
@pytest.mark.parametrize("char", ["-", "_", "é", "="])
def test_a_secret_with_a_character_outside_base62_and_a_right_checksum_is_malformed(
    position: int, char: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        FMT.parse(with_char(position, char))
    assert str(err.value) == "malformed key"


@pytest.mark.parametrize("position", [0, 1])
def test_a_key_with_another_prefix_and_a_right_checksum_is_malformed(position: int) -> None:
    with pytest.raises(InvalidInput) as err:
        FMT.parse(with_char(position, "x"))
    assert str(err.value) == "malformed key"


@pytest.mark.parametrize("position", [3, 12, 14, 35])
def test_a_base62_change_with_a_right_checksum_is_another_valid_key(position: int) -> None:
    char = "0" if VALID[position] != "0" else "1"
    key = with_char(position, char)
    assert FMT.parse(key).key_id == key[3:13]


def test_every_refusal_says_only_malformed_key() -> None:
    for text in ("", VALID[:-1], VALID[:-1] + ("A" if VALID[-1] != "A" else "B"), "sk" + VALID[2:]):
        with pytest.raises(InvalidInput) as err:
            FMT.parse(text)
        assert str(err.value) == "malformed key"


def test_an_invalid_prefix_is_refused_with_what_a_prefix_may_be() -> None:
    with pytest.raises(ValueError) as err:
        KeyFormat("Kb")
    assert str(err.value) == "key prefix must be 1–16 lowercase letters or digits, starting with a letter"


def test_base62_digits_are_in_order() -> None:
    assert BASE62 == "0123456789" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnopqrstuvwxyz"


# --- argon2 lanes ------------------------------------------------------------------------------------------


def test_the_cheapest_profile_is_t1_m8_p1() -> None:
    assert HashParams.cheapest() == HashParams(time_cost=1, memory_kib=8, parallelism=1)


def test_a_hasher_keeps_the_parameters_it_hashes_with() -> None:
    cheap = Hasher(HashParams.cheapest())
    default = Hasher()
    try:
        assert cheap.params == HashParams.cheapest()
        assert default.params == HashParams()
        assert "$m=8,t=1,p=1$" in cheap.hash_sync("x")
    finally:
        cheap.close()
        default.close()


class WhereHasher(Hasher):
    """A lane whose "hash" reports the thread it ran on; each waits until ``gate`` opens."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(HashParams.cheapest(), **kwargs)  # type: ignore[arg-type]
        self.gate = threading.Event()
        self.finished = threading.Event()

    def hash_sync(self, plaintext: str) -> str:
        self.gate.wait(timeout=10)
        self.finished.set()
        me = threading.current_thread()
        return f"{me.ident}|{me.name}|{os.getpriority(os.PRIO_PROCESS, threading.get_native_id())}"


async def run_in_lane(hasher: WhereHasher, jobs: int) -> list[list[str]]:
    tasks = [asyncio.create_task(hasher.hash("x")) for _ in range(jobs)]
    async with asyncio.timeout(10):
        while hasher.pending < jobs:
            await asyncio.sleep(0)
    hasher.gate.set()
    return [result.split("|") for result in await asyncio.gather(*tasks)]


@pytest.mark.parametrize("threads", [1, 3])
async def test_a_lane_runs_on_exactly_the_threads_it_was_given(threads: int) -> None:
    hasher = WhereHasher(threads=threads)
    try:
        results = await run_in_lane(hasher, 8)
        assert len({ident for ident, _, _ in results}) == threads
    finally:
        hasher.close()


async def test_a_lane_runs_one_thread_per_core_by_default() -> None:
    hasher = WhereHasher()
    try:
        results = await run_in_lane(hasher, (os.cpu_count() or 2) + 4)
        assert len({ident for ident, _, _ in results}) == (os.cpu_count() or 2)
    finally:
        hasher.close()


async def test_lane_threads_are_named_after_the_lane_and_run_at_nice_10() -> None:
    default, named = WhereHasher(threads=1), WhereHasher(threads=1, name="verify")
    try:
        [[_, name, nice]] = await run_in_lane(default, 1)
        [[_, other, _]] = await run_in_lane(named, 1)
    finally:
        default.close()
        named.close()
    assert name.startswith("argon2_")
    assert other.startswith("verify_")
    assert int(nice) == 10


async def test_a_full_lane_says_so_and_asks_for_a_retry_in_a_second() -> None:
    hasher = WhereHasher(threads=1, max_pending=1)
    first = asyncio.create_task(hasher.hash("x"))
    try:
        async with asyncio.timeout(10):
            while hasher.pending < 1:
                await asyncio.sleep(0)
        with pytest.raises(Busy) as err:
            await hasher.hash("y")
        assert str(err.value) == (
            "keybot is busy hashing other keys right now, so nothing changed. Try again in a moment."
        )
        assert err.value.retry_after == RETRY_AFTER_SECONDS == 1
    finally:
        hasher.gate.set()
        await first
        hasher.close()


async def test_closing_a_lane_does_not_wait_for_the_hash_it_is_running() -> None:
    hasher = WhereHasher(threads=1)
    running = asyncio.create_task(hasher.hash("x"))
    async with asyncio.timeout(10):
        while hasher.pending < 1:
            await asyncio.sleep(0)
    hasher.close()
    assert not hasher.finished.is_set()  # close() returned while argon2 was still running
    hasher.gate.set()
    await running


def test_a_lane_without_room_is_refused_with_what_it_needs() -> None:
    with pytest.raises(ValueError) as err:
        Hasher(HashParams.cheapest(), max_pending=0)
    assert str(err.value) == "max_pending must be at least 1"


# --- durations and the key lifecycle's texts ----------------------------------------------------------------


def test_ten_years_is_the_longest_duration_accepted() -> None:
    assert parse_duration("3650d") == timedelta(days=3650)
    with pytest.raises(InvalidInput, match="too long"):
        parse_duration("3651d")


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(days=1), "1 day"),
        (timedelta(days=2, hours=5), "2 days"),
        (timedelta(hours=23, minutes=59, seconds=59), "23 hours"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(seconds=59), "less than a minute"),
    ],
)
def test_a_span_is_said_in_its_largest_whole_unit(span: timedelta, text: str) -> None:
    assert format_span(span) == text


def test_a_policy_field_refuses_a_value_of_the_wrong_kind_with_what_it_takes() -> None:
    policy = Policy()
    with pytest.raises(InvalidInput) as err:
        policy.with_field(PolicyField.MAX_LIFETIME, LeakAction.ALERT)
    assert str(err.value) == "This field takes a duration, like `90d`, or `none`."
    with pytest.raises(InvalidInput) as err:
        policy.with_field(PolicyField.STALE_AFTER, None)
    assert str(err.value) == "`stale-after` needs a duration, like `90d`."
    with pytest.raises(InvalidInput) as err:
        policy.with_field(PolicyField.LEAK_ACTION, timedelta(days=1))
    assert str(err.value) == "`leak-action` is `disable` or `alert`."


def test_stale_after_and_leak_action_change_only_themselves() -> None:
    policy = Policy(max_lifetime=timedelta(days=90))
    assert policy.with_field(PolicyField.STALE_AFTER, timedelta(days=30)) == Policy(
        max_lifetime=timedelta(days=90), stale_after=timedelta(days=30)
    )
    assert policy.with_field(PolicyField.LEAK_ACTION, LeakAction.ALERT) == Policy(
        max_lifetime=timedelta(days=90), leak_action=LeakAction.ALERT
    )


def test_a_default_lifetime_equal_to_the_maximum_is_allowed() -> None:
    policy = Policy(max_lifetime=timedelta(days=30)).with_field(PolicyField.DEFAULT_LIFETIME, timedelta(days=30))
    assert policy.default_lifetime == policy.max_lifetime == timedelta(days=30)


def test_every_policy_setting_reads_back_its_own_value() -> None:
    policy = Policy(
        max_lifetime=timedelta(days=90), default_lifetime=timedelta(days=30), stale_after=timedelta(weeks=2),
        leak_action=LeakAction.ALERT, requests=False,
    )
    assert [policy_text(policy, f) for f in PolicyField] == ["90d", "30d", "2w", "alert", "off"]


def test_the_lifecycle_refusals_say_exactly_what_to_type() -> None:
    cases = [
        (lambda: policy_field_named("lifetime"),
         "`lifetime` is not a policy setting. Settings: `max-lifetime`, `default-lifetime`, "
         "`stale-after`, `leak-action`, `requests`. Example: `/apikeys policy max-lifetime 90d`."),
        (lambda: policy_value(PolicyField.LEAK_ACTION, "shout"),
         "`shout` is not a leak action. Use `disable` (switch a leaked key off) or `alert` "
         "(only tell its owners). Example: `/apikeys policy leak-action alert`."),
        (lambda: policy_value(PolicyField.STALE_AFTER, "none"),
         "`stale-after` needs a duration: a number of hours, days or weeks, like `12h`, `30d` or `2w`. "
         "Example: `/apikeys policy stale-after 90d`."),
        (lambda: clean_note("  \n "), "A note needs some text, like `note deploys the web app`."),
        (lambda: grace_period(timedelta(days=8)),
         "A grace period is at most 7 days (`7d`); use `0` to retire the old secret at once."),
    ]
    for call, text in cases:
        with pytest.raises(InvalidInput) as err:
            call()
        assert str(err.value) == text
