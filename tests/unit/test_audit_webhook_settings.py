"""KEYBOT_AUDIT_WEBHOOK_URL and _SECRET: both or neither, an http(s) URL, a secret nobody guesses; the
errors and the settings' repr never show either value; and the signature receivers check."""

import hashlib
import hmac

import pytest

from bot.audit_webhook import Verdict, signature, verdict
from bot.settings import SettingsError, load_settings

URL = "https://siem.example.com/hooks/keybot?token=receiver-token"
SECRET = "0123456789abcdef" * 4


def test_the_url_and_a_long_enough_secret_switch_the_webhook_on_and_repr_shows_neither() -> None:
    settings = load_settings({"KEYBOT_AUDIT_WEBHOOK_URL": URL, "KEYBOT_AUDIT_WEBHOOK_SECRET": SECRET})
    assert (settings.audit_webhook_url, settings.audit_webhook_secret) == (URL, SECRET)
    assert "receiver-token" not in repr(settings) and SECRET not in repr(settings)


def test_without_either_setting_there_is_no_webhook() -> None:
    settings = load_settings({})
    assert (settings.audit_webhook_url, settings.audit_webhook_secret) == (None, None)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"KEYBOT_AUDIT_WEBHOOK_URL": URL}, "KEYBOT_AUDIT_WEBHOOK_SECRET must be set"),
        ({"KEYBOT_AUDIT_WEBHOOK_URL": URL, "KEYBOT_AUDIT_WEBHOOK_SECRET": "short-secret"}, "at least 32"),
        ({"KEYBOT_AUDIT_WEBHOOK_SECRET": SECRET}, "KEYBOT_AUDIT_WEBHOOK_URL is not"),
        ({"KEYBOT_AUDIT_WEBHOOK_URL": "ftp://x/receiver-token", "KEYBOT_AUDIT_WEBHOOK_SECRET": SECRET}, "http(s)"),
    ],
    ids=["no secret", "short secret", "no url", "not http"],
)
def test_a_half_or_malformed_webhook_setting_is_one_line_that_repeats_neither_value(
    env: dict[str, str], says: str
) -> None:
    with pytest.raises(SettingsError, match=r".*") as raised:
        load_settings(env)
    message = str(raised.value)
    assert says in message and "\n" not in message
    assert "receiver-token" not in message and SECRET not in message and "short-secret" not in message


def test_the_signature_is_hmac_sha256_of_the_timestamp_a_dot_and_the_body() -> None:
    body = b'{"id":7}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(SECRET, timestamp=1700000000, body=body) == f"sha256={expected}"
    assert signature(SECRET, timestamp=1700000001, body=body) != f"sha256={expected}"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Verdict.SENT), (204, Verdict.SENT), (301, Verdict.RETRY), (408, Verdict.RETRY),
        (425, Verdict.RETRY), (429, Verdict.RETRY), (500, Verdict.RETRY), (503, Verdict.RETRY),
        (400, Verdict.DEAD), (401, Verdict.DEAD), (404, Verdict.DEAD), (413, Verdict.DEAD),
    ],
)
def test_a_receivers_status_decides_whether_a_delivery_is_done_retried_or_dead(status: int, outcome: Verdict) -> None:
    assert verdict(status) is outcome
