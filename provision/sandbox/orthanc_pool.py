"""One Orthanc per emulated DICOM store: started on first use, its storage kept under the state directory.

Not tied to a cloud: a target whose DICOM stores are real Orthancs (Azure's DICOM services today) asks
`pool_for(world, storage, live_keys)` for its pool. `storage` names the pool's directory in the state
directory, one subdirectory per store key; `live_keys()` gives the keys of the stores that still exist, and
the storage of the others is removed before another Orthanc starts. `shutdown(world, storage)` stops the
pool's Orthancs when the sandbox stops.
"""

from __future__ import annotations

import asyncio
import shutil
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from provision.dicom import Orthanc

    from .world import World


class OrthancPool:
    """Starts one Orthanc per store key on first use and stops them all on `close()`."""

    def __init__(self, root: Path, live_keys: Callable[[], Iterable[str]]) -> None:
        self.root = root
        self._live_keys = live_keys
        self._running: dict[str, Orthanc] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=5.0))
        return self._client

    async def orthanc(self, key: str) -> Orthanc:
        running = self._running.get(key)
        if running is not None and running.alive():
            return running
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            running = self._running.get(key)
            if running is not None and running.alive():
                return running
            from provision.dicom.orthanc_process import spawn_orthanc, wait_previous

            storage = self.root / key
            await asyncio.to_thread(self._collect_garbage)
            await asyncio.to_thread(wait_previous, storage)
            # Spawned from the event loop's thread: with PR_SET_PDEATHSIG it stops when the sandbox does.
            orthanc = spawn_orthanc(storage, name=key)
            await orthanc.wait_ready_async()
            self._running[key] = orthanc
            return orthanc

    def _collect_garbage(self) -> None:
        """Remove the storage of stores that no longer exist (e.g. deleted through ARM)."""
        if not self.root.is_dir():
            return
        live = set(self._live_keys())
        for child in self.root.iterdir():
            if child.is_dir() and child.name not in live and child.name not in self._running:
                shutil.rmtree(child, ignore_errors=True)

    def close(self, timeout: float = 10.0) -> None:
        """Stop every Orthanc (SIGTERM to all first, so the ~3.5 s graceful stops overlap)."""
        running = list(self._running.values())
        self._running.clear()
        for orthanc in running:
            orthanc.terminate()
        for orthanc in running:
            orthanc.stop(timeout)
        self._client = None  # bound to the sandbox's event loop, which is gone by now


_POOLS: weakref.WeakKeyDictionary[World, dict[str, OrthancPool]] = weakref.WeakKeyDictionary()


def pool_for(world: World, storage: str, live_keys: Callable[[], Iterable[str]]) -> OrthancPool:
    """The world's pool stored in `state_dir/storage` (created on first call; `live_keys` as the module says)."""
    pools = _POOLS.setdefault(world, {})
    pool = pools.get(storage)
    if pool is None:
        pool = pools[storage] = OrthancPool(Path(world.state_dir) / storage, live_keys)
    return pool


def shutdown(world: World, storage: str) -> None:
    """Stop the Orthancs of the world's pool in `storage` (call when the sandbox stops)."""
    pool = _POOLS.get(world, {}).pop(storage, None)
    if pool is not None:
        pool.close()
