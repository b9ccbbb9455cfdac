"""Socket Mode as `serve` runs it: every envelope through the gate before the SDK or Bolt reads it.

Slack's SDK client parses each WebSocket message with an unbounded ``json.loads`` and hands the
payload to Bolt as it came; over HTTP the same payload would first pass `bot.intake.slack_gate`.
`GatedSocketModeClient` reads the raw text through `bot.intake.socket_gate` instead (size, bounded
JSON, envelope shape, then the HTTP gate's own payload checks), and passes what passes on to the
SDK's listeners exactly as the SDK would. A refused envelope is acknowledged (so Slack does not
redeliver it), counted and logged with the reason; nothing in it reaches Bolt, and nothing about
it can end the socket's processing loop. No signature is checked: the WebSocket was opened with
the app-level token, and that connection is what authenticates Slack (see `socket_gate`).

Messages larger than aiohttp's frame limit (4 MiB) never reach the gate: aiohttp closes the
connection and the SDK reconnects (Slack sends nothing that large).
"""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.config import SlackSettings
from bot.intake.slack_gate import response_hosts
from bot.intake.socket_gate import Refused, check_envelope
from bot.telemetry import record as telemetry

log = logging.getLogger("incident_brief.socket_mode")


class GatedSocketModeClient(SocketModeClient):
    """The SDK's aiohttp client with its message step replaced by the gate."""

    def __init__(self, app_token: str, web_client: AsyncWebClient, hosts: frozenset[str],
                 logger: logging.Logger | None = None) -> None:
        super().__init__(app_token=app_token, web_client=web_client, logger=logger)
        self.hosts = hosts
        self._listening: set[asyncio.Future[None]] = set()  # kept referenced until they finish

    async def process_message(self) -> None:
        raw = await self.message_queue.get()
        if raw is None:
            return
        checked = check_envelope(raw, self.hosts)
        if isinstance(checked, Refused):
            await self.refuse(checked)
            return
        running = asyncio.ensure_future(self.run_message_listeners(checked.message, raw))
        self._listening.add(running)
        running.add_done_callback(self._listening.discard)

    async def refuse(self, refused: Refused) -> None:
        telemetry.webhook("slack", refused.outcome)
        log.warning("Socket Mode envelope %s refused: %s", refused.envelope_id or "(no readable id)",
                    refused.reason)
        if refused.envelope_id is None:
            return
        try:
            await self.send_socket_mode_response(SocketModeResponse(envelope_id=refused.envelope_id))
        except Exception as exc:  # a lost acknowledgement means a redelivery, refused again
            log.warning("could not acknowledge the refused envelope %s: %s: %s", refused.envelope_id,
                        type(exc).__name__, exc)


class GatedSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode adapter (its ``handle`` runs the app and acknowledges) on the gated client."""

    def __init__(self, app: AsyncApp, app_token: str, hosts: frozenset[str]) -> None:
        # Not the parent's __init__: it would build (and start) an ungated client first.
        self.app = app
        self.app_token = app_token
        self.client = GatedSocketModeClient(app_token, app.client, hosts, logger=app.logger)
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]


def socket_mode_handler(bolt: AsyncApp, slack: SlackSettings) -> GatedSocketModeHandler:
    """What `serve` connects with ``slack.socket_mode`` on (needs a running event loop)."""
    return GatedSocketModeHandler(bolt, slack.app_token.get_secret_value(), response_hosts(slack.api_base_url))
