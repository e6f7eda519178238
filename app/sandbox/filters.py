"""OData v2 ``$filter``: a small parser, type checker and evaluator.

Supported: ``eq ne gt ge lt le``, ``and or not``, parentheses, literals
``'text'`` (with ``''`` for a quote), ``guid'…'``, ``datetime'…'``, integers,
decimals, ``true``/``false``/``null``, and the functions ``substringof``,
``startswith``, ``endswith``, ``tolower``, ``toupper``, ``trim``.

Type checking happens at parse time against the entity's schema, like WCF does:
an unknown property or a ``guid`` field compared with a plain string is a 400.

String comparison follows SQL Server's default collation, which sits behind Exact:
case-insensitive and blind to trailing spaces (so ``Code eq '2'`` finds ``'2  '``,
but ``'   42'`` with *leading* padding only matches when the padding is sent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Union

from app.sandbox.errors import bad_request
from app.sandbox.values import BOOL, DATETIME, DECIMAL, GUID, INT, STRING, normalise_guid, parse_datetime

NULL = "null"
_NUMERIC = {INT, DECIMAL}
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<typed>(?:guid|datetime|datetimeoffset)'(?:[^']|'')*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_/]*)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Literal:
    edm: str
    value: Any


@dataclass(frozen=True)
class Prop:
    name: str
    edm: str


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]
    edm: str


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Logical:
    op: str  # "and" | "or"
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


Node = Union[Literal, Prop, Call, Compare, Logical, Not]

# name -> (argument types, result type); STRING args also accept string-typed props.
_FUNCTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "substringof": ((STRING, STRING), BOOL),
    "startswith": ((STRING, STRING), BOOL),
    "endswith": ((STRING, STRING), BOOL),
    "tolower": ((STRING,), STRING),
    "toupper": ((STRING,), STRING),
    "trim": ((STRING,), STRING),
}


def _tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise bad_request(f"Syntax error at position {pos} in '{text}'.")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, fields: dict[str, str], type_name: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.fields = fields
        self.type_name = type_name

    # -- token helpers ---------------------------------------------------------------
    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise bad_request(f"Expression expected at position {len(self.text)} in '{self.text}'.")
        self.index += 1
        return token

    def accept_word(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token.kind == "name" and token.text in words:
            self.index += 1
            return token.text
        return None

    def expect_punct(self, char: str) -> None:
        token = self.take()
        if token.kind != "punct" or token.text != char:
            raise bad_request(f"'{char}' expected at position {token.pos} in '{self.text}'.")

    # -- grammar ---------------------------------------------------------------------
    def parse(self) -> Node:
        node = self.parse_or()
        leftover = self.peek()
        if leftover is not None:
            raise bad_request(f"Syntax error at position {leftover.pos} in '{self.text}'.")
        if _edm_of(node) != BOOL:
            raise bad_request("Expression of type 'Edm.Boolean' expected at position 0.")
        return node

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.accept_word("or"):
            node = Logical("or", node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_not()
        while self.accept_word("and"):
            node = Logical("and", node, self.parse_not())
        return node

    def parse_not(self) -> Node:
        if self.accept_word("not"):
            return Not(self.parse_not())
        return self.parse_comparison()

    def parse_comparison(self) -> Node:
        left = self.parse_primary()
        token = self.peek()
        if token is not None and token.kind == "name" and token.text in _COMPARISONS:
            self.index += 1
            right = self.parse_primary()
            _check_comparable(token, left, right)
            return Compare(token.text, left, right)
        return left

    def parse_primary(self) -> Node:
        token = self.take()
        if token.kind == "punct" and token.text == "(":
            node = self.parse_or()
            self.expect_punct(")")
            return node
        if token.kind == "string":
            return Literal(STRING, token.text[1:-1].replace("''", "'"))
        if token.kind == "typed":
            return self.typed_literal(token)
        if token.kind == "number":
            return _number_literal(token)
        if token.kind == "name":
            if token.text in ("true", "false"):
                return Literal(BOOL, token.text == "true")
            if token.text == "null":
                return Literal(NULL, None)
            nxt = self.peek()
            if nxt is not None and nxt.kind == "punct" and nxt.text == "(":
                return self.call(token)
            return self.prop(token)
        raise bad_request(f"Syntax error at position {token.pos} in '{self.text}'.")

    def typed_literal(self, token: Token) -> Literal:
        prefix, _, rest = token.text.partition("'")
        body = rest[:-1].replace("''", "'")
        try:
            if prefix == "guid":
                return Literal(GUID, normalise_guid(body))
            return Literal(DATETIME, parse_datetime(body))
        except ValueError:
            raise bad_request(f"Unrecognized '{prefix}' literal '{token.text}' at position {token.pos}.") from None

    def prop(self, token: Token) -> Prop:
        if "/" in token.text:
            raise bad_request("Filtering on navigation properties is not supported.")
        edm = self.fields.get(token.text)
        if edm is None:
            raise bad_request(
                f"No property '{token.text}' exists in type '{self.type_name}' at position {token.pos}."
            )
        return Prop(token.text, edm)

    def call(self, token: Token) -> Call:
        spec = _FUNCTIONS.get(token.text)
        if spec is None:
            raise bad_request(f"Unknown function '{token.text}' at position {token.pos}.")
        self.expect_punct("(")
        args: list[Node] = [self.parse_or()]
        while True:
            nxt = self.take()
            if nxt.kind == "punct" and nxt.text == ",":
                args.append(self.parse_or())
                continue
            if nxt.kind == "punct" and nxt.text == ")":
                break
            raise bad_request(f"')' or ',' expected at position {nxt.pos} in '{self.text}'.")
        arg_types, result = spec
        if len(args) != len(arg_types) or any(_edm_of(a) not in (t, NULL) for a, t in zip(args, arg_types)):
            raise bad_request(f"No applicable function found for '{token.text}' at position {token.pos}.")
        return Call(token.text, tuple(args), result)


def _number_literal(token: Token) -> Literal:
    text = token.text.rstrip("mMdDfFlL")
    if re.fullmatch(r"-?\d+", text) and token.text[-1:] not in ("m", "M", "d", "D", "f", "F"):
        return Literal(INT, int(text))
    return Literal(DECIMAL, Decimal(text))


def _edm_of(node: Node) -> str:
    if isinstance(node, (Literal, Prop, Call)):
        return node.edm
    return BOOL


def _check_comparable(op: Token, left: Node, right: Node) -> None:
    lt, rt = _edm_of(left), _edm_of(right)
    ok = lt == rt or NULL in (lt, rt) or (lt in _NUMERIC and rt in _NUMERIC)
    if ok and op.text not in ("eq", "ne") and BOOL in (lt, rt):
        ok = False
    if not ok:
        raise bad_request(
            f"Operator '{op.text}' incompatible with operand types '{lt}' and '{rt}' at position {op.pos}."
        )


def parse_filter(text: str, fields: dict[str, str], type_name: str) -> Node:
    """Parse and type-check a $filter; raises ExactError(400) like Exact does."""
    return _Parser(text, fields, type_name).parse()


def referenced_properties(node: Node) -> set[str]:
    """Property names used anywhere in the filter (for mandatory-filter checks)."""
    if isinstance(node, Prop):
        return {node.name}
    if isinstance(node, Call):
        return set().union(*(referenced_properties(a) for a in node.args))
    if isinstance(node, (Compare, Logical)):
        return referenced_properties(node.left) | referenced_properties(node.right)
    if isinstance(node, Not):
        return referenced_properties(node.operand)
    return set()


def collation_key(value: Any) -> Any:
    """SQL Server default collation: case-insensitive, trailing spaces ignored."""
    if isinstance(value, str):
        return value.rstrip(" ").casefold()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return Decimal(value)
    return value


def _value(node: Node, record: dict) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Prop):
        return record.get(node.name)
    if isinstance(node, Call):
        args = [_value(a, record) for a in node.args]
        if any(a is None for a in args):
            return None
        if node.name == "tolower":
            return args[0].lower()
        if node.name == "toupper":
            return args[0].upper()
        if node.name == "trim":
            return args[0].strip()
        first, second = (a.casefold() for a in args)
        if node.name == "substringof":
            return first in second
        if node.name == "startswith":
            return first.startswith(second)
        return first.endswith(second)
    return matches(node, record)


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is None or right is None:
        # SQL three-valued logic collapsed: only (in)equality with null is meaningful.
        if op == "eq":
            return left is None and right is None
        if op == "ne":
            return (left is None) != (right is None)
        return False
    a, b = collation_key(left), collation_key(right)
    if isinstance(a, datetime) != isinstance(b, datetime):
        return False
    if op == "eq":
        return a == b
    if op == "ne":
        return a != b
    if op == "gt":
        return a > b
    if op == "ge":
        return a >= b
    if op == "lt":
        return a < b
    return a <= b


def matches(node: Node, record: dict) -> bool:
    if isinstance(node, Logical):
        if node.op == "and":
            return matches(node.left, record) and matches(node.right, record)
        return matches(node.left, record) or matches(node.right, record)
    if isinstance(node, Not):
        return not matches(node.operand, record)
    if isinstance(node, Compare):
        return _compare(node.op, _value(node.left, record), _value(node.right, record))
    return bool(_value(node, record))


__all__ = ["Node", "collation_key", "matches", "parse_filter", "referenced_properties"]
