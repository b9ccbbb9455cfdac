"""The Slack Web API fake, driven by the real `slack_sdk` AsyncWebClient, and the signed sender."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.runtime import slack_client
from sandbox import slack_sender, slack_socket
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from sandbox.slack_limits import RateLimits
from tests.helpers.scenarios import with_faults

SIGNING_SECRET = "sandbox-slack-signing-secret"


@pytest.fixture
def sb(checkout: Scenario) -> Iterator[Sandbox]:
    with Sandbox(checkout, systems=["slack"]) as sandbox:
        yield sandbox


def client(sb: Sandbox, token: str | None = None) -> AsyncWebClient:
    return AsyncWebClient(token=token or sb.ctx.secrets["slack_bot_token"], base_url=sb.url("slack") + "/api/")


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


async def test_auth_is_checked_like_slack(sb: Sandbox) -> None:
    assert (await client(sb).auth_test())["user_id"] == "UBRIEFBOT"
    with pytest.raises(SlackApiError) as bad:
        await client(sb, token="xoxb-wrong").auth_test()
    assert bad.value.response.status_code == 200
    assert bad.value.response["error"] == "invalid_auth"
    anonymous = AsyncWebClient(base_url=sb.url("slack") + "/api/")
    with pytest.raises(SlackApiError) as missing:
        await anonymous.chat_postMessage(channel="C0INCCHK", text="hi")
    assert missing.value.response["error"] == "not_authed"
    assert sb.system("slack").messages == []


async def test_socket_mode_urls_need_the_app_level_token_and_work_once(checkout: Scenario) -> None:
    with Sandbox(checkout, systems=["slack"], socket_mode=True) as sandbox:
        server = sandbox.socket_server
        assert server is not None
        app_token = sandbox.ctx.secrets["slack_app_token"]
        with pytest.raises(SlackApiError) as bot_token:
            await client(sandbox).apps_connections_open(app_token=sandbox.ctx.secrets["slack_bot_token"])
        assert bot_token.value.response["error"] == "not_allowed_token_type"
        with pytest.raises(SlackApiError) as app_token_elsewhere:
            await client(sandbox, token=app_token).auth_test()
        assert app_token_elsewhere.value.response["error"] == "not_allowed_token_type"
        url = (await client(sandbox).apps_connections_open(app_token=app_token))["url"]
        assert url.startswith("ws://127.0.0.1:")
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url) as ws:
                hello = await ws.receive_json(timeout=5)
                assert hello["type"] == "hello"
                await ws.send_json({"envelope_id": "e-1"})
                await server.send(slack_socket.envelope("events_api", {"type": "event_callback"}, envelope_id="e-2"))
                assert (await ws.receive_json(timeout=5))["envelope_id"] == "e-2"
            with pytest.raises(aiohttp.WSServerHandshakeError):  # a ticket works once
                await session.ws_connect(url)
        assert server.acknowledged("e-1"), "what the app sends back is kept"


async def test_post_update_thread_and_reaction(sb: Sandbox) -> None:
    slack = client(sb)
    posted = await slack.chat_postMessage(channel="C0INCCHK", text="Gathering…", blocks=[section("wait")])
    reply = await slack.chat_postMessage(channel="C0INCCHK", thread_ts=posted["ts"], text="Acknowledged")
    updated = await slack.chat_update(channel="C0INCCHK", ts=posted["ts"], text="Brief", blocks=[section("done")])
    await slack.reactions_add(channel="C0INCCHK", timestamp=posted["ts"], name="eyes")
    with pytest.raises(SlackApiError) as again:
        await slack.reactions_add(channel="C0INCCHK", timestamp=posted["ts"], name="eyes")
    assert again.value.response["error"] == "already_reacted"

    messages = sb.system("slack").messages
    assert [m.ts for m in messages] == [posted["ts"], reply["ts"]]
    assert float(reply["ts"]) > float(posted["ts"])
    first = messages[0]
    assert (first.text, first.blocks[0]["text"]["text"]) == ("Brief", "done")
    assert [u["text"] for u in first.updates] == ["Gathering…"]
    assert updated["message"]["blocks"][0]["text"]["text"] == "done"
    assert messages[1].thread_ts == posted["ts"]
    assert first.reactions == {"eyes": ["UBRIEFBOT"]}


async def test_update_keeps_blocks_when_only_text_is_sent(sb: Sandbox) -> None:
    slack = client(sb)
    posted = await slack.chat_postMessage(channel="C0INCCHK", text="a", blocks=[section("kept")])
    await slack.chat_update(channel="C0INCCHK", ts=posted["ts"], text="b")
    assert sb.system("slack").messages[0].blocks[0]["text"]["text"] == "kept"
    with pytest.raises(SlackApiError) as missing:
        await slack.chat_update(channel="C0INCCHK", ts="1.000001", text="x")
    assert missing.value.response["error"] == "message_not_found"


async def test_form_encoded_calls_are_understood(sb: Sandbox) -> None:
    # slack_sdk sends JSON for chat.postMessage; other clients (and Bolt's respond) send forms.
    import httpx

    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{sb.url('slack')}/api/chat.postMessage", data={
            "token": sb.ctx.secrets["slack_bot_token"], "channel": "C0INCCHK", "text": "form",
            "blocks": json.dumps([section("from a form")])})
    assert answer.status_code == 200
    assert answer.json()["ok"] is True
    assert sb.system("slack").messages[0].blocks[0]["text"]["text"] == "from a form"


@pytest.mark.parametrize(("blocks", "complaint"), [
    ([section("x")] * 51, "must be less than 51 items [json-pointer:/blocks]"),
    ([section("x" * 3001)], "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"),
    ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
     "must be less than 151 characters [json-pointer:/blocks/0/text/text]"),
    ([{"type": "header", "text": {"type": "mrkdwn", "text": "*bold*"}}],
     "must be a valid enum value (plain_text) [json-pointer:/blocks/0/text/type]"),
    ([{"type": "marquee"}], "unsupported type [json-pointer:/blocks/0/type]"),
])
async def test_block_kit_limits_answer_invalid_blocks(sb: Sandbox, blocks: list[dict[str, Any]],
                                                      complaint: str) -> None:
    with pytest.raises(SlackApiError) as refused:
        await client(sb).chat_postMessage(channel="C0INCCHK", text="t", blocks=blocks)
    assert refused.value.response["error"] == "invalid_blocks"
    assert complaint in refused.value.response["errors"]
    assert sb.system("slack").messages == []


async def test_ephemeral_and_channel_errors(sb: Sandbox) -> None:
    slack = client(sb)
    answer = await slack.chat_postEphemeral(channel="C0INCCHK", user="U0OUTSIDER", text="Only approvers")
    ephemeral = sb.system("slack").ephemerals[0]
    assert (ephemeral.user, ephemeral.text, ephemeral.message_ts) == ("U0OUTSIDER", "Only approvers",
                                                                      answer["message_ts"])
    with pytest.raises(SlackApiError) as nowhere:
        await slack.chat_postMessage(channel="#", text="x")
    assert nowhere.value.response["error"] == "channel_not_found"
    info = await slack.conversations_info(channel="C0INCCHK")
    assert info["channel"]["name"] == "inc-checkout-api"


async def test_user_groups_hold_the_requester_and_the_approver(sb: Sandbox, checkout: Scenario) -> None:
    slack = client(sb)
    groups = (await slack.usergroups_list())["usergroups"]
    oncall = next(g for g in groups if g["handle"] == "oncall")
    members = (await slack.usergroups_users_list(usergroup=oncall["id"]))["users"]
    assert set(members) == {checkout.alert.requested_by, "U0APPROVER"}
    assert "U0OUTSIDER" not in members
    assert "users" not in oncall
    assert oncall["user_count"] == 2
    with pytest.raises(SlackApiError) as unknown:
        await slack.usergroups_users_list(usergroup="S0NOPE")
    assert unknown.value.response["error"] == "no_such_subteam"
    assert (await slack.users_info(user="U0OUTSIDER"))["user"]["id"] == "U0OUTSIDER"


async def test_views_open_and_update(sb: Sandbox) -> None:
    slack = client(sb)
    view = {"type": "modal", "callback_id": "feedback_reason", "private_metadata": "{}",
            "title": {"type": "plain_text", "text": "What was wrong?"},
            "submit": {"type": "plain_text", "text": "Send"},
            "blocks": [{"type": "input", "block_id": "reason", "label": {"type": "plain_text", "text": "Why"},
                        "element": {"type": "plain_text_input", "action_id": "value"}}]}
    opened = (await slack.views_open(trigger_id="1.2.abc", view=view))["view"]
    assert opened["id"].startswith("V")
    assert opened["callback_id"] == "feedback_reason"
    assert sb.system("slack").views == [opened]
    changed = {**view, "title": {"type": "plain_text", "text": "Thanks"}}
    updated = (await slack.views_update(view_id=opened["id"], hash=opened["hash"], view=changed))["view"]
    assert sb.system("slack").views[0]["title"]["text"] == "Thanks"
    with pytest.raises(SlackApiError) as stale:
        await slack.views_update(view_id=opened["id"], hash=opened["hash"], view=view)
    assert stale.value.response["error"] == "hash_conflict"
    assert updated["hash"] != opened["hash"]
    with pytest.raises(SlackApiError) as too_long:
        await slack.views_open(trigger_id="1.2.abc", view={**view, "title": {"type": "plain_text", "text": "t" * 25}})
    assert too_long.value.response["error"] == "invalid_arguments"


async def test_files_upload_v2_flow(sb: Sandbox) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    done = await client(sb).files_upload_v2(channel="C0INCCHK", content=png, filename="chart.png",
                                            title="Error rate", alt_txt="error rate around the alert")
    stored = sb.system("slack").files[0]
    assert done["file"]["id"] == stored.id
    assert (stored.content, stored.channel, stored.title) == (png, "C0INCCHK", "Error rate")
    tools = [r.tool for r in sb.ctx.recorder.requests("slack")]
    assert tools[:3] == ["slack.files_getUploadURLExternal", "slack.upload", "slack.files_completeUploadExternal"]


def test_a_rate_limit_holds_per_method_and_token_until_retry_after_has_passed() -> None:
    now = [100.0]
    limits = RateLimits(clock=lambda: now[0])
    post, update = "slack.chat_postMessage", "slack.chat_update"
    assert limits.refuse("http_429", post, "xoxb-a", 3) == 3, "the burst opens the window"
    now[0] += 1.2
    assert limits.refuse("http_429", post, "xoxb-a", 3) == 2, "a retry inside it: the seconds left"
    assert limits.refuse("http_429", update, "xoxb-a", 3) == 3, "another method has its own window"
    assert limits.refuse("http_429", post, "xoxb-b", 3) == 3, "and so has another token"
    now[0] += 1.8
    assert limits.refuse("http_429", post, "xoxb-a", 3) is None, "the window has passed"
    assert limits.refuse("http_429", post, "xoxb-a", 3) is None, "one burst per method and token"
    assert limits.refuse("http_429", update, "xoxb-a", 3) == 2
    now[0] += 3600
    assert limits.refuse("http_429_persistent", post, "xoxb-a", 1) == 1, "persistent: refused whatever the wait"
    assert limits.refuse("http_500", post, "xoxb-c", 1) is None
    assert limits.refuse(None, post, "xoxb-c", 1) is None


def rate_limited(checkout: Scenario, fault: str, retry_after_s: int) -> Sandbox:
    return Sandbox(with_faults(checkout, errors={"slack.chat_postMessage": fault}, retry_after_s=retry_after_s),
                   systems=["slack"])


def post_statuses(sandbox: Sandbox) -> list[tuple[int, str | None]]:
    return [(r.status, r.fault) for r in sandbox.ctx.recorder.requests("slack", tool="slack.chat_postMessage")]


async def test_a_short_rate_limit_is_waited_out_by_the_bots_own_client(checkout: Scenario) -> None:
    with rate_limited(checkout, "http_429", retry_after_s=1) as sandbox:
        impatient = client(sandbox)  # no retry handler: tries again at once
        for _ in range(2):
            with pytest.raises(SlackApiError) as limited:
                await impatient.chat_postMessage(channel="C0INCCHK", text="too soon")
            assert (limited.value.response.status_code, limited.value.response["error"]) == (429, "ratelimited")
            assert limited.value.response.headers["retry-after"] == "1"

        bot = slack_client(sandbox.settings())  # as the runtime builds it: waits Retry-After, up to 3 times
        started = time.monotonic()
        await bot.chat_postMessage(channel="C0INCCHK", text="after the window")
        assert time.monotonic() - started >= 0.9, "the client waited for Retry-After"
        assert post_statuses(sandbox) == [(429, "http_429")] * 3 + [(200, None)]
        assert [m.text for m in sandbox.system("slack").messages] == ["after the window"]


async def test_a_persistent_rate_limit_outlasts_the_bots_own_client(checkout: Scenario) -> None:
    with rate_limited(checkout, "http_429_persistent", retry_after_s=0) as sandbox:
        bot = slack_client(sandbox.settings())
        with pytest.raises(SlackApiError) as limited:
            await bot.chat_postMessage(channel="C0INCCHK", text="never")
        assert limited.value.response.status_code == 429
        assert post_statuses(sandbox) == [(429, "http_429_persistent")] * 4, "the first try and 3 retries"
        assert sandbox.system("slack").messages == []


def test_signed_headers_pass_slacks_verifier() -> None:
    body = slack_sender.app_mention_body(channel="C0INCCHK", user="U0ONCALL1", text="<@UBRIEFBOT> brief")
    headers = slack_sender.signed_headers(SIGNING_SECRET, body)
    assert SignatureVerifier(SIGNING_SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)
    stale = slack_sender.signed_headers(SIGNING_SECRET, body, timestamp=int(time.time()) - 600)
    assert not SignatureVerifier(SIGNING_SECRET).is_valid_request(body, stale)
    assert headers["Content-Type"] == "application/json"
    event = json.loads(body)
    assert event["type"] == "event_callback"
    assert event["event"]["type"] == "app_mention"


def test_interactivity_bodies_round_trip() -> None:
    view = {"id": "V1", "callback_id": "ticket_submit", "private_metadata": "{}", "blocks": [
        {"type": "input", "block_id": "summary",
         "element": {"type": "plain_text_input", "action_id": "value", "initial_value": "Checkout 5xx"}},
        {"type": "input", "block_id": "project", "element": {
            "type": "static_select", "action_id": "value",
            "initial_option": {"text": {"type": "plain_text", "text": "CHK"}, "value": "CHK"}}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "note"}]}]}
    values = slack_sender.initial_values(view)
    assert values == {"summary": {"value": {"type": "plain_text_input", "value": "Checkout 5xx"}},
                      "project": {"value": {"type": "static_select", "selected_option":
                                            {"text": {"type": "plain_text", "text": "CHK"}, "value": "CHK"}}}}
    submit = slack_sender.view_submission_body(user="U0ONCALL1", view=view, values=values)
    payload = json.loads(parse_qs(submit)["payload"][0])
    assert payload["type"] == "view_submission"
    assert payload["view"]["state"]["values"] == values
    click = slack_sender.block_actions_body(user="U0ONCALL1", channel="C0INCCHK", message_ts="1.000001",
                                            action_id="ticket_create", value='{"incident_key":"k"}')
    action = json.loads(parse_qs(click)["payload"][0])
    assert action["actions"][0]["value"] == '{"incident_key":"k"}'
    assert action["channel"]["id"] == "C0INCCHK"
    assert action["message"]["ts"] == "1.000001"
    command = parse_qs(slack_sender.slash_command_body("/brief", "checkout-api", user="U0ONCALL1",
                                                       channel="C0INCCHK"))
    assert command["command"] == ["/brief"]
    assert command["text"] == ["checkout-api"]
    assert slack_sender.signed_headers(SIGNING_SECRET, submit)["Content-Type"] == \
        "application/x-www-form-urlencoded"


async def test_bolt_accepts_the_senders_requests_and_answers_through_the_sandbox(sb: Sandbox) -> None:
    """The sender's bodies are what Bolt expects: signature, events, clicks and submissions."""
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_bolt.request.async_request import AsyncBoltRequest

    secret = sb.ctx.secrets["slack_signing_secret"]
    web = client(sb)
    app = AsyncApp(client=web, signing_secret=secret, token=sb.ctx.secrets["slack_bot_token"])
    submitted: list[dict[str, Any]] = []

    @app.event("app_mention")
    async def mention(event: dict[str, Any]) -> None:
        await web.chat_postMessage(channel=event["channel"], thread_ts=event["ts"], text=f"heard {event['user']}")

    @app.action("ticket_create")
    async def click(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await web.views_open(trigger_id=body["trigger_id"], view={
            "type": "modal", "callback_id": "ticket_submit", "title": {"type": "plain_text", "text": "T"},
            "submit": {"type": "plain_text", "text": "File"}, "private_metadata": body["actions"][0]["value"],
            "blocks": [{"type": "input", "block_id": "summary", "label": {"type": "plain_text", "text": "S"},
                        "element": {"type": "plain_text_input", "action_id": "value", "initial_value": "x"}}]})

    @app.view("ticket_submit")
    async def submit(ack: AsyncAck, view: dict[str, Any]) -> None:
        await ack()
        submitted.append(view)

    async def send(body: str) -> int:
        response = await app.async_dispatch(AsyncBoltRequest(
            body=body, headers={k.lower(): v for k, v in slack_sender.signed_headers(secret, body).items()}))
        return response.status

    mention_body = slack_sender.app_mention_body(channel="C0INCCHK", user="U0ONCALL1", text="<@UBRIEFBOT> hi")
    assert await send(mention_body) == 200
    click_body = slack_sender.block_actions_body(user="U0ONCALL1", channel="C0INCCHK", message_ts="1.000001",
                                                 action_id="ticket_create", value="{}")
    assert await send(click_body) == 200
    slack = sb.system("slack")
    for _ in range(200):
        if slack.messages and slack.views:
            break
        await asyncio.sleep(0.01)
    assert slack.messages[0].text == "heard U0ONCALL1"
    view = slack.views[0]
    assert await send(slack_sender.view_submission_body(user="U0ONCALL1", view=view,
                                                        values=slack_sender.initial_values(view))) == 200
    assert submitted[0]["state"]["values"]["summary"]["value"]["value"] == "x"
    forged = AsyncBoltRequest(body=mention_body, headers={
        k.lower(): v for k, v in slack_sender.signed_headers("wrong-secret", mention_body).items()})
    assert (await app.async_dispatch(forged)).status == 401
