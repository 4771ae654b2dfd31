"""A whole target in one file, for `test_a_new_target.py`: the plan section `notes:` names text files to keep
in a directory, and `provision notes count PLAN` counts the words in them. Registering it is one line in
`provision.registry.TARGETS`; nothing else in provision changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from provision.core import Context, Resource, Update
from provision.core.commands import Argument, Command, CommandCall, Option
from provision.core.events import Record
from provision.core.target import Connection, OhifResult, PlanView, Target, TargetSession, section_of
from provision.plan.base import Section


class NotesSection(Section):
    directory: str
    files: dict[str, str] = {}


class NoteFile(Resource):
    def __init__(self, path: Path, text: str) -> None:
        super().__init__(f"notes.file[{path.name}]")
        self.path = path
        self.text = text

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        return {"text": self.path.read_text()} if self.path.is_file() else None

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"text": self.text}

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(desired["text"])
        return dict(desired)

    async def update(self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any],
                     action: Update) -> dict[str, Any] | None:
        return await self.create(ctx, desired)

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        self.path.unlink()


@dataclass
class NotesSession:
    resources: list[Resource]

    def ohif(self, outputs: Mapping[str, Mapping[str, Any]]) -> OhifResult | None:
        return None

    async def aclose(self) -> None:
        pass


@dataclass
class WordCount:
    words: dict[str, int]

    @property
    def ok(self) -> bool:
        return bool(self.words)

    def lines(self) -> Sequence[str]:
        return [f"{name}: {count} words" for name, count in self.words.items()]

    def document(self) -> dict[str, Any]:
        return {"words": self.words}


async def count(call: CommandCall, *, minimum: Annotated[int, Option("Only files with this many words.")] = 0
                ) -> WordCount:
    """Count the words of the plan's notes as they are on disk."""
    section = section_of(call.require_plan(), "notes", NotesSection)
    words = {name: len((Path(section.directory) / name).read_text().split()) for name in section.files
             if (Path(section.directory) / name).is_file()}
    return WordCount({name: n for name, n in words.items() if n >= minimum})


@dataclass
class Longest:
    word: str

    @property
    def ok(self) -> bool:
        return bool(self.word)

    def lines(self) -> Sequence[str]:
        return [self.word]

    def document(self) -> dict[str, Any]:
        return {"longest": self.word}


async def longest(call: CommandCall) -> Longest:
    """The longest word of the plan's notes (a command of a group: `provision notes words longest`)."""
    section = section_of(call.require_plan(), "notes", NotesSection)
    return Longest(max((word for text in section.files.values() for word in text.split()), key=len, default=""))
async def grep(call: CommandCall, *, words: Annotated[list[str], Argument("Words to look for.", metavar="WORD")],
               ) -> WordCount:
    """Show each note that holds one of WORD... as it is found, then how many words those notes have."""
    section = section_of(call.require_plan(), "notes", NotesSection)
    found = {}
    for name, text in section.files.items():
        if set(words) & set(text.split()):
            call.on_event(Record("note", f"{name}: {text}", {"file": name}))
            found[name] = len(text.split())
    return WordCount(found)


class NotesTarget(Target):
    name = "notes"
    summary = "Text files in a directory (a demonstration target)."

    def section_model(self) -> type[object]:
        return NotesSection

    async def open_session(self, plan: PlanView, connection: Connection) -> TargetSession:
        section = section_of(plan, "notes", NotesSection)
        return NotesSession([NoteFile(Path(section.directory) / name, text) for name, text in section.files.items()])

    def commands(self) -> Sequence[Command]:
        return (Command("count", count), Command("words longest", longest), Command("grep", grep))


TARGET = NotesTarget()
