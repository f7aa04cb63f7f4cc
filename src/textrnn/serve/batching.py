"""Micro-batching: requests that arrive close together run as one forward pass.

A request's texts wait in a bounded queue. The worker takes the first waiting request, then gathers more for
up to `window_ms` or until `max_batch` texts are waiting, runs them as one batch on the inference thread (off
the event loop) and answers each request with its own rows. A masked model gives every text exactly what it
gets alone, so gathering changes nothing but throughput. When the queue already holds `max_queue` texts a new
request is refused at once (`QueueFull`, a 503 for the client) rather than joining an unbounded backlog.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

log = logging.getLogger("textrnn.serve")


class QueueFull(Exception):
    """The batcher holds as many texts as it may: come back shortly."""


@dataclass
class _Waiting:
    texts: Sequence[str]
    answer: asyncio.Future


class MicroBatcher:
    """Gathers `submit`ted texts into batches for `run` (texts -> one row of probabilities per text).

    window_ms: how long the first request of a batch waits for company (0: no waiting, each request alone
        unless others are already queued). max_batch: the most texts in one forward pass (a request larger than
        that still runs, alone). max_queue: the most texts waiting at once.
    on_batch: called with each batch's size (metrics).
    """

    def __init__(self, run: Callable[[list[str]], np.ndarray], executor: Executor, window_ms: float = 2.0,
                 max_batch: int = 64, max_queue: int = 1024, on_batch: Callable[[int], None] | None = None):
        if window_ms < 0 or max_batch < 1 or max_queue < 1:
            raise ValueError("window_ms must be >= 0, max_batch and max_queue >= 1")
        self.run, self.executor = run, executor
        self.window, self.max_batch, self.max_queue = window_ms / 1000, max_batch, max_queue
        self.on_batch = on_batch
        self.waiting: collections.deque[_Waiting] = collections.deque()
        self.queued = 0  # texts waiting
        self._arrived: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None

    # -- lifecycle (inside the server's event loop) -------------------------------------------------------------
    def start(self) -> None:
        self._arrived = asyncio.Event()
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="textrnn-micro-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        while self.waiting:  # nobody will answer these now
            item = self.waiting.popleft()
            if not item.answer.done():
                item.answer.set_exception(QueueFull())
        self.queued = 0

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    # -- use ------------------------------------------------------------------------------------------------------
    async def submit(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, as `run` gives it for these texts alone."""
        if self.queued + len(texts) > self.max_queue:
            raise QueueFull()
        answer = asyncio.get_running_loop().create_future()
        self.waiting.append(_Waiting(texts, answer))
        self.queued += len(texts)
        self._arrived.set()
        return await answer

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.waiting:
                self._arrived.clear()
                await self._arrived.wait()
            if self.window > 0 and self.queued < self.max_batch:
                deadline = loop.time() + self.window
                while self.queued < self.max_batch and (left := deadline - loop.time()) > 0:
                    self._arrived.clear()
                    try:
                        await asyncio.wait_for(self._arrived.wait(), left)
                    except TimeoutError:
                        break
            batch = self._take()
            batch = [item for item in batch if not item.answer.done()]  # a client that went away is not run
            if not batch:
                continue
            texts = [text for item in batch for text in item.texts]
            if self.on_batch is not None:
                self.on_batch(len(texts))
            try:
                rows = await loop.run_in_executor(self.executor, self.run, texts)
            except Exception as exc:  # answer everyone in the batch; the worker keeps serving
                log.exception("a batch of %d texts failed", len(texts))
                for item in batch:
                    if not item.answer.done():
                        item.answer.set_exception(exc)
                continue
            start = 0
            for item in batch:
                if not item.answer.done():
                    item.answer.set_result(rows[start : start + len(item.texts)])
                start += len(item.texts)

    def _take(self) -> list[_Waiting]:
        """The waiting requests that fit in one batch, first come first served (at least one)."""
        batch, size = [], 0
        while self.waiting and (not batch or size + len(self.waiting[0].texts) <= self.max_batch):
            item = self.waiting.popleft()
            batch.append(item)
            size += len(item.texts)
        self.queued -= size
        return batch
