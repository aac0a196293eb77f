"""A small, safe evaluator for ``when`` conditions and ``if_expression`` (pure; never ``eval``).

Syntax (Argo's ``when``, govaluate style): ``||``, ``&&``, ``!``, ``==``, ``!=``, ``<``,
``<=``, ``>``, ``>=``, ``+``, ``-``, ``*``, ``/``, ``%``, parentheses; number and quoted
string literals; ``true``/``false``/``null``; a bare word is a string (``== heads``). A ``{{...}}``
reference is one token whose value comes from the scope, so a parameter's text can never
add operators to the expression. Strings that look like numbers compare as numbers.

>>> from hpcflow.daemon.resolve import Scope
>>> s = Scope(inputs={"parameters": {"i": 3, "coin": "heads"}})
>>> evaluate("{{inputs.parameters.i}} < 5 && {{inputs.parameters.coin}} == heads", s)
True
>>> evaluate("!({{inputs.parameters.i}} * 2 >= 7)", s)
True
"""

from __future__ import annotations

import re
from typing import Any

from hpcflow.daemon.resolve import ResolveError, Scope, lookup
from hpcflow.values import short_repr

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<ref>\{\{\s*[^{}]+?\s*\}\})
    | (?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>\|\||&&|==|!=|<=|>=|[<>!()+\-*/%])
    | (?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)
    )""", re.VERBOSE)


class ConditionError(ResolveError):
    """The expression cannot be parsed or evaluated; the message quotes it."""


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ConditionError(f"cannot parse at {text[pos:pos + 15]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return value
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    if isinstance(left, bool) != isinstance(right, bool) and op in ("==", "!="):
        # dflow compares a parameter's text with true/false: "true" == true, 1 != true
        left, right = (v if isinstance(v, bool) else
                       v.lower() if isinstance(v, str) and v.lower() in ("true", "false")
                       else v for v in (left, right))
        left, right = (("true" if v else "false") if isinstance(v, bool) else v
                       for v in (left, right))
    elif isinstance(left, str) != isinstance(right, str):
        left, right = _number(left), _number(right)
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    try:
        return bool({"<": left < right, "<=": left <= right, ">": left > right,
                     ">=": left >= right}[op])
    except TypeError as exc:
        raise ConditionError(f"cannot compare {short_repr(left)} {op} {short_repr(right)}") from exc


class _Parser:
    def __init__(self, text: str, scope: Scope | None) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.scope = scope  # None: check the syntax only, compute nothing

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise ConditionError("it ends too early")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.pos != len(self.tokens):
            raise ConditionError(f"unexpected {self.peek()!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            value = bool(value) or bool(right)
        return value

    def and_(self) -> Any:
        value = self.not_()
        while self.peek() == "&&":
            self.take()
            right = self.not_()
            value = bool(value) and bool(right)
        return value

    def not_(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not bool(self.not_())
        return self.comparison()

    def comparison(self) -> Any:
        value = self.additive()
        while self.peek() in ("==", "!=", "<", "<=", ">", ">="):
            op = self.take()[1]
            right = self.additive()
            value = None if self.scope is None else _compare(op, value, right)
        return value

    def additive(self) -> Any:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            right = self.term()
            value = self._arith(op, value, right)
        return value

    def term(self) -> Any:
        value = self.unary()
        while self.peek() in ("*", "/", "%"):
            op = self.take()[1]
            value = self._arith(op, value, self.unary())
        return value

    def unary(self) -> Any:
        if self.peek() == "-":
            self.take()
            return self._arith("-", 0, self.unary())
        return self.atom()

    def _arith(self, op: str, left: Any, right: Any) -> Any:
        if self.scope is None:
            return None
        a, b = _number(left), _number(right)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)):
            raise ConditionError(f"cannot compute {short_repr(left)} {op} "
                                 f"{short_repr(right)}: not numbers")
        try:
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            if op == "/":
                return a / b
            return a % b
        except (TypeError, ZeroDivisionError) as exc:
            raise ConditionError(f"cannot compute {short_repr(left)} {op} "
                                 f"{short_repr(right)}") from exc

    def atom(self) -> Any:
        kind, text = self.take()
        if kind == "ref":
            if self.scope is None:
                return None
            return self.scope.value(lookup(text[2:-2].strip(), self.scope))
        if kind == "num":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "str":
            return text[1:-1].encode().decode("unicode_escape")
        if kind == "word":
            return {"true": True, "false": False, "null": None}.get(text.lower(), text)
        if text == "(":
            value = self.or_()
            if self.take()[1] != ")":
                raise ConditionError("missing ')'")
            return value
        raise ConditionError(f"unexpected {text!r}")


def evaluate(text: str, scope: Scope) -> Any:
    """The value of ``text`` in ``scope``; a ``ConditionError`` that quotes it otherwise."""
    try:
        return _Parser(text, scope).parse()
    except ResolveError as exc:
        raise ConditionError(f"{text!r}: {exc}") from exc


def check_syntax(text: str) -> None:
    """Raise ``ConditionError`` if ``text`` cannot be parsed (references are not resolved)."""
    try:
        _Parser(text, None).parse()
    except ConditionError as exc:
        raise ConditionError(f"{text!r}: {exc}") from exc


def is_true(text: str, scope: Scope) -> bool:
    value = evaluate(text, scope)
    if isinstance(value, str):
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConditionError(f"{text!r}: gives the text {short_repr(value)}, not true or false")
    return bool(value)
