"""Lookups asked for at the same moment, sent as one request per few keys.

A plan of 200 access entries reads 200 users, each with its own branch of the graph. Read one by one they cost 200
requests, and on two cores the client's own CPU (about 5 ms per Graph request through msgraph-sdk) is what bounds
the plan. Branches that start together ask together: the keys that arrive within two turns of the event loop go
out as one `$filter=... in (...)` request per `per_request` keys (Graph counts each value against its limit of 15
clauses in a filter), and each caller gets what matches its key. A failed request fails each of its callers, who
retry on their own (the next try is coalesced again).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Coalesced(Generic[T]):
    def __init__(
        self,
        fetch: Callable[[list[str]], Awaitable[list[T]]],
        matches: Callable[[T, str], bool],
        *,
        per_request: int,
    ) -> None:
        self._fetch = fetch
        self._matches = matches
        self._per_request = per_request
        self._waiting: dict[str, list[asyncio.Future[list[T]]]] = {}
        self._scheduled = False
        self._sending: set[asyncio.Task[None]] = set()

    async def get(self, key: str) -> list[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[T]] = loop.create_future()
        self._waiting.setdefault(key, []).append(future)
        if not self._scheduled:
            self._scheduled = True
            # two turns: branches started together reach here within one turn of each other (asyncio.wait_for
            # runs its operation as a task of its own)
            loop.call_soon(loop.call_soon, self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        waiting, self._waiting = self._waiting, {}
        keys = list(waiting)
        for start in range(0, len(keys), self._per_request):
            chunk = {key: waiting[key] for key in keys[start:start + self._per_request]}
            # a context of its own: the request is nobody's in particular (it holds no caller's engine slot)
            task = asyncio.get_running_loop().create_task(self._send(chunk), context=contextvars.Context())
            self._sending.add(task)  # a task nobody holds may be collected before it ends
            task.add_done_callback(self._sending.discard)

    async def _send(self, waiting: dict[str, list[asyncio.Future[list[T]]]]) -> None:
        try:
            found = await self._fetch(list(waiting))
        except BaseException as error:  # handed to every caller, who decides
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        _fail(future, error)
            if not isinstance(error, Exception):
                raise
            return
        for key, futures in waiting.items():
            result = [item for item in found if self._matches(item, key)]
            for future in futures:
                if not future.done():
                    future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if isinstance(error, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(error)
