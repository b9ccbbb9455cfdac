"""Outside text in Slack mrkdwn: shown as written, never a broadcast, mention or forged link."""

from __future__ import annotations

import pytest

from bot.slack.mrkdwn import ZERO_WIDTH_JOINER, escape, link, safe_url, truncate


@pytest.mark.parametrize("hostile", ["<!channel>", "<!here>", "<!everyone>", "<@U123ABC>", "<#C0GENERAL>",
                                     "<!subteam^S0ONCALL>", "<https://evil.example|https://bank.example>"])
def test_control_sequences_become_literal_text(hostile: str) -> None:
    out = escape(f"log line: {hostile} please")
    assert "<" not in out
    assert ">" not in out
    assert out == "log line: " + hostile.replace("<", "&lt;").replace(">", "&gt;") + " please"


def test_ampersands_are_escaped_first_so_entities_are_not_doubled_wrongly() -> None:
    assert escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert escape("&lt;!here&gt;") == "&amp;lt;!here&amp;gt;", "pre-escaped text stays literal too"


@pytest.mark.parametrize("bare", ["@channel", "@here", "@everyone", "@HERE"])
def test_bare_broadcast_words_are_broken(bare: str) -> None:
    out = escape(f"ping {bare} now")
    assert bare not in out
    assert out == f"ping @{ZERO_WIDTH_JOINER}{bare[1:]} now"
    assert escape("mail ops@heresy.example") == "mail ops@heresy.example", "only whole words are touched"


def test_control_characters_are_dropped() -> None:
    assert escape("a\x00b\x1bc\nd") == "abc\nd"


def test_link_escapes_its_label_and_keeps_the_url() -> None:
    assert link("https://github.com/acme/checkout/pull/812", "Fix <!channel> | retry") == \
        "<https://github.com/acme/checkout/pull/812|Fix &lt;!channel&gt; ¦ retry>"
    assert link("https://x.example/search?a=1&b=2", "q") == "<https://x.example/search?a=1&amp;b=2|q>"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://files.example/x", "/relative/path", "",
                                 None, "https://", "slack://channel?id=C1"])
def test_link_refuses_anything_but_absolute_http(url: str | None) -> None:
    assert link(url, "Runbook <b>") == "Runbook &lt;b&gt;"
    assert safe_url(url) is None


def test_link_cannot_be_broken_out_of() -> None:
    out = link("https://evil.example/a>|<!channel>", "x")
    assert out.count("<") == 1
    assert out.count(">") == 1
    assert out.count("|") == 1
    assert "<!channel>" not in out


def test_truncate_keeps_entities_and_links_whole() -> None:
    text = "a" * 10 + "&amp;" + "b" * 20
    cut = truncate(text, 13)
    assert cut == "a" * 10 + "…"
    linked = "x" * 5 + "<https://example.com/long|label>" + "y" * 20
    assert truncate(linked, 20) == "x" * 5 + "…"
    assert truncate("short", 10) == "short"


def test_truncate_adds_a_more_link_within_the_limit() -> None:
    out = truncate("word " * 1000, 3000, more_url="https://wiki.example/runbook")
    assert len(out) <= 3000
    assert out.endswith("… <https://wiki.example/runbook|more>")
    assert truncate("z" * 50, 20, more_url="javascript:x").endswith("…")


def test_bidi_overrides_never_reach_slack_text() -> None:
    # issue 13, finding 5: U+202E turned "gnp.exe" into what reads as "exe.png"
    from bot.slack.mrkdwn import escape as _escape

    for char in ("\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200f"):
        assert char not in _escape(f"invoice {char}gnp.exe paid")
