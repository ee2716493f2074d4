"""Metric math as CloudWatch evaluates it for an alarm, on series of period datapoints (None = missing).

Supported: numbers, metric ids, + - * / (unary minus too), comparisons (> < >= <= == !=, 1 or 0), AND/&&,
OR/||, parentheses, arrays ``[a, b]``, and the functions IF(condition, a[, b]), FILL(series, number),
SUM/MAX/MIN/AVG([series, ...]) (element-wise over the array, ignoring missing points). Anything else raises
:class:`UnsupportedExpressionError`, so an alarm using a function the simulator does not know cannot pass unseen.
Arithmetic on a missing point gives a missing point, as does a division by zero (CloudWatch drops both).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

Series = list[float | None]


@dataclass(frozen=True, slots=True)
class _Array:
    """``[a, b, ...]``: only an argument of SUM, MAX, MIN or AVG."""

    items: list[Series]


Value = Series | float | _Array

_TOKEN: Final[re.Pattern[str]] = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>&&|\|\||<=|>=|==|!=|[-+*/()<>,\[\]]))"
)
_COMPARISONS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
_AGGREGATES: Final[dict[str, Callable[[list[float]], float]]] = {
    "SUM": sum,
    "MAX": max,
    "MIN": min,
    "AVG": lambda values: sum(values) / len(values),
}


class UnsupportedExpressionError(ValueError):
    """The expression uses syntax or a function the simulator does not evaluate."""


def tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise UnsupportedExpressionError(f"cannot read {text[position:]!r} in {text!r}")
        tokens.append(match.group(match.lastgroup or "op"))
        position = match.end()
    return tokens


def evaluate(text: str, variables: Mapping[str, Series], length: int) -> Series:
    """The expression over ``length`` periods, with ``variables`` (metric id -> series) in scope."""
    result = _Parser(tokenize(text), variables, length).parse()
    return _series(result, length)


def _series(value: Value, length: int) -> Series:
    if isinstance(value, float):
        return [value] * length
    if isinstance(value, _Array):
        raise UnsupportedExpressionError("an array is only an argument of SUM, MAX, MIN or AVG")
    return value


def _combine(left: Value, right: Value, length: int, operation: Callable[[float, float], float | None]) -> Value:
    if isinstance(left, float) and isinstance(right, float):
        result = operation(left, right)
        if result is None:
            raise UnsupportedExpressionError("a constant division by zero")
        return result
    a, b = _series(left, length), _series(right, length)
    return [None if x is None or y is None else operation(x, y) for x, y in zip(a, b, strict=True)]


def _arithmetic(operator: str) -> Callable[[float, float], float | None]:
    if operator == "+":
        return lambda a, b: a + b
    if operator == "-":
        return lambda a, b: a - b
    if operator == "*":
        return lambda a, b: a * b
    return lambda a, b: None if b == 0 else a / b


class _Parser:
    def __init__(self, tokens: list[str], variables: Mapping[str, Series], length: int) -> None:
        self.tokens = tokens
        self.at = 0
        self.variables = variables
        self.length = length

    def parse(self) -> Value:
        value = self.disjunction()
        if self.at != len(self.tokens):
            raise UnsupportedExpressionError(f"unexpected {self.tokens[self.at]!r}")
        return value

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        symbol = self.peek()
        if symbol is None or (expected is not None and symbol != expected):
            raise UnsupportedExpressionError(f"expected {expected or 'more'}, found {symbol!r}")
        self.at += 1
        return symbol

    def disjunction(self) -> Value:
        value = self.conjunction()
        while self.peek() in ("OR", "||"):
            self.take()
            value = _combine(value, self.conjunction(), self.length, lambda a, b: float(bool(a) or bool(b)))
        return value

    def conjunction(self) -> Value:
        value = self.comparison()
        while self.peek() in ("AND", "&&"):
            self.take()
            value = _combine(value, self.comparison(), self.length, lambda a, b: float(bool(a) and bool(b)))
        return value

    def comparison(self) -> Value:
        value = self.sum()
        operator = self.peek()
        if operator in _COMPARISONS:
            self.take()
            test = _COMPARISONS[operator]
            value = _combine(value, self.sum(), self.length, lambda a, b: float(test(a, b)))
        return value

    def sum(self) -> Value:
        value = self.product()
        while self.peek() in ("+", "-"):
            operator = self.take()
            value = _combine(value, self.product(), self.length, _arithmetic(operator))
        return value

    def product(self) -> Value:
        value = self.unary()
        while self.peek() in ("*", "/"):
            operator = self.take()
            value = _combine(value, self.unary(), self.length, _arithmetic(operator))
        return value

    def unary(self) -> Value:
        if self.peek() == "-":
            self.take()
            return _combine(-1.0, self.unary(), self.length, _arithmetic("*"))
        return self.primary()

    def primary(self) -> Value:
        symbol = self.take()
        if symbol == "(":
            value = self.disjunction()
            self.take(")")
            return value
        if symbol == "[":
            items = [self.disjunction()]
            while self.peek() == ",":
                self.take()
                items.append(self.disjunction())
            self.take("]")
            return _Array([_series(item, self.length) for item in items])
        if symbol[0].isdigit() or symbol[0] == ".":
            return float(symbol)
        if self.peek() == "(":
            return self.call(symbol)
        if symbol in self.variables:
            return list(self.variables[symbol])
        raise UnsupportedExpressionError(f"unknown name {symbol!r} (not a metric id in the alarm)")

    def arguments(self) -> list[Value]:
        self.take("(")
        arguments = [self.disjunction()]
        while self.peek() == ",":
            self.take()
            arguments.append(self.disjunction())
        self.take(")")
        return arguments

    def call(self, function: str) -> Value:
        arguments = self.arguments()
        if function == "IF" and len(arguments) in (2, 3):
            return _if(arguments, self.length)
        if function == "FILL" and len(arguments) == 2 and isinstance(arguments[1], float):
            fill = arguments[1]
            filled: Series = [fill if point is None else point for point in _series(arguments[0], self.length)]
            return filled
        if function in _AGGREGATES and len(arguments) == 1 and isinstance(arguments[0], _Array):
            return _aggregate(_AGGREGATES[function], arguments[0].items, self.length)
        raise UnsupportedExpressionError(f"{function}() with {len(arguments)} argument(s) is not simulated")


def _if(arguments: Sequence[Value], length: int) -> Series:
    condition = _series(arguments[0], length)
    then = _series(arguments[1], length)
    otherwise = _series(arguments[2], length) if len(arguments) == 3 else [None] * length
    return [
        None if test is None else (yes if test else no)
        for test, yes, no in zip(condition, then, otherwise, strict=True)
    ]


def _aggregate(function: Callable[[list[float]], float], array: list[Series], length: int) -> Series:
    result: Series = []
    for index in range(length):
        present = [point for series in array if (point := series[index]) is not None]
        result.append(function(present) if present else None)
    return result
