"""Calico's label selector language: parse, match, one canonical form and a stable id per selector.

Grammar (Calico v3): `k == "v"`, `k != "v"`, `k in {"a", "b"}`, `k not in {..}`, `has(k)`, `!e`, `a && b`,
`a || b`, `( .. )`, `all()`, `global()`, `k contains "s"`, `k starts with "s"`, `k ends with "s"`.
`!=` and `not in` also match objects without the label; `contains`/`starts with`/`ends with` need it.
Precedence: `!` binds tightest, then `&&`, then `||`. The empty selector means `all()`.

Canonical form: operands of `&&`/`||` flattened, deduplicated and sorted, set values sorted, values in
double quotes (single quotes only when the value holds a double quote). Equal selectors written differently
in different policies therefore share one canonical string and one id, which the compiler uses to name
its shared address sets.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache

# Label key characters Calico's tokenizer accepts (Kubernetes keys: optional DNS prefix, '/', name).
_KEY_RE = re.compile(r"[a-zA-Z0-9_./\-]+")
# Pseudo-label that marks a namespaced object; `global()` means "has no namespace" (see model.py).
NAMESPACE_LABEL = "projectcalico.org/namespace"


class SelectorError(ValueError):
    """A selector that does not parse; the message shows where."""


# --- syntax tree -------------------------------------------------------------------------------------


class Expr:
    """A selector expression: `matches(labels)`, its canonical text, and the label keys it reads."""

    __slots__ = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        raise NotImplementedError

    def canonical(self) -> str:
        raise NotImplementedError

    def keys(self) -> frozenset[str]:
        return frozenset()


class _OnKey(Expr):
    """An expression about one label key."""

    __slots__ = ()
    key: str

    def keys(self) -> frozenset[str]:
        return frozenset({self.key})


def _quote(value: str) -> str:
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    raise SelectorError(f"value {value!r} holds both quote characters and cannot be written in a selector")


@dataclass(frozen=True, slots=True)
class All(Expr):
    def matches(self, labels: Mapping[str, str]) -> bool:
        return True

    def canonical(self) -> str:
        return "all()"


@dataclass(frozen=True, slots=True)
class Global(Expr):
    """Matches objects that live in no namespace (global network sets); used in namespace selectors."""

    def matches(self, labels: Mapping[str, str]) -> bool:
        return NAMESPACE_LABEL not in labels

    def canonical(self) -> str:
        return "global()"

    def keys(self) -> frozenset[str]:
        return frozenset({NAMESPACE_LABEL})


@dataclass(frozen=True, slots=True)
class Has(_OnKey):
    key: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.key in labels

    def canonical(self) -> str:
        return f"has({self.key})"


@dataclass(frozen=True, slots=True)
class Eq(_OnKey):
    key: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        return labels.get(self.key) == self.value

    def canonical(self) -> str:
        return f"{self.key} == {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class Ne(_OnKey):
    key: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        return labels.get(self.key) != self.value

    def canonical(self) -> str:
        return f"{self.key} != {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class In(_OnKey):
    key: str
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        return value is not None and value in self.values

    def canonical(self) -> str:
        return f"{self.key} in {{{', '.join(_quote(v) for v in sorted(self.values))}}}"


@dataclass(frozen=True, slots=True)
class NotIn(_OnKey):
    key: str
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        return value is None or value not in self.values

    def canonical(self) -> str:
        return f"{self.key} not in {{{', '.join(_quote(v) for v in sorted(self.values))}}}"


@dataclass(frozen=True, slots=True)
class StrMatch(_OnKey):
    """`contains`, `starts with`, `ends with`: need the label to be present."""

    key: str
    op: str  # "contains" | "starts with" | "ends with"
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.key)
        if actual is None:
            return False
        if self.op == "contains":
            return self.value in actual
        if self.op == "starts with":
            return actual.startswith(self.value)
        return actual.endswith(self.value)

    def canonical(self) -> str:
        return f"{self.key} {self.op} {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class Not(Expr):
    operand: Expr

    def matches(self, labels: Mapping[str, str]) -> bool:
        return not self.operand.matches(labels)

    def canonical(self) -> str:
        inner = self.operand.canonical()
        return f"!{inner}" if isinstance(self.operand, (Has, All, Global, Not, And, Or)) else f"!({inner})"

    def keys(self) -> frozenset[str]:
        return self.operand.keys()


@dataclass(frozen=True, slots=True)
class And(Expr):
    operands: tuple[Expr, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(op.matches(labels) for op in self.operands)

    def canonical(self) -> str:
        return "(" + " && ".join(op.canonical() for op in self.operands) + ")"

    def keys(self) -> frozenset[str]:
        return frozenset().union(*(op.keys() for op in self.operands))


@dataclass(frozen=True, slots=True)
class Or(Expr):
    operands: tuple[Expr, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return any(op.matches(labels) for op in self.operands)

    def canonical(self) -> str:
        return "(" + " || ".join(op.canonical() for op in self.operands) + ")"

    def keys(self) -> frozenset[str]:
        return frozenset().union(*(op.keys() for op in self.operands))


def _combine(kind: type[And] | type[Or], operands: list[Expr]) -> Expr:
    """Flatten, drop duplicates, sort by canonical text; `all()` is the unit of `&&` and absorbs `||`."""
    flat: dict[str, Expr] = {}
    for op in operands:
        for part in op.operands if isinstance(op, kind) else (op,):
            if isinstance(part, All):
                if kind is Or:
                    return All()
                continue
            flat.setdefault(part.canonical(), part)
    if not flat:
        return All()
    if len(flat) == 1:
        return next(iter(flat.values()))
    return kind(tuple(flat[k] for k in sorted(flat)))


def and_(*operands: Expr) -> Expr:
    return _combine(And, list(operands))


def or_(*operands: Expr) -> Expr:
    return _combine(Or, list(operands))


# --- the public selector value -------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """A parsed selector. Equal when canonical forms are equal; `id` is a stable 16-hex-digit hash of it."""

    expr: Expr

    @cached_property
    def canonical(self) -> str:
        return _canonical_of(self.expr)

    @cached_property
    def id(self) -> str:
        return hashlib.sha256(self.canonical.encode()).hexdigest()[:16]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.expr.matches(labels)

    def keys(self) -> frozenset[str]:
        return self.expr.keys()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Selector) and self.canonical == other.canonical

    def __hash__(self) -> int:
        return hash(self.canonical)

    def __str__(self) -> str:
        return self.canonical

    def __repr__(self) -> str:
        return f"Selector({self.canonical!r})"

    def and_(self, *others: Selector) -> Selector:
        return Selector(and_(self.expr, *(o.expr for o in others)))


@lru_cache(maxsize=65536)
def _canonical_of(expr: Expr) -> str:
    return expr.canonical()


ALL = Selector(All())


# --- parser --------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<str>"[^"]*"|'[^']*')
      | (?P<op>&&|\|\||==|!=|!|\(|\)|\{|\}|,)
      | (?P<word>[a-zA-Z0-9_./\-]+)
    )""",
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise SelectorError(f"unexpected character {text[pos:].lstrip()[:1]!r} at {pos} in {text!r}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def fail(self, message: str) -> SelectorError:
        where = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        return SelectorError(f"{message} at {where} in selector {self.text!r}")

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        j = self.i + offset
        return (self.tokens[j][0], self.tokens[j][1]) if j < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            raise self.fail(f"expected {value or kind}")
        self.i += 1
        return tok[1]

    def at(self, kind: str, value: str) -> bool:
        return self.peek() == (kind, value)

    def parse(self) -> Expr:
        if not self.tokens:
            return All()
        expr = self.or_expr()
        if self.i != len(self.tokens):
            raise self.fail("unexpected trailing input")
        return expr

    def or_expr(self) -> Expr:
        parts = [self.and_expr()]
        while self.at("op", "||"):
            self.i += 1
            parts.append(self.and_expr())
        return or_(*parts)

    def and_expr(self) -> Expr:
        parts = [self.unary()]
        while self.at("op", "&&"):
            self.i += 1
            parts.append(self.unary())
        return and_(*parts)

    def unary(self) -> Expr:
        if self.at("op", "!"):
            self.i += 1
            return _negate(self.unary())
        if self.at("op", "("):
            self.i += 1
            inner = self.or_expr()
            self.take("op", ")")
            return inner
        return self.term()

    def string(self) -> str:
        return self.take("str")[1:-1]

    def value_set(self) -> frozenset[str]:
        self.take("op", "{")
        values: set[str] = set()
        if not self.at("op", "}"):
            values.add(self.string())
            while self.at("op", ","):
                self.i += 1
                values.add(self.string())
        self.take("op", "}")
        return frozenset(values)

    def term(self) -> Expr:
        tok = self.peek()
        if tok is None or tok[0] != "word":
            raise self.fail("expected a label key, has(), all() or global()")
        word = tok[1]
        if word in ("has", "all", "global") and self.peek(1) == ("op", "("):
            self.i += 2
            if word == "has":
                key = self.take("word")
                self.take("op", ")")
                return Has(key)
            self.take("op", ")")
            return All() if word == "all" else Global()
        self.i += 1
        key = word
        if not _KEY_RE.fullmatch(key):
            raise self.fail(f"bad label key {key!r}")
        tok = self.peek()
        if tok == ("op", "=="):
            self.i += 1
            return Eq(key, self.string())
        if tok == ("op", "!="):
            self.i += 1
            return Ne(key, self.string())
        if tok == ("word", "in"):
            self.i += 1
            return In(key, self.value_set())
        if tok == ("word", "not") and self.peek(1) == ("word", "in"):
            self.i += 2
            return NotIn(key, self.value_set())
        if tok == ("word", "contains"):
            self.i += 1
            return StrMatch(key, "contains", self.string())
        if tok in (("word", "starts"), ("word", "ends")) and self.peek(1) == ("word", "with"):
            self.i += 2
            return StrMatch(key, f"{tok[1]} with", self.string())
        raise self.fail(f"expected an operator after {key!r}")


def _negate(expr: Expr) -> Expr:
    """`!` with the obvious simplifications, so `!(a == "x")` and `a != "x"` share one canonical form."""
    if isinstance(expr, Not):
        return expr.operand
    if isinstance(expr, Eq):
        return Ne(expr.key, expr.value)
    if isinstance(expr, Ne):
        return Eq(expr.key, expr.value)
    if isinstance(expr, In):
        return NotIn(expr.key, expr.values)
    if isinstance(expr, NotIn):
        return In(expr.key, expr.values)
    return Not(expr)


@lru_cache(maxsize=65536)
def parse(text: str) -> Selector:
    """Parse a Calico selector (empty text means all()). Raises SelectorError with the position."""
    return Selector(_Parser(text).parse())


def eq(key: str, value: str) -> Selector:
    return Selector(Eq(key, value))


def in_(key: str, values: frozenset[str] | set[str]) -> Selector:
    return Selector(In(key, frozenset(values)))


def has(key: str) -> Selector:
    return Selector(Has(key))


def prefixed(selector: Selector, prefix: str) -> Selector:
    """The same selector over prefixed keys (namespace labels appear on endpoints as `pcns.<key>`)."""
    return Selector(_prefix(selector.expr, prefix))


def _prefix(expr: Expr, prefix: str) -> Expr:
    if isinstance(expr, (All, Global)):
        return expr
    if isinstance(expr, Has):
        return Has(prefix + expr.key)
    if isinstance(expr, (Eq, Ne)):
        return type(expr)(prefix + expr.key, expr.value)
    if isinstance(expr, (In, NotIn)):
        return type(expr)(prefix + expr.key, expr.values)
    if isinstance(expr, StrMatch):
        return StrMatch(prefix + expr.key, expr.op, expr.value)
    if isinstance(expr, Not):
        return Not(_prefix(expr.operand, prefix))
    if isinstance(expr, And):
        return and_(*(_prefix(o, prefix) for o in expr.operands))
    if isinstance(expr, Or):
        return or_(*(_prefix(o, prefix) for o in expr.operands))
    raise TypeError(expr)


def index_atoms(selector: Selector) -> tuple[frozenset[tuple[str, str]], frozenset[str], frozenset[str]]:
    """What a label change must touch to possibly change this selector's result on an object.

    Returns (value atoms, presence keys, any-change keys): the result can change only if a key's value
    moves to or from one of the value atoms, a presence key appears or disappears, or an any-change key
    changes at all. Lets the label index re-evaluate just the selectors a change can affect.
    """
    values: set[tuple[str, str]] = set()
    presence: set[str] = set()
    anychange: set[str] = set()

    def walk(e: Expr) -> None:
        if isinstance(e, (Eq, Ne)):
            values.add((e.key, e.value))
        elif isinstance(e, (In, NotIn)):
            values.update((e.key, v) for v in e.values)
        elif isinstance(e, Has):
            presence.add(e.key)
        elif isinstance(e, Global):
            presence.add(NAMESPACE_LABEL)
        elif isinstance(e, StrMatch):
            anychange.add(e.key)
        elif isinstance(e, Not):
            walk(e.operand)
        elif isinstance(e, (And, Or)):
            for o in e.operands:
                walk(o)

    walk(selector.expr)
    return frozenset(values), frozenset(presence), frozenset(anychange)


def required_pairs(selector: Selector) -> frozenset[tuple[str, str]]:
    """Label pairs every match must carry (top-level `k == v` conjuncts): lets an index skip the rest."""
    expr = selector.expr
    parts = expr.operands if isinstance(expr, And) else (expr,)
    return frozenset((p.key, p.value) for p in parts if isinstance(p, Eq))
