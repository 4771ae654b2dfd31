"""OData bits Microsoft Graph uses: a `$filter` subset, `$select`, and Graph's habit of reordering arrays.

Pure functions. The filter grammar covers what directory lookups need:

    expr  := and ('or' and)*
    and   := term ('and' term)*
    term  := '(' expr ')' | 'not' term
           | path ('eq' | 'ne') literal
           | path 'in' '(' literal (',' literal)* ')'
           | 'startswith' '(' path ',' literal ')'
           | path '/any(' var ':' var 'eq' literal ')'
    literal := 'string' | true | false | null | number | bare GUID

String comparisons are case-insensitive (as directory properties are in Graph). A filter holds at most
MAX_CLAUSES comparisons, each value of an `in` counting as one (Graph's limit without advanced queries: "Too many
child clauses specified in search filter expression containing 'OR' operators: 16. Max allowed: 15.").
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

MAX_CLAUSES = 15


class ODataError(ValueError):
    """A query option the sandbox (and Graph) does not accept; `prop` names the offending property."""

    def __init__(self, message: str, prop: str | None = None) -> None:
        super().__init__(message)
        self.prop = prop


_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12})|(?P<num>-?\d+(?:\.\d+)?)(?![\w-])|(?P<name>[A-Za-z_][\w./]*)|(?P<punct>[(),:]))"
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ODataError(f"Invalid filter clause: syntax error at position {pos} in '{text}'.")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def _get(obj: dict[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("/"):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


class _Parser:
    def __init__(self, text: str, allowed: Iterable[str]) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.allowed = {a.lower(): a for a in allowed}
        self.text = text
        #: comparisons seen (each value of an `in` is one)
        self.clauses = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ODataError(f"Invalid filter clause: unexpected end of '{self.text}'.")
        self.pos += 1
        return tok

    def expect(self, value: str) -> None:
        val = self.take()[1]
        if val.lower() != value:
            raise ODataError(f"Invalid filter clause: expected '{value}' but found '{val}'.")

    def keyword(self, value: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "name" and tok[1].lower() == value:
            self.pos += 1
            return True
        return False

    def prop(self, path: str) -> str:
        key = path.lower()
        if key not in self.allowed:
            raise ODataError(f"Unsupported or invalid query filter clause specified for property '{path}'.", path)
        return self.allowed[key]

    def literal(self) -> Any:
        kind, val = self.take()
        if kind == "str":
            return val[1:-1].replace("''", "'")
        if kind == "guid":
            return val
        if kind == "num":
            return float(val) if "." in val else int(val)
        if kind == "name" and val.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[val.lower()]
        raise ODataError(f"Invalid filter clause: '{val}' is not a literal.")

    def parse(self) -> Predicate:
        pred = self.expr()
        if self.peek() is not None:
            raise ODataError(f"Invalid filter clause: unexpected '{self.peek()[1]}'.")  # type: ignore[index]
        if self.clauses > MAX_CLAUSES:
            raise ODataError("Too many child clauses specified in search filter expression containing 'OR' "
                             f"operators: {self.clauses}. Max allowed: {MAX_CLAUSES}.")
        return pred

    def expr(self) -> Predicate:
        parts = [self.conj()]
        while self.keyword("or"):
            parts.append(self.conj())
        if len(parts) == 1:
            return parts[0]
        alternatives = tuple(parts)
        return lambda o: any(p(o) for p in alternatives)

    def conj(self) -> Predicate:
        parts = [self.term()]
        while self.keyword("and"):
            parts.append(self.term())
        if len(parts) == 1:
            return parts[0]
        conjuncts = tuple(parts)
        return lambda o: all(p(o) for p in conjuncts)

    def term(self) -> Predicate:
        tok = self.peek()
        if tok is None:
            raise ODataError("Invalid filter clause: empty expression.")
        if tok[1] == "(":
            self.take()
            inner = self.expr()
            self.expect(")")
            return inner
        if self.keyword("not"):
            inner = self.term()
            return lambda o: not inner(o)
        if tok[0] == "name" and tok[1].lower() == "startswith" and (self.peek(1) or ("", ""))[1] == "(":
            self.take()
            self.take()
            path = self.prop(self.take()[1])
            self.expect(",")
            prefix = self.literal()
            self.expect(")")
            self.clauses += 1
            if not isinstance(prefix, str):
                raise ODataError("Invalid filter clause: startswith needs a string.")
            return lambda o: isinstance(_get(o, path), str) and _get(o, path).lower().startswith(prefix.lower())
        kind, raw = self.take()
        if kind != "name":
            raise ODataError(f"Invalid filter clause: expected a property but found '{raw}'.")
        if raw.lower().endswith("/any"):
            path = self.prop(raw[: -len("/any")])
            self.expect("(")
            var = self.take()[1]
            self.expect(":")
            ref = self.take()[1]
            if ref != var:
                raise ODataError(f"Invalid filter clause: lambda variable '{ref}' is not '{var}'.")
            self.expect("eq")
            value = self.literal()
            self.expect(")")
            self.clauses += 1
            return lambda o: any(_eq(item, value) for item in (_get(o, path) or []))
        path = self.prop(raw)
        op = self.take()[1].lower()
        if op == "in":
            self.expect("(")
            values = [self.literal()]
            while (self.peek() or ("", ""))[1] == ",":
                self.take()
                values.append(self.literal())
            self.expect(")")
            self.clauses += len(values)
            return lambda o: any(_eq(_get(o, path), v) for v in values)
        if op not in ("eq", "ne"):
            raise ODataError(f"Invalid filter clause: operator '{op}' is not supported.")
        value = self.literal()
        self.clauses += 1
        if op == "eq":
            return lambda o: _eq(_get(o, path), value)
        return lambda o: not _eq(_get(o, path), value)


def parse_filter(text: str | None, allowed: Iterable[str]) -> Predicate:
    """A predicate for `$filter=text` over objects whose filterable properties are `allowed`."""
    if text is None or not text.strip():
        return lambda o: True
    return _Parser(text, allowed).parse()


def select(obj: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """`$select`: keep the named properties (and `id`, which Graph always returns)."""
    if not fields:
        return obj
    wanted = {f.strip().lower() for f in fields.split(",") if f.strip()}
    return {k: v for k, v in obj.items() if k.lower() in wanted or k == "id" or k.startswith("@odata")}


def _digest(value: Any) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def reorder(items: list[Any]) -> list[Any]:
    """A stable permutation that differs from `items` whenever it can (Graph does not keep array order)."""
    if len(items) < 2:
        return list(items)
    keyed = sorted(items, key=_digest)
    if keyed == items:
        keyed = list(reversed(items))
    return keyed


def reorder_deep(value: Any) -> Any:
    """`reorder` applied to every array inside `value` (objects keep their key order)."""
    if isinstance(value, list):
        return reorder([reorder_deep(v) for v in value])
    if isinstance(value, dict):
        return {k: reorder_deep(v) for k, v in value.items()}
    return value
