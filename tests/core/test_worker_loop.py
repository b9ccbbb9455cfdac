"""The worker loop (`bot.core.worker_loop`): work runs on its own thread in the caller's context;
stopping waits a bounded time, then cancels and reports what was cut off."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from bot.core.worker_loop import WorkerLoop

REQUEST = contextvars.ContextVar("request", default="none")


async def test_work_runs_on_the_worker_thread_in_the_callers_context() -> None:
    worker = WorkerLoop.start("test-worker")
    try:
        REQUEST.set("delivery-7")

        async def where() -> tuple[str, str]:
            return threading.current_thread().name, REQUEST.get()

        assert await asyncio.wrap_future(worker.submit(where(), name="where")) == ("test-worker", "delivery-7")

        async def fails() -> None:
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            await asyncio.wrap_future(worker.submit(fails(), name="fails"))
    finally:
        assert await worker.stop(grace_s=1) == 0
    assert not worker.running


async def test_stop_waits_for_running_work_then_cancels_what_outlives_the_grace() -> None:
    worker = WorkerLoop.start()
    finished = threading.Event()

    async def short() -> None:
        await asyncio.sleep(0.05)
        finished.set()

    async def forever() -> None:
        await asyncio.Event().wait()

    quick, stuck = worker.submit(short(), name="short"), worker.submit(forever(), name="forever")
    closed: list[str] = []

    async def close() -> None:
        closed.append(threading.current_thread().name)

    assert await worker.stop(grace_s=0.5, before_close=close) == 1
    assert finished.is_set()
    assert quick.result() is None
    assert isinstance(stuck.exception(), asyncio.CancelledError)
    assert closed == ["ib-worker"], "resources are closed on the worker's own loop"
    coro = forever()
    with pytest.raises(RuntimeError, match="stopped"):
        worker.submit(coro, name="late")
