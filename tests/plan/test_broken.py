"""The corpus of broken plans: each file says in `# expect: LINE:COL KEY.PATH: message` comments exactly which
problems the loader must report. Every expected line must appear (located exactly, message starting with the
fragment), and nothing else may be reported. `# env: NAME=value` lines set variables for interpolation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provision.errors import PlanError
from provision.plan import load_plan

BROKEN = Path(__file__).parent / "broken"
CASES = sorted(BROKEN.glob("*.yaml"))


def _header(path: Path, tag: str) -> list[str]:
    return [m.group(1) for m in re.finditer(rf"^# {tag}: (.*)$", path.read_text(encoding="utf-8"), re.M)]


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 15
    assert all(_header(path, "expect") for path in CASES), "every broken plan states what it expects"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_broken_plan_is_reported_exactly(path: Path) -> None:
    env = dict(line.split("=", 1) for line in _header(path, "env"))
    with pytest.raises(PlanError) as caught:
        load_plan(path, env=env)
    error = caught.value
    reported = error.message.splitlines()
    expected = _header(path, "expect")
    assert len(reported) == len(expected), "\n".join(reported)
    for line in expected:
        position, _, fragment = line.partition(" ")
        prefix = f"{path}:{position} "
        assert any(r.startswith(prefix) and r[len(prefix) :].startswith(fragment) for r in reported), (
            f"expected {prefix}{fragment!r} in:\n" + "\n".join(reported)
        )
    assert error.hint and "\n" not in error.hint
    assert "Traceback" not in str(error)
