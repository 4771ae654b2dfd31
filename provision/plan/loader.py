"""Load a plan file: YAML with positions, `${VAR}` interpolation, validation, located errors.

Every failure becomes one `PlanError` whose message lists each problem on its own line as
`FILE:LINE:COL KEY.PATH: message` (1-based line and column), followed by a one-line hint.

How positions survive validation: ruamel.yaml's round-trip loader records the line and column of every key,
value and sequence item. The document is converted to plain Python data while an index maps each key path
(`("azure", "dicom", "cors", "origins", 1)`) to its positions. A pydantic error's `loc` is walked against the
plain data to recover the key path (dropping union tags that pydantic inserts), then looked up in the index.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from provision.errors import Diagnostic, PlanError
from provision.plan.base import PLAN_DIR
from provision.plan.models import Plan, plan_model
from provision.plan.names import fit_interpolated

__all__ = ["interpolate", "load_plan", "locate", "parse_plan", "plan_json_schema"]

Key = str | int
KeyPath = tuple[Key, ...]
Position = tuple[int, int]  # 0-based line and column, as ruamel reports them

GENERAL_HINT = "see docs/plan-format.md for every key; `provision schema` prints the JSON Schema of plan files"
MAX_NODES = 100_000  # aliases can expand a small file into a huge document ("billion laughs")

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


@dataclass(frozen=True)
class _Problem:
    position: Position
    path: KeyPath
    message: str
    hint: str | None = None


class _InterpolationError(ValueError):
    def __init__(self, offset: int, token: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.offset, self.token, self.message, self.hint = offset, token, message, hint


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Replace `${VAR}` and `${VAR:-default}` in `text` with values from `env`; `$${` stands for `${`.

    `${VAR:-default}` uses the default when VAR is unset or empty (as in a POSIX shell). The default is literal
    text up to the first `}`. Raises ValueError for an unset or empty variable without default (unlike a shell:
    an empty value in a name is a CI mistake, not an intention) or a malformed `${`.
    """

    out: list[str] = []
    pos = 0
    for match in _VAR.finditer(text):
        out.append(text[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        name, default = match.group(1), match.group(2)
        if token == "$${":
            out.append("${")
        elif name is None:
            raise _InterpolationError(
                match.start(),
                token,
                f"malformed '${{' in {text!r}: expected ${{NAME}} or ${{NAME:-default}}",
                "variable names are letters, digits and '_'; write $${ for a literal '${'",
            )
        elif default is not None and "${" in default:
            raise _InterpolationError(
                match.start(),
                token,
                f"nested '${{' in the default of ${{{name}}} is not supported",
                "a default is literal text up to the first '}'",
            )
        elif env.get(name):
            out.append(env[name])
        elif default is not None:
            out.append(default)
        else:
            # set-but-empty is refused too: `env: pr-${PR_NUMBER}` with an empty PR_NUMBER would name a
            # shared environment `pr-`; `${VAR:-}` says "empty is fine" explicitly
            state = "is empty" if name in env else "is not set"
            raise _InterpolationError(
                match.start(),
                token,
                f"${{{name}}} {state} and has no default",
                f"set {name} in the environment, or give a default: ${{{name}:-value}} (${{{name}:-}} allows empty)",
            )
    out.append(text[pos:])
    return "".join(out)


# --- YAML -> plain data with positions ---------------------------------------------------------------------


class _Converter:
    """Turn a ruamel round-trip document into plain dict/list/scalars, recording positions and problems."""

    def __init__(self, text: str, env: Mapping[str, str]) -> None:
        self.lines = text.splitlines()
        self.env = env
        self.value_pos: dict[KeyPath, Position] = {}
        self.key_pos: dict[KeyPath, Position] = {}
        self.containers: set[KeyPath] = set()
        self.problems: list[_Problem] = []
        self.nodes = 0
        #: key paths of string values that `${...}` changed (name fields among them may be made to fit)
        self.interpolated: list[KeyPath] = []

    def convert(self, node: Any, path: KeyPath, pos: Position) -> Any:
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise PlanError(
                f"the document expands to more than {MAX_NODES} values (aliases?)",
                hint="plan files are small; check anchors (&) and aliases (*)",
            )
        self.value_pos.setdefault(path, pos)
        if isinstance(node, dict):
            self.containers.add(path)
            return self._mapping(node, path, pos, node if isinstance(node, CommentedMap) else None)
        if isinstance(node, list):
            self.containers.add(path)
            return self._sequence(node, path, pos, node if isinstance(node, CommentedSeq) else None)
        return self._scalar(node, path, pos)

    def position(self, path: KeyPath, *, key: bool) -> Position:
        """Where to point for a problem at `path`: the key (for key problems and lists/mappings) or the value;
        for a missing key, the key of the nearest parent that exists."""
        if path in self.value_pos:
            if (key or path in self.containers) and path in self.key_pos:
                return self.key_pos[path]
            return self.value_pos[path]
        for end in range(len(path) - 1, -1, -1):
            parent = path[:end]
            if parent in self.key_pos:
                return self.key_pos[parent]
            if parent in self.value_pos:
                return self.value_pos[parent]
        return (0, 0)

    def _mapping(self, node: dict[Any, Any], path: KeyPath, pos: Position, cm: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            key_pos, value_pos = pos, pos
            if cm is not None and key in cm.lc.data:  # merged (<<) keys have no position of their own
                line, col, vline, vcol = cm.lc.data[key]
                key_pos, value_pos = (line, col), (vline, vcol)
            if not isinstance(key, str):
                self.problems.append(
                    _Problem(key_pos, path, f"key {key!r} must be a string", "quote the key: '" + str(key) + "'")
                )
                continue
            child = (*path, key)
            self.key_pos[child] = key_pos
            out[key] = self.convert(value, child, value_pos)
        return out

    def _sequence(self, node: list[Any], path: KeyPath, pos: Position, cs: Any) -> list[Any]:
        out = []
        for i, item in enumerate(node):
            item_pos = pos
            if cs is not None and i in cs.lc.data:
                line, col = cs.lc.data[i][:2]
                item_pos = (line, col)
            child = (*path, i)
            self.key_pos[child] = item_pos
            out.append(self.convert(item, child, item_pos))
        return out

    def _scalar(self, node: Any, path: KeyPath, pos: Position) -> Any:
        from ruamel.yaml.comments import TaggedScalar
        from ruamel.yaml.scalarbool import ScalarBoolean

        if node is None or type(node) is bool:
            return node
        if isinstance(node, ScalarBoolean):
            return bool(node)
        if isinstance(node, str):
            try:
                value = interpolate(str(node), self.env)
            except _InterpolationError as exc:
                self.problems.append(
                    _Problem(self._refine(pos, exc.token, str(node), exc.offset), path, exc.message, exc.hint)
                )
                return str(node)
            if value != str(node):
                self.interpolated.append(path)
            return value
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        if isinstance(node, _dt.date):  # an unquoted 2024-01-01: keep the text the author meant
            return node.isoformat()
        what = f"tag {node.tag.value!r}" if isinstance(node, TaggedScalar) else type(node).__name__
        self.problems.append(
            _Problem(pos, path, f"unsupported YAML value ({what})", "remove the tag or quote the value")
        )
        return None

    def _refine(self, pos: Position, token: str, text: str, offset: int) -> Position:
        """Point at the `${` itself when the scalar sits on its line as written."""
        line, col = pos
        if line < len(self.lines) and text.count(token, 0, offset) == 0:
            found = self.lines[line].find(token, col)
            if found >= 0:
                return line, found
        return pos


# --- errors ---------------------------------------------------------------------------------------------------


def _show_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def _show_value(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value)


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[KeyPath, bool]:
    """The key path in `data` that a pydantic `loc` designates, and whether it designates a mapping key."""
    path: list[Key] = []
    current: Any = data
    for i, part in enumerate(loc):
        if part == "[key]":
            return tuple(path), True
        if isinstance(current, dict) and isinstance(part, str):
            if part in current:
                path.append(part)
                current = current[part]
                continue
            if i == len(loc) - 1:  # a missing key
                path.append(part)
                break
            continue  # a union tag pydantic inserted
        if isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        # anything else is a union tag on a scalar (e.g. azure.cloud's 'name')
    return tuple(path), False


def _field_type(tp: Any, part: Key) -> Any:
    """The declared type of child `part` inside a value of type `tp` (None when unknown)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _field_type(typing.get_args(tp)[0], part)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            found = _field_type(arg, part)
            if found is not None:
                return found
        return None
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(str(part))
        return field.annotation if field else None
    if origin is tuple and isinstance(part, int):
        return typing.get_args(tp)[0]
    if origin is dict and isinstance(part, str):
        return typing.get_args(tp)[1]
    return None


def _model_keys(tp: Any) -> list[str]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _model_keys(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return next((keys for arg in typing.get_args(tp) if (keys := _model_keys(arg))), [])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


def _allowed_keys(parent: KeyPath) -> list[str]:
    tp: Any = plan_model()
    for part in parent:
        tp = _field_type(tp, part)
        if tp is None:
            return []
    return _model_keys(tp)


def _unknown_key_message(path: KeyPath) -> str:
    key = str(path[-1])
    allowed = _allowed_keys(path[:-1])
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r}; did you mean {close[0]!r}?"
    if allowed:
        return f"unknown key {key!r}; expected one of: {', '.join(allowed)}"
    return f"unknown key {key!r}"


_EXPECTED = {
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
    "tuple_type": "a list",
    "list_type": "a list",
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def _message(error: Any, path: KeyPath) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key_message(path)
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}; got {_show_value(value)}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}; got {_show_value(value)}"
    if isinstance(value, dict | list):
        return str(error["msg"])
    return f"{error['msg']}; got {_show_value(value)}"


def _validation_problems(exc: ValidationError, data: Any, index: _Converter) -> list[_Problem]:
    problems: list[_Problem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        ctx = error.get("ctx") or {}
        if error["type"] == "plan_rules":
            for sub, message in ctx["problems"]:
                path, _ = _data_path(data, loc + tuple(sub))
                problems.append(_Problem(index.position(path, key=False), path, message))
            continue
        path, is_key = _data_path(data, loc)
        key = is_key or error["type"] == "extra_forbidden"
        problems.append(_Problem(index.position(path, key=key), path, _message(error, path)))
    return problems


def _raise(source: str, problems: list[_Problem]) -> typing.NoReturn:
    unique = sorted(set(problems), key=lambda p: (p.position, _show_path(p.path), p.message))
    lines = []
    diagnostics = []
    for p in unique:
        line, column = p.position[0] + 1, p.position[1] + 1
        where = f"{source}:{line}:{column}"
        lines.append(f"{where} {_show_path(p.path)}: {p.message}" if p.path else f"{where} {p.message}")
        diagnostics.append(Diagnostic(source, line, column, _show_path(p.path), p.message))
    hint = unique[0].hint or GENERAL_HINT  # the first problem's own advice is the most useful
    raise PlanError("\n".join(lines), hint=hint, diagnostics=tuple(diagnostics))


# --- entry points ------------------------------------------------------------------------------------------------


def parse_plan(text: str, source: str | Path = "<plan>", env: Mapping[str, str] | None = None) -> Plan:
    """Validate the YAML `text` of a plan; `source` names it in messages. See `load_plan`."""
    name = str(source)
    try:
        return _parse(text, name, os.environ if env is None else env, source if isinstance(source, Path) else None)
    except PlanError:
        raise
    except RecursionError:
        raise PlanError(f"{name}: the document is nested too deeply", hint=GENERAL_HINT) from None
    except Exception as exc:  # never let a traceback escape: this is a bug, but say where it happened
        raise PlanError(
            f"{name}: internal error while reading the plan: {type(exc).__name__}: {exc}",
            hint="this is a bug in provision; please report it with the plan file",
        ) from exc


def _parse(text: str, name: str, env: Mapping[str, str], path: Path | None) -> Plan:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt")
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = (mark.line, mark.column) if mark is not None else (0, 0)
        problem = ", ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        if "duplicate key" in problem and exc.problem and exc.context_mark is not None:
            problem = exc.problem.split(" with value")[0] + _first_definition(text, exc.context_mark.line, position)
        else:
            problem += _where_it_started(exc)
        _raise(name, [_Problem(position, (), f"YAML: {problem}", _yaml_hint(problem))])
    except YAMLError as exc:
        _raise(name, [_Problem((0, 0), (), f"YAML: {exc}", GENERAL_HINT)])

    if document is None:
        _raise(name, [_Problem((0, 0), (), "the plan is empty; it needs at least 'version' and 'name'")])
    converter = _Converter(text, env)
    try:
        data = converter.convert(document, (), (0, 0))
    except PlanError as exc:
        raise PlanError(f"{name}: {exc.message}", hint=exc.hint) from None
    if converter.problems:
        _raise(name, converter.problems)
    if not isinstance(data, dict):
        _raise(name, [_Problem((0, 0), (), f"a plan must be a mapping of keys; got {_show_value(data)}")])
    fit_interpolated(data, converter.interpolated)
    try:
        plan = plan_model().model_validate(data, context={PLAN_DIR: path.parent if path is not None else None})
    except ValidationError as exc:
        _raise(name, _validation_problems(exc, data, converter))
    plan._source = path
    return plan


def _where_it_started(exc: Any) -> str:
    """`; the flow sequence started at line 8, column 16` when the problem is found far from its cause (an
    unclosed `[`, `{` or quote is only noticed at the end of the file)."""
    begun, found = exc.context_mark, exc.problem_mark
    construct = re.match(r"while (?:parsing|scanning) an? (.+)", exc.context or "")
    if begun is None or found is None or construct is None or begun.line == found.line:
        return ""
    return f"; the {construct.group(1)} started at line {begun.line + 1}, column {begun.column + 1}"


def _first_definition(text: str, mapping_line: int, duplicate: Position) -> str:
    """` (first at line N)` for a duplicate block-style key: the earlier line with the same key at its column."""
    lines = text.splitlines()
    line, col = duplicate
    if line >= len(lines):
        return ""
    key = re.match(r"[^:\s][^:]*:", lines[line][col:])
    if key is None:
        return ""
    for earlier in range(mapping_line, line):
        if lines[earlier][col:].startswith(key.group(0)) and not lines[earlier][:col].strip(" -"):
            return f" (first at line {earlier + 1})"
    return ""


def _yaml_hint(problem: str) -> str:
    if "duplicate key" in problem:
        return "each key may appear once per mapping; remove or merge the repeated one"
    if "\t" in problem or "'\\t'" in problem:
        return "indent with spaces, not tabs"
    if "another document" in problem:
        return "a plan file holds one YAML document: remove the extra '---'"
    return "check indentation and quoting near that position (quote values containing ': ', '#', '{' or '[')"


def load_plan(path: str | Path, env: Mapping[str, str] | None = None) -> Plan:
    """Read, interpolate and validate the plan file at `path`.

    `${VAR}` and `${VAR:-default}` in string values are taken from `env` (default: `os.environ`); `$${` is a
    literal `${`. Raises `PlanError` for any problem, listing each as `FILE:LINE:COL KEY.PATH: message`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"{path}: no such plan file", hint="check the path; plan files are YAML") from None
    except IsADirectoryError:
        raise PlanError(f"{path}: is a directory, not a plan file", hint="pass a .yaml file") from None
    except UnicodeDecodeError as exc:
        raise PlanError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})", hint="save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise PlanError(f"{path}: cannot read: {exc.strerror or exc}", hint="check the path and permissions") from None
    return parse_plan(text, path, env)


def locate(source: Path | None, path: KeyPath) -> str:
    """`FILE:LINE:COL key.path` of `path` in the plan file `source`, for problems found after loading (an
    environment variable a field names is not set, ...). A key the file does not spell out points at its
    nearest written parent, as validation errors do; without a readable file it is just the key path."""
    shown = _show_path(path)
    if source is None:
        return shown
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        text = source.read_text(encoding="utf-8")
        converter = _Converter(text, os.environ)
        converter.convert(YAML(typ="rt").load(text), (), (0, 0))
    except (OSError, UnicodeDecodeError, YAMLError, PlanError):
        return f"{source}: {shown}"
    line, column = converter.position(path, key=True)
    return f"{source}:{line + 1}:{column + 1} {shown}"


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of plan files, for editors and `provision schema`."""
    schema = plan_model().model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
