"""Run a scenario's fake systems on 127.0.0.1, one uvicorn server per system, port 0.

`Sandbox` is a context manager: it binds every system's socket first (so systems can link to
each other), starts each server in its own thread with its own event loop, and stops them
all on exit. A source whose fault is ``refused`` gets a port that nobody listens on.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import uvicorn
from pydantic import SecretStr

from bot.app.net import tcp_listener
from bot.core.config import (
    ConfluenceSettings,
    DatadogSettings,
    GitHubSettings,
    JiraSettings,
    LlmSettings,
    ModelProviderSettings,
    PagerDutySettings,
    Settings,
    SlackSettings,
)
from sandbox.core import Recorder, SandboxContext, SystemApp
from sandbox.scenario import Scenario
from sandbox.slack import TEAM_ID, SlackApp
from sandbox.slack_socket import SocketModeServer

SANDBOX_WIKI = "https://example.atlassian.net/wiki"
SANDBOX_JIRA = "https://example.atlassian.net"
ALL_SYSTEMS = ("datadog", "github", "confluence", "jira", "pagerduty", "slack", "llm")
DEFAULT_SECRETS = {
    "slack_signing_secret": "sandbox-slack-signing-secret",
    "slack_bot_token": "xoxb-sandbox-token",
    "slack_app_token": "xapp-1-sandbox-app-token",
    "pagerduty_webhook_secret": "sandbox-pagerduty-webhook-secret",
    "api_token": "sandbox-api-token",
}


def build_system(name: str, ctx: SandboxContext) -> SystemApp:
    """Each system lives in ``sandbox/<name>.py`` with ``build(ctx) -> SystemApp``."""
    module = importlib.import_module(f"sandbox.{name}")
    app: SystemApp = module.build(ctx)
    return app


KEEP_ALIVE_S = 75  # nginx's default; AWS's load balancers idle out at 60 s


class _ServerThread(threading.Thread):
    def __init__(self, app: Any, sock: socket.socket) -> None:
        super().__init__(daemon=True, name=f"sandbox-{getattr(app, 'name', 'app')}")
        # log_config=None: no handlers of uvicorn's own; records reach the process's root handler.
        # Keep-alive as the vendors' front ends hold it (load balancers keep idle connections for
        # 60 s or more), not uvicorn's 5 s: with 5 s, a connection idle while a brief waited on
        # a slower source was closed under the client's pool (aiosonic keeps one for 60 s), and a
        # POST on it (Datadog's log search, never replayed by the client) failed as
        # "ConnectionDisconnected" three times over: an eval flake, and unlike the real thing.
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                                timeout_graceful_shutdown=1, log_config=None, timeout_keep_alive=KEEP_ALIVE_S)
        self.server = uvicorn.Server(config)
        self.sock = sock

    def run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def stop(self) -> None:
        self.server.should_exit = True


class Sandbox:
    """All fake systems of one scenario, serving on loopback until closed."""

    def __init__(
        self,
        scenario: Scenario,
        systems: Iterable[str] = ALL_SYSTEMS,
        secrets: dict[str, str] | None = None,
        *,
        socket_mode: bool = False,
    ) -> None:
        self.scenario = scenario
        self.recorder = Recorder()
        self.ctx = SandboxContext(scenario, self.recorder, secrets={**DEFAULT_SECRETS, **(secrets or {})})
        self.systems: dict[str, SystemApp] = {}
        self._names = list(systems)
        self._threads: list[_ServerThread] = []
        self._dead_sockets: list[socket.socket] = []
        # Slack's Socket Mode WebSocket (`sandbox.slack_socket`), and settings that use it.
        self.socket_mode = socket_mode
        self.socket_server: SocketModeServer | None = None

    @property
    def urls(self) -> dict[str, str]:
        return self.ctx.urls

    def url(self, system: str) -> str:
        return self.ctx.urls[system]

    def system(self, name: str) -> Any:
        return self.systems[name]

    def settings(self, **overrides: Any) -> Settings:
        """Settings that point every connector at this sandbox: the same code as production."""
        token = SecretStr(self.ctx.secrets["api_token"])
        # A system this sandbox does not run gets a closed port: its connector reports a gap.
        urls = {name: self.ctx.urls.get(name, "http://127.0.0.1:9") for name in ALL_SYSTEMS}
        fast = {"timeout_s": 5.0, "max_retries": 2}
        values: dict[str, Any] = {
            "datadog": DatadogSettings(base_url=urls["datadog"], token=token, app_key=token, **fast),
            "github": GitHubSettings(base_url=urls["github"], token=token, **fast),
            # Deep links look like the real hosts' (as Datadog's and GitHub's do): stable across
            # runs, so snapshots and evals do not depend on the sandbox's random ports.
            "confluence": ConfluenceSettings(base_url=urls["confluence"] + "/wiki", web_url=SANDBOX_WIKI,
                                             username="incident-brief@example.com", token=token, **fast),
            "jira": JiraSettings(base_url=urls["jira"], web_url=SANDBOX_JIRA, username="incident-brief@example.com",
                                 token=token, **fast),
            "pagerduty": PagerDutySettings(
                base_url=urls["pagerduty"], token=token, **fast,
                webhook_secrets=[SecretStr(self.ctx.secrets["pagerduty_webhook_secret"])]),
            "slack": SlackSettings(
                api_base_url=urls["slack"] + "/api/",
                bot_token=SecretStr(self.ctx.secrets["slack_bot_token"]),
                signing_secret=SecretStr(self.ctx.secrets["slack_signing_secret"]),
                app_token=SecretStr(self.ctx.secrets["slack_app_token"] if self.socket_mode else ""),
                socket_mode=self.socket_mode),
            "llm": LlmSettings(
                openai=ModelProviderSettings(base_url=urls["llm"] + "/v1", api_key=token),
                anthropic=ModelProviderSettings(base_url=urls["llm"], api_key=token), timeout_s=10.0,
                workspace=TEAM_ID),  # PagerDuty-triggered briefs charge the sandbox's Slack team
            "source_timeout_s": 15.0,
        }
        values.update(overrides)
        return Settings(**values)

    def start(self) -> Sandbox:
        errors = self.scenario.world.faults.errors
        bound: dict[str, socket.socket] = {}
        for name in self._names:
            sock = tcp_listener()
            self.ctx.urls[name] = f"http://127.0.0.1:{sock.getsockname()[1]}"
            if errors.get(name) == "refused":
                self._dead_sockets.append(sock)  # bound, never listening: connect is refused
            else:
                bound[name] = sock
        if self.socket_mode:
            self.socket_server = SocketModeServer(self.ctx, tcp_listener()).start()
        for name, sock in bound.items():
            app = build_system(name, self.ctx)
            self.systems[name] = app
            if isinstance(app, SlackApp):
                app.socket_server = self.socket_server
            thread = _ServerThread(app, sock)
            thread.start()
            self._threads.append(thread)
        for thread in self._threads:
            _wait_started(thread)
        return self

    def stop(self) -> None:
        self.ctx.closing.set()  # held "timeout" requests end now, before the servers' graceful stop
        for thread in self._threads:
            thread.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        for sock in self._dead_sockets:
            sock.close()
        self._threads.clear()
        if self.socket_server is not None:
            self.socket_server.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _wait_started(thread: _ServerThread, timeout: float = 10.0) -> None:
    deadline = threading.Event()
    waited = 0.0
    while not thread.server.started and waited < timeout:
        deadline.wait(0.01)
        waited += 0.01
    if not thread.server.started:
        raise RuntimeError(f"sandbox server {thread.name} did not start in {timeout:.0f}s")
