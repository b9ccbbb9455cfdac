"""The real `incident-brief serve` process, started as the Procfile starts it, against a sandbox
running in the test process (so the test can read what the fake Slack, Jira and model received).

The settings reach the process the way a deployment's do: an env file (`sandbox.standalone.prepare`
writes it, as `incident-brief sandbox up` does) plus environment variables, which win.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

STARTUP_TIMEOUT_S = 90.0  # imports and migrations on a busy 2-core machine


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_command() -> list[str]:
    """The console script the Procfile runs, from this interpreter's environment."""
    script = Path(sys.executable).with_name("incident-brief")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.app.cli"]


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    url: str
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost host ends it: no handler runs, nothing is flushed or
        released but what the kernel releases. The block's SIGTERM stop then has nothing to do."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@contextlib.contextmanager
def serve_process(env_file: Path, logs: Path, *, env: dict[str, str] | None = None) -> Iterator[ServeProcess]:
    """`incident-brief --env-file ENV_FILE serve` on a free loopback port, until the block ends
    (then stopped with SIGTERM, as a platform stops a dyno, unless `kill` ended it). `logs`
    receives its stderr."""
    port = free_port()
    # The test run's own IB_ variables (IB_TEST_POSTGRES, a developer's settings) stay out.
    environ = {key: value for key, value in os.environ.items() if not key.upper().startswith("IB_")}
    environ.update(env or {})
    with logs.open("wb") as stderr:
        process = subprocess.Popen(  # our own console script
            [*cli_command(), "--env-file", str(env_file), "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=stderr, env=environ)
        running = ServeProcess(process, f"http://127.0.0.1:{port}", logs)
        try:
            _wait_healthy(running)
            yield running
        finally:
            _stop(process)


def _wait_healthy(running: ServeProcess) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise RuntimeError(f"serve exited with {running.process.returncode}:\n{running.stderr()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{running.url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"serve did not answer /healthz in {STARTUP_TIMEOUT_S:.0f}s:\n{running.stderr()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


LEADS = "this clock leads the scheduler"
STANDS_BY = "another clock leads the scheduler: standing by"


@dataclass
class ClockProcess:
    process: subprocess.Popen[bytes]
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def leads(self) -> bool:
        return LEADS in self.stderr()

    def stop(self) -> None:
        _stop(self.process)


@contextlib.contextmanager
def clock_process(env_file: Path, logs: Path, *, env: dict[str, str] | None = None) -> Iterator[ClockProcess]:
    """`incident-brief --env-file ENV_FILE clock` until the block ends, started once it has said
    whether it leads the scheduler or stands by."""
    environ = {key: value for key, value in os.environ.items() if not key.upper().startswith("IB_")}
    environ.update(env or {})
    with logs.open("wb") as stderr:
        process = subprocess.Popen([*cli_command(), "--env-file", str(env_file), "clock"],  # our own console script
                                   stdout=subprocess.DEVNULL, stderr=stderr, env=environ)
        running = ClockProcess(process, logs)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not (LEADS in running.stderr() or STANDS_BY in running.stderr()):
                if process.poll() is not None:
                    raise RuntimeError(f"clock exited with {process.returncode}:\n{running.stderr()}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"clock said nothing about leading in {STARTUP_TIMEOUT_S:.0f}s")
                time.sleep(0.2)
            yield running
        finally:
            _stop(process)
