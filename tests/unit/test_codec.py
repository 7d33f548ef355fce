"""The codec of interactive elements (bot/slack/codec.py): button values come back as untrusted input."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.errors import InvalidInput
from bot.slack.codec import (
    MAX_ROW_ID,
    STALE,
    ActionId,
    KeyChoice,
    MenuChoice,
    PageCursor,
    action_id_named,
    decode_choice,
    decode_page,
    encode_choice,
    encode_page,
)

projects = st.text(st.characters(blacklist_characters="|"), max_size=80)
cursors = st.builds(
    PageCursor,
    project=projects,
    row_id=st.integers(min_value=0, max_value=MAX_ROW_ID),
    page=st.integers(min_value=1, max_value=999_999),
)


@given(cursors)
def test_a_page_cursor_round_trips(cursor: PageCursor) -> None:
    assert decode_page(encode_page(cursor)) == cursor


@given(st.text(max_size=40))
def test_any_value_decodes_to_a_sane_cursor_or_is_stale(value: str) -> None:
    try:
        cursor = decode_page(value)
    except InvalidInput as err:
        assert str(err) == STALE
        return
    assert 0 <= cursor.row_id <= MAX_ROW_ID
    assert cursor.page >= 1
    assert "|" not in cursor.project


def test_the_largest_row_id_is_accepted() -> None:
    assert decode_page(f"p|{MAX_ROW_ID}|3") == PageCursor("p", MAX_ROW_ID, 3)


def test_page_zero_reads_as_page_one() -> None:
    assert decode_page("p|5|0").page == 1


@pytest.mark.parametrize(
    "value",
    [
        "p|١٢|1",  # Arabic-Indic digits: str.isdigit() says yes
        "p|²|1",  # superscript two: isdigit() yes, int() no
        "p|１２|1",  # fullwidth digits
        "p|12|³",
        "p|12|١",
    ],
)
def test_non_ascii_digits_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput, match=STALE):
        decode_page(value)


@pytest.mark.parametrize(
    "value", [f"p|{MAX_ROW_ID + 1}|1", f"p|{2**32}|1", "p|9999999999|1", f"p|{2**63}|1", "p|12345678901|1"]
)
def test_row_ids_that_do_not_fit_an_integer_column_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput, match=STALE):
        decode_page(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "p",
        "p|12",
        "p|12|",
        "p||1",
        "|",
        "||",
        "p|12|1|extra",
        "p|-1|1",
        "p|+1|1",
        "p| 1|1",
        "p|1|1234567",
    ],
)
def test_missing_or_extra_fields_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput, match=STALE):
        decode_page(value)


@pytest.mark.parametrize("action", list(ActionId))
def test_every_action_id_is_known(action: ActionId) -> None:
    assert action_id_named(action.value) is action


@pytest.mark.parametrize("raw", ["", "delete", "DELETE_CONFIRM", "delete_confirm ", "keys_older\n", "ü"])
def test_an_unknown_action_id_is_invalid_input(raw: str) -> None:
    with pytest.raises(InvalidInput, match=STALE):
        action_id_named(raw)


@given(
    st.sampled_from(list(MenuChoice)),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", fullmatch=True),
    st.none() | st.integers(min_value=1, max_value=10**12 - 1),
)
def test_a_key_choice_round_trips_with_or_without_the_moment_a_dm_pins(
    choice: MenuChoice, project: str, key: str, made_by: int | None
) -> None:
    value = KeyChoice(choice, project, key, made_by=made_by)
    assert decode_choice(encode_choice(value)) == value


@pytest.mark.parametrize("value", ["roll|p|k|", "roll|p|k|0", "roll|p|k|-1", "roll|p|k|1e9", "roll|p|k|1234567890123", "roll|p|k|1|2"])
def test_a_pinned_key_choice_that_the_encoder_could_not_write_is_stale(value: str) -> None:
    with pytest.raises(InvalidInput, match=STALE):
        decode_choice(value)
