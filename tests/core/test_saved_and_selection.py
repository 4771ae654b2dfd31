"""Saved plans compare exactly what was read and decided; --target keeps what a resource needs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from test_engine import Thing, World

from provision.core import Engine
from provision.core.saved import differences, is_saved_plan, load, record, write
from provision.core.selection import select
from provision.errors import ConfigurationError


def _resources(world: World, size: int = 1) -> list[Any]:
    return [Thing(world, "parent", size=size), Thing(world, "child", depends_on=("thing[parent]",)),
            Thing(world, "other")]


def test_a_saved_plan_round_trips_and_matches_a_fresh_plan_of_an_unchanged_world(tmp_path: Path) -> None:
    world = World()
    asyncio.run(Engine(_resources(world)).apply())
    world.objects["parent"]["size"] = 7  # drift: the plan will update it
    planned = asyncio.run(Engine(_resources(world)).plan())
    saved_file = tmp_path / "plan.json"
    write(saved_file, record(planned, target="toy", plan_file=Path("plan.yaml"), plan_text="x", env="e"))
    assert is_saved_plan(saved_file) and not is_saved_plan(Path(__file__))
    assert saved_file.stat().st_mode & 0o777 == 0o600
    saved = load(saved_file)
    assert differences(saved, asyncio.run(Engine(_resources(world)).plan())) == []

    world.objects["other"]["size"] = 9  # someone changed it since the plan was saved
    lines = differences(saved, asyncio.run(Engine(_resources(world)).plan()))
    assert lines == ["thing[other]: was to no-op, now would update"]
    world.objects["other"]["size"] = 1
    world.objects["parent"]["owner"] = "someone"  # the same action, but the object is not as it was read
    (line,) = differences(saved, asyncio.run(Engine(_resources(world)).plan()))
    assert line.startswith("thing[parent]: changed since the plan was saved (owner")


def test_a_file_that_is_not_a_saved_plan_is_refused_by_name(tmp_path: Path) -> None:
    bogus = tmp_path / "plan.json"
    bogus.write_text('{"steps": []}')
    with pytest.raises(ConfigurationError, match="not a saved plan"):
        load(bogus)


def test_target_keeps_dependencies_for_apply_and_dependants_for_destroy() -> None:
    resources = _resources(World())
    assert [r.address for r in select(resources, ["thing[child]"])] == ["thing[parent]", "thing[child]"]
    assert [r.address for r in select(resources, ["thing[parent]"], destroy=True)] == ["thing[parent]",
                                                                                         "thing[child]"]
    with pytest.raises(ConfigurationError, match="no such resource") as raised:
        select(resources, ["thing[chlid]"])
    assert raised.value.hint == "did you mean thing[child]?"
