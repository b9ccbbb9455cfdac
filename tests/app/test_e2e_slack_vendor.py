"""Slack's own event and interactivity payloads (bolt-python's test payloads, tests/fixtures/slack),
signed and posted to the bot as `serve` runs it: every one is acknowledged (Slack retries and
then disables event delivery on errors), and a mention that names no service gets the question
back in its own channel and thread."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

from sandbox import slack_sender
from sandbox.people import wait_for
from sandbox.scenario import Scenario
from tests.helpers.replay import FIXTURES
from tests.helpers.slack_app import running_bot

PAYLOADS = sorted((FIXTURES / "slack").glob("*__*.json"))


def wire_body(payload: dict) -> str:
    """Events API callbacks are JSON; interactivity (actions, views, shortcuts) is a form with a
    ``payload`` field, as Slack posts them."""
    if payload.get("type") in ("event_callback", "url_verification"):
        return json.dumps(payload)
    return urlencode({"payload": json.dumps(payload)})


async def test_every_recorded_slack_payload_is_acknowledged(checkout: Scenario, tmp_path: Path) -> None:
    assert len(PAYLOADS) >= 10
    async with running_bot(checkout, tmp_path / "e2e.db") as harness:
        answers = {}
        for path in PAYLOADS:
            body = wire_body(json.loads(path.read_text()))
            response = await slack_sender.post_to_bot(f"{harness.url}/slack/events", body,
                                                      slack_sender.signed_headers(harness.secret, body))
            answers[path.stem] = response
        mentions = [json.loads(p.read_text())["event"] for p in PAYLOADS if "app_mention" in p.stem]
        # The recorded mentions are one event (one event_id) delivered again: answered once.
        events = {json.loads(p.read_text())["event_id"] for p in PAYLOADS if "app_mention" in p.stem}

        def replies() -> list:
            return [r for r in harness.posts() if r.json().get("channel") == mentions[0]["channel"]]

        await wait_for(lambda: len(replies()) >= len(events) or None, "the replies to the mentions")
        await harness.rt.idle()
        assert len(replies()) == len(events) < len(mentions)
    assert {stem: r.status_code for stem, r in answers.items()} == {stem: 200 for stem in answers}
    challenge = json.loads((FIXTURES / "slack" / "events_url_verification__event_body.json").read_text())["challenge"]
    assert challenge in answers["events_url_verification__event_body"].text
    for reply in replies():
        sent = reply.json()
        assert sent["thread_ts"] == mentions[0]["ts"]
        assert sent["text"].startswith("Which service is this about?")
