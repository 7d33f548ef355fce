"""bot/shell/render.py: Block Kit and mrkdwn as readable text."""

from datetime import UTC, datetime, timedelta, timezone

from bot.shell.render import DIVIDER, button_label, format_date, message_buttons, mrkdwn, render_message
from bot.slack import blocks
from bot.slack.dates import slack_date

NOW = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


def test_dates_say_today_yesterday_and_tomorrow_relative_to_now() -> None:
    template = "{date_short_pretty} at {time}"
    assert format_date(ts(NOW), template, now=NOW, tz=UTC) == "today at 12:00"
    assert format_date(ts(NOW - timedelta(days=1)), template, now=NOW, tz=UTC) == "yesterday at 12:00"
    assert format_date(ts(NOW + timedelta(days=1)), template, now=NOW, tz=UTC) == "tomorrow at 12:00"
    assert format_date(ts(NOW - timedelta(days=30)), template, now=NOW, tz=UTC) == "Feb 4, 2024 at 12:00"


def test_dates_are_shown_in_the_given_local_time_zone() -> None:
    late = datetime(2024, 3, 5, 23, 30, tzinfo=UTC)
    assert format_date(ts(late), "{date_num} {time}", now=NOW, tz=PARIS) == "2024-03-06 00:30"
    assert format_date(ts(late), "{date_short_pretty}", now=NOW, tz=PARIS) == "tomorrow"


def test_every_slack_date_token_is_filled_and_unknown_tokens_are_kept() -> None:
    moment = ts(datetime(2024, 2, 1, 6, 5, 9, tzinfo=UTC))
    text = format_date(moment, "{date}|{date_long}|{date_short}|{time_secs}|{ago}|{nope}", now=NOW, tz=UTC)
    assert text == "February 1st, 2024|Thursday, February 1st, 2024|Feb 1, 2024|06:05:09|33 days ago|{nope}"


def test_keybots_own_date_markup_renders_as_a_local_date_not_its_fallback() -> None:
    text = mrkdwn(f"created {slack_date(NOW - timedelta(hours=2))}", now=NOW, tz=UTC)
    assert text == "created today at 10:00"


def test_a_malformed_date_falls_back_to_its_fallback_text() -> None:
    assert mrkdwn("<!date^99999999999999999999^{date}|some day>", now=NOW, tz=UTC) == "some day"


def test_mentions_show_the_known_name_then_the_label_then_the_id() -> None:
    text = mrkdwn("<@UANA> and <@UBOB|bob> and <@U0123ABC>", names={"UANA": "ana"}, now=NOW, tz=UTC)
    assert text == "@ana and @bob and @U0123ABC"


def test_links_channels_and_special_mentions_read_naturally() -> None:
    text = mrkdwn(
        "<https://x.io/a|docs> <https://x.io> <#C1|general> <!here> <mailto:a@b.c>", now=NOW, tz=UTC
    )
    assert text == "docs (https://x.io/a) https://x.io #general @here a@b.c"


def test_bold_italic_and_strike_lose_their_markers_even_around_code() -> None:
    assert (
        mrkdwn("*Keys in `payments`* — _page 1_ ~old~", now=NOW, tz=UTC) == "Keys in `payments` — page 1 old"
    )


def test_code_keeps_its_backticks_and_its_content_untouched() -> None:
    text = mrkdwn("key ```kb_abc_*x*_<@U1>``` and `a_b_c` done", now=NOW, tz=UTC)
    assert text == "key ```kb_abc_*x*_<@U1>``` and `a_b_c` done"


def test_slack_escapes_are_unescaped_and_known_emoji_are_drawn() -> None:
    assert (
        mrkdwn(":key: a &lt;b&gt; &amp; c :unknown: 12:00:30", now=NOW, tz=UTC)
        == "🔑 a <b> & c :unknown: 12:00:30"
    )


def test_buttons_are_numbered_with_their_style() -> None:
    assert button_label(
        {"type": "button", "text": {"type": "plain_text", "text": "Delete"}, "style": "danger"}, 1
    ) == ("[1] Delete (danger)")
    assert (
        button_label({"type": "button", "text": {"type": "plain_text", "text": "Cancel"}}, 2) == "[2] Cancel"
    )


def _button(label: str) -> dict[str, object]:
    return {"type": "button", "text": {"type": "plain_text", "text": label}, "action_id": label}


def test_buttons_are_listed_and_numbered_in_document_order_from_the_first_number() -> None:
    message = {
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "pick"}, "accessory": _button("A")},
            {"type": "actions", "elements": [_button("B"), _button("C")]},
        ]
    }
    assert [b["action_id"] for b in message_buttons(message)] == ["A", "B", "C"]
    assert render_message(message, first_button=4, now=NOW, tz=UTC) == "pick\n[4] A\n[5] B  [6] C"


def test_sections_fields_context_and_dividers_render_as_lines_of_text() -> None:
    message = {
        "text": "fallback is not shown when there are blocks",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Keys"}},
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": "*Name*"}, {"type": "plain_text", "text": "a*b*"}],
            },
            {"type": "divider"},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "by <@UANA>"}, {"type": "image", "alt_text": "logo"}],
            },
        ],
    }
    text = render_message(message, names={"UANA": "ana"}, now=NOW, tz=UTC)
    assert text == f"KEYS\nName\na*b*\n{DIVIDER}\nby @ana  [image: logo]"


def test_a_message_without_blocks_renders_its_text() -> None:
    assert render_message({"text": ":warning: *No* such key"}, now=NOW, tz=UTC) == "⚠️ No such key"


def test_keybots_help_message_renders_without_any_json_or_markup() -> None:
    text = render_message(blocks.help_message(), now=NOW, tz=UTC)
    assert text.startswith("keybot manages your projects' API keys.\n`/apikeys help [roles]` — this message")
    assert "{" not in text and '"type"' not in text and "*" not in text


def test_every_emoji_keybots_slack_texts_use_has_a_terminal_rendering() -> None:
    import re
    from pathlib import Path

    from bot.shell.render import EMOJI

    sources = Path(__file__).resolve().parents[2].joinpath("bot", "slack").glob("*.py")
    used = {name for path in sources for name in re.findall(r":([a-z_]+):", path.read_text())}
    assert used, "no emoji found: the scan is broken"
    assert sorted(used - EMOJI.keys()) == []
