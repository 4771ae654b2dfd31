"""Shared fixtures: one sandbox per test session, and a way to get it back to a clean world."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from provision.sandbox import RunningSandbox, SandboxControl

# Long-running operations take this long in tests (real DICOM creation takes minutes).
TEST_LRO_SECONDS = 0.3
TEST_CONFIG: dict[str, Any] = {
    "latency_ms": 0,
    "lro_seconds": TEST_LRO_SECONDS,
    "principal_delay_seconds": 0,
    "principal_delay_strict": False,
    "dicom_sp": True,
    "graph_replication_seconds": 0,
    "graph_strict_uniqueness": True,
    "test_users": 0,
}


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """A sandbox running for the whole session (HTTPS on 127.0.0.1, state in a temporary directory)."""
    from provision.sandbox import start_sandbox

    with start_sandbox(tmp_path_factory.mktemp("sandbox"), lro_seconds=TEST_LRO_SECONDS) as running:
        yield running


@pytest.fixture
def sandbox_control(sandbox: RunningSandbox) -> Iterator[SandboxControl]:
    """The control API (log, faults, config, reset) of the session sandbox."""
    from provision.sandbox import SandboxControl

    with SandboxControl(sandbox.info) as control:
        yield control


@pytest.fixture
def clean_sandbox(sandbox: RunningSandbox, sandbox_control: SandboxControl) -> Iterator[RunningSandbox]:
    """The session sandbox with a fresh world (same tenant and credentials), no faults, an empty log and the
    test configuration; faults and configuration are put back afterwards too."""
    sandbox_control.clear_faults()
    sandbox_control.configure(**TEST_CONFIG)
    sandbox_control.reset()
    sandbox_control.clear_log()
    yield sandbox
    sandbox_control.clear_faults()
    sandbox_control.configure(**TEST_CONFIG)
