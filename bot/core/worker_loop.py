"""An event loop on a thread of its own, for work that must not hold up the loop that answers.

`serve` acknowledges PagerDuty and Slack on uvicorn's loop; a brief's gathering, analysis,
rendering and model calls run here, so an ack never waits behind a step that holds a loop for
half a second (the storm benchmark measured ack p99 of 2.1 s with both on one loop). A thread
rather than a process: the work is mostly I/O, the heavy CPU steps already leave the loop
(`asyncio.to_thread`), and a thread shares the process's policy, catalog, caches and metrics
registry without pickling anything (docs/ARCHITECTURE.md, "Acknowledging and drafting").

`submit` schedules a coroutine from any thread and returns a `concurrent.futures.Future`; the
coroutine runs in the caller's context (contextvars: the trace span it was spawned under).
`stop` waits a bounded time for what is running, cancels the rest (the publish state machine
and the clock's `finish_publishing` job recover anything cut off) and closes the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger("incident_brief.worker")


class WorkerLoop:
    def __init__(self, name: str = "ib-worker") -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._tasks: set[asyncio.Task[Any]] = set()  # touched only on the worker loop
        self._closed = False

    @classmethod
    def start(cls, name: str = "ib-worker") -> WorkerLoop:
        worker = cls(name)
        worker._thread.start()
        return worker

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._closed

    def owns_current_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, work: Coroutine[Any, Any, Any], name: str) -> concurrent.futures.Future[Any]:
        """Run `work` on the worker loop (callable from any thread, the worker's own included)."""
        if not self.running:
            work.close()  # never awaited: close it so Python does not warn
            raise RuntimeError(f"worker loop {self.name} is stopped")
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        context = contextvars.copy_context()

        def start() -> None:
            if not done.set_running_or_notify_cancel():
                work.close()
                return
            task = self.loop.create_task(work, name=name, context=context)
            self._tasks.add(task)
            task.add_done_callback(lambda t: self._settle(t, done))

        self.loop.call_soon_threadsafe(start)
        return done

    def _settle(self, task: asyncio.Task[Any], done: concurrent.futures.Future[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            # `done` is already running, so it cannot be cancelled: the cancellation is its outcome.
            done.set_exception(asyncio.CancelledError(f"{task.get_name()} cancelled"))
        elif (exc := task.exception()) is not None:
            done.set_exception(exc)
        else:
            done.set_result(task.result())

    async def call(self, work: Callable[[], Awaitable[Any]]) -> Any:
        """Await `work()` run on the worker loop, from another loop (tests: the worker's state)."""
        async def run() -> Any:
            return await work()
        return await asyncio.wrap_future(self.submit(run(), name="call"))

    async def stop(self, grace_s: float, before_close: Callable[[], Awaitable[None]] | None = None) -> int:
        """Wait up to `grace_s` for running work, cancel what is left, run `before_close` on the
        worker loop (closing its store engine), stop the thread. Returns how many were cancelled."""
        if self._closed:
            return 0
        future = asyncio.run_coroutine_threadsafe(self._drain(grace_s, before_close), self.loop)
        try:
            cancelled: int = await asyncio.wrap_future(future)
        finally:
            self._closed = True
            self.loop.call_soon_threadsafe(self.loop.stop)
            await asyncio.to_thread(self._thread.join, grace_s + 5)
        return cancelled

    async def _drain(self, grace_s: float, before_close: Callable[[], Awaitable[None]] | None) -> int:
        # Work still running may spawn more (a publish its refresh): wait for those too, within
        # the same bound; then refuse anything new.
        current = asyncio.current_task()
        deadline = self.loop.time() + grace_s
        pending = {t for t in self._tasks if t is not current}
        while pending and (remaining := deadline - self.loop.time()) > 0:
            await asyncio.wait(pending, timeout=remaining)
            pending = {t for t in self._tasks if t is not current and not t.done()}
        self._closed = True
        for task in pending:
            task.cancel()
        if pending:
            log.warning("stopping: %d background task(s) still running after %.0f s were cancelled "
                        "(the clock's finish_publishing job completes their briefs)", len(pending), grace_s)
            await asyncio.wait(pending, timeout=5)
        if before_close is not None:
            try:
                await before_close()
            except Exception:  # closing connections at shutdown: log, never mask the stop
                log.exception("worker loop %s: closing its resources failed", self.name)
        return len(pending)
