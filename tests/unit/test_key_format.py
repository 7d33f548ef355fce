"""The key format of DESIGN.md §1: `<prefix>_<key id>_<secret><checksum>`, CRC32-checked, masked."""

import math
import re
import zlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.domain.errors import InvalidInput
from bot.domain.keys import KeyFormat, NewKey, ParsedKey
from bot.services.results import CreatedKey

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
OTHERS = "_-. +/=:\t\n\x00é…ßΩ"
KEY_CHARS = re.compile(r"[A-Za-z0-9_]+")
CHECKSUM_LEN = 6

prefixes = st.from_regex(r"\A[a-z][a-z0-9]{0,15}\Z")
key_ids = st.text(alphabet=ALPHABET, min_size=10, max_size=10)
secrets_ = st.text(alphabet=ALPHABET, min_size=22, max_size=22)
any_char = st.sampled_from(ALPHABET + OTHERS)


def crc_base62(body: str) -> str:
    """CRC32 as 6 base62 digits, most significant first (written here independently of bot/)."""
    n = zlib.crc32(body.encode())
    digits = ""
    for _ in range(CHECKSUM_LEN):
        n, d = divmod(n, 62)
        digits = ALPHABET[d] + digits
    return digits


def make_key(prefix: str, key_id: str, secret: str) -> str:
    body = f"{prefix}_{key_id}_{secret}"
    return body + crc_base62(body)


def secret_part(fmt: KeyFormat, plaintext: str) -> str:
    """Everything after `<prefix>_<key id>_`: the secret and its checksum."""
    _, key_id, rest = plaintext.split("_", 2)
    assert plaintext == f"{fmt.prefix}_{key_id}_{rest}"
    return rest


@st.composite
def valid_keys(draw: st.DrawFn) -> tuple[KeyFormat, str]:
    prefix = draw(prefixes)
    return KeyFormat(prefix), make_key(prefix, draw(key_ids), draw(secrets_))


@given(prefixes)
def test_a_generated_key_parses_back_to_its_key_id(prefix: str) -> None:
    fmt = KeyFormat(prefix)
    new = fmt.generate()
    parsed = fmt.parse(new.plaintext)
    assert parsed == ParsedKey(key_id=new.key_id, plaintext=new.plaintext)
    assert new.plaintext.startswith(f"{prefix}_{new.key_id}_")


@given(valid_keys())
def test_a_key_built_from_the_spec_parses(case: tuple[KeyFormat, str]) -> None:
    fmt, key = case
    assert fmt.parse(key).key_id == key.split("_")[1]


@given(prefixes)
def test_a_generated_key_ends_with_the_crc32_of_everything_before_it(prefix: str) -> None:
    key = KeyFormat(prefix).generate().plaintext
    assert key[-CHECKSUM_LEN:] == crc_base62(key[:-CHECKSUM_LEN])


@given(valid_keys(), st.data())
def test_substituting_any_single_character_is_rejected(
    case: tuple[KeyFormat, str], data: st.DataObject
) -> None:
    fmt, key = case
    i = data.draw(st.integers(0, len(key) - 1))
    c = data.draw(any_char)
    assume(c != key[i])
    with pytest.raises(InvalidInput):
        fmt.parse(key[:i] + c + key[i + 1 :])


@settings(max_examples=20, deadline=None)
@given(valid_keys())
def test_every_substitution_at_every_position_is_rejected(case: tuple[KeyFormat, str]) -> None:
    fmt, key = case
    for i, original in enumerate(key):
        for c in ALPHABET + OTHERS:
            if c != original:
                with pytest.raises(InvalidInput):
                    fmt.parse(key[:i] + c + key[i + 1 :])


@given(valid_keys(), st.data())
def test_deleting_any_single_character_is_rejected(case: tuple[KeyFormat, str], data: st.DataObject) -> None:
    fmt, key = case
    i = data.draw(st.integers(0, len(key) - 1))
    with pytest.raises(InvalidInput):
        fmt.parse(key[:i] + key[i + 1 :])


@given(valid_keys(), st.data())
def test_inserting_any_single_character_is_rejected(case: tuple[KeyFormat, str], data: st.DataObject) -> None:
    fmt, key = case
    i = data.draw(st.integers(0, len(key)))
    with pytest.raises(InvalidInput):
        fmt.parse(key[:i] + data.draw(any_char) + key[i:])


@given(valid_keys(), st.data())
def test_swapping_two_adjacent_different_characters_is_rejected(
    case: tuple[KeyFormat, str], data: st.DataObject
) -> None:
    fmt, key = case
    i = data.draw(st.integers(0, len(key) - 2))
    assume(key[i] != key[i + 1])
    with pytest.raises(InvalidInput):
        fmt.parse(key[:i] + key[i + 1] + key[i] + key[i + 2 :])


@given(valid_keys(), st.data())
def test_a_truncated_key_is_rejected(case: tuple[KeyFormat, str], data: st.DataObject) -> None:
    fmt, key = case
    n = data.draw(st.integers(0, len(key) - 1))
    with pytest.raises(InvalidInput):
        fmt.parse(key[:n])
    with pytest.raises(InvalidInput):
        fmt.parse(key[len(key) - n :])


@given(valid_keys())
def test_surrounding_whitespace_is_not_part_of_a_key(case: tuple[KeyFormat, str]) -> None:
    fmt, key = case
    for text in (f" {key}", f"{key}\n", f"{key}{key}"):
        with pytest.raises(InvalidInput):
            fmt.parse(text)


@st.composite
def near_valid_keys(draw: st.DrawFn) -> str:
    """A valid ``kb`` key with one character of its prefix, a separator, its key id or its secret
    changed (to anything), and its checksum made right again: only the CRC cannot refuse it."""
    body = f"kb_{draw(key_ids)}_{draw(secrets_)}"
    start, end = draw(st.sampled_from([(0, 1), (2, 2), (3, 12), (13, 13), (14, 35)]))  # each part alike
    i = draw(st.integers(start, end))
    changed = body[:i] + draw(any_char) + body[i + 1 :]
    return changed + crc_base62(changed)


SPEC = re.compile(r"kb_([0-9A-Za-z]{10})_[0-9A-Za-z]{22}[0-9A-Za-z]{6}")


@given(st.one_of(st.text(max_size=80), near_valid_keys()))
def test_parsing_arbitrary_text_raises_only_invalid_input(text: str) -> None:
    """Parsing accepts exactly what the spec describes (checked here independently of bot/) and
    refuses everything else with InvalidInput alone."""
    spec = SPEC.fullmatch(text)
    valid = spec is not None and text[-CHECKSUM_LEN:] == crc_base62(text[:-CHECKSUM_LEN])
    try:
        parsed = KeyFormat().parse(text)
    except InvalidInput:
        assert not valid
        return
    assert valid and spec is not None
    assert parsed == ParsedKey(key_id=spec[1], plaintext=text)


def test_the_rejection_message_does_not_repeat_the_key() -> None:
    fmt = KeyFormat()
    key = fmt.generate().plaintext
    broken = key[:-1] + ("A" if key[-1] != "A" else "B")
    with pytest.raises(InvalidInput) as err:
        fmt.parse(broken)
    assert secret_part(fmt, key)[:22] not in str(err.value)
    assert secret_part(fmt, key)[:22] not in repr(err.value)


def test_a_key_with_another_prefix_is_rejected() -> None:
    key = KeyFormat("sk").generate().plaintext
    with pytest.raises(InvalidInput):
        KeyFormat("kb").parse(key)
    assert KeyFormat("sk").parse(key).plaintext == key


@given(prefixes)
def test_keys_use_only_letters_digits_and_underscores(prefix: str) -> None:
    key = KeyFormat(prefix).generate().plaintext
    assert KEY_CHARS.fullmatch(key)


@given(prefixes)
def test_the_key_id_has_at_least_8_base62_characters(prefix: str) -> None:
    new = KeyFormat(prefix).generate()
    assert len(new.key_id) >= 8
    assert set(new.key_id) <= set(ALPHABET)


@given(prefixes)
def test_the_secret_carries_at_least_128_bits(prefix: str) -> None:
    fmt = KeyFormat(prefix)
    secret = secret_part(fmt, fmt.generate().plaintext)[:-CHECKSUM_LEN]
    assert set(secret) <= set(ALPHABET)
    assert len(secret) >= 22
    assert len(secret) * math.log2(len(ALPHABET)) >= 128


def test_secrets_are_random_over_the_whole_base62_alphabet() -> None:
    fmt = KeyFormat()
    keys = [fmt.generate() for _ in range(500)]
    secrets = [secret_part(fmt, k.plaintext)[:-CHECKSUM_LEN] for k in keys]
    assert len(set(secrets)) == len(secrets)
    assert len({k.key_id for k in keys}) == len(keys)
    assert set("".join(secrets)) == set(ALPHABET)
    for position in range(22):
        assert len({s[position] for s in secrets}) > 40  # 500 draws from 62 symbols: ~62 seen


@given(valid_keys())
def test_the_masked_form_shows_the_key_id_and_at_most_8_characters_of_the_secret(
    case: tuple[KeyFormat, str],
) -> None:
    fmt, key = case
    key_id = key.split("_")[1]
    masked = fmt.mask(key)
    head = f"{fmt.prefix}_{key_id}_"
    assert masked.startswith(head)
    shown = masked.removeprefix(head).replace("…", "")
    assert len(shown) <= 8
    assert key.endswith(shown)
    assert secret_part(fmt, key)[:-CHECKSUM_LEN] not in masked


@given(prefixes)
def test_a_new_key_carries_its_masked_form(prefix: str) -> None:
    fmt = KeyFormat(prefix)
    new = fmt.generate()
    assert new.masked == fmt.mask(new.plaintext)
    assert new.masked == fmt.masked_from(key_id=new.key_id, tail=new.plaintext[-4:])
    assert "…" in new.masked


def test_no_repr_or_str_of_a_key_object_contains_the_plaintext() -> None:
    fmt = KeyFormat()
    new = fmt.generate()
    secret = secret_part(fmt, new.plaintext)[:-CHECKSUM_LEN]
    objects: list[object] = [
        new,
        fmt.parse(new.plaintext),
        CreatedKey(project="payments", name="ci", masked=new.masked, plaintext=new.plaintext),
    ]
    for obj in objects:
        for text in (repr(obj), str(obj), f"{obj!r}", f"{obj}"):
            assert new.plaintext not in text
            assert secret not in text


def test_key_objects_still_hold_the_plaintext_for_the_one_reply() -> None:
    new = KeyFormat().generate()
    assert isinstance(new, NewKey)
    assert KeyFormat().parse(new.plaintext).plaintext == new.plaintext


@given(prefixes)
def test_every_valid_prefix_is_accepted(prefix: str) -> None:
    assert KeyFormat(prefix).length == len(KeyFormat(prefix).generate().plaintext)


@pytest.mark.parametrize(
    "prefix", ["", "KB", "Kb", "1kb", "_kb", "k_b", "k-b", "kb_", "kb ", "k" * 17, "ké", "kb\n"]
)
def test_an_invalid_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError):
        KeyFormat(prefix)


def test_the_default_prefix_is_kb() -> None:
    assert KeyFormat().generate().plaintext.startswith("kb_")


def test_text_holding_a_key_is_refused_and_near_misses_or_other_prefixes_pass() -> None:
    fmt = KeyFormat()
    key = fmt.generate().plaintext
    assert fmt.holds_key(f"deploys with {key} on friday") and fmt.holds_key(f"`{key}`")
    bad_checksum = key[:-1] + ("A" if key[-1] != "A" else "B")
    for text in ("deploys the web app", bad_checksum, key[:-3], KeyFormat(prefix="zz").generate().plaintext):
        assert not fmt.holds_key(text)
        assert fmt.refuse_key_in(text, what="A note") == text
    with pytest.raises(InvalidInput, match="A reason cannot hold an API key") as err:
        fmt.refuse_key_in(f"please {key}", what="A reason")
    assert key not in str(err.value)
