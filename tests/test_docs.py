"""Every command has help text and is documented in the README (as sqlite-utils does)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from provision.cli.main import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _commands(group: Any, prefix: str = "provision") -> list[tuple[str, Any]]:
    """Every command and sub-command (typer may bring its own click, so go by shape, not by class)."""
    found = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        found.append((path, command))
        if hasattr(command, "commands"):
            found.extend(_commands(command, path))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_found_commands() -> None:
    names = {path for path, _ in COMMANDS}
    assert {"provision azure apply", "provision gcp roles", "provision sandbox serve", "provision schema"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_command_has_help_and_is_in_readme(path: str, command: Any) -> None:
    assert (command.help or "").strip(), f"{path} has no help text"
    # the command's full name, then a space or the closing backtick (so `provision gc` is not `provision gcp`)
    assert re.search(re.escape(f"`{path}") + "[ `]", README), f"{path} is not mentioned in README.md"
