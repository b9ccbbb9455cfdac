"""`Runtime.spawn` with the worker started (as `serve` runs): background work runs on the worker
thread and reaches the store from there, its failures are logged, `idle` waits for it, and
stopping the worker leaves later work on the caller's loop."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from bot.runtime import Runtime
from sandbox.scenario import Scenario
from tests.helpers.slack_app import sandboxed_runtime


async def test_spawned_work_runs_on_the_worker_and_idle_waits_for_it(checkout: Scenario, tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    async with sandboxed_runtime(checkout, tmp_path / "bot.db") as (_sb, rt):
        assert rt.start_worker()
        seen: list[tuple[str, int]] = []

        async def work(runtime: Runtime) -> None:
            incidents = await runtime.store.list_incidents()  # the worker loop's own engine
            seen.append((threading.current_thread().name, len(incidents)))

        async def fails() -> None:
            raise RuntimeError("drafting broke")

        with caplog.at_level(logging.ERROR, logger="incident_brief"):
            rt.spawn(work(rt), name="work")
            rt.spawn(fails(), name="doomed")
            await rt.idle(timeout=30)
        assert seen == [("ib-worker", 0)]
        assert rt.pending() == []
        assert any("background task doomed failed" in r.getMessage() for r in caplog.records)

        await rt.stop_worker(grace_s=5)
        rt.spawn(work(rt), name="after")
        await rt.idle(timeout=30)
        assert seen[-1] == (threading.current_thread().name, 0), "no worker: work stays on this loop"
