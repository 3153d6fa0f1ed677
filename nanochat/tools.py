"""The calculator tool the model calls between <|python_start|> and <|python_end|>.

Model output is untrusted text, so it is never handed to eval. It is parsed with `ast` and walked by a
small evaluator that knows numbers, strings, arithmetic and `str.count`; anything else (names, calls,
attributes, comprehensions, ...) is refused. Sizes are bounded before computing: a power whose result
would be huge (9**9**9), or a string too long to build, is refused at once instead of hanging.
Every refusal returns None, which the engine reads as "no tool output".
"""

import ast
import math
import operator

MAX_EXPRESSION_CHARS = 1000
MAX_RESULT_DIGITS = 10_000  # bound on the size of any integer result, in decimal digits
MAX_STRING_CHARS = 10_000
MAX_DEPTH = 50  # nesting bound, so deep expressions cannot exhaust the recursion limit

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class _Refused(Exception):
    """The expression is outside what the calculator evaluates."""


def _digits(n) -> float:
    """Approximate decimal digits of a number's magnitude (floats count as their exponent)."""
    n = abs(n)
    return math.log10(n) + 1 if n >= 1 else 1


def _check_size(value):
    if isinstance(value, complex):
        raise _Refused("complex result")
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            raise _Refused("string too long")
    elif isinstance(value, int) and _digits(value) > MAX_RESULT_DIGITS:
        raise _Refused("number too large")
    return value


def _power(base, exponent):
    # Decide from logarithms, before computing, whether the result would be too large.
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if exponent * math.log10(abs(base)) > MAX_RESULT_DIGITS:
            raise _Refused("power too large")
    if isinstance(exponent, float) or isinstance(base, float):
        if abs(exponent) > 10_000:
            raise _Refused("exponent too large")
    return base**exponent


def _multiply(left, right):
    # str * int builds a string: bound its length before building it
    for text, count in ((left, right), (right, left)):
        if isinstance(text, str) and isinstance(count, int) and len(text) * max(count, 0) > MAX_STRING_CHARS:
            raise _Refused("string too long")
    return left * right


def _evaluate(node, depth=0):
    if depth > MAX_DEPTH:
        raise _Refused("expression too deep")
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, depth + 1)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, str):
        return _check_size(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        operand = _evaluate(node.operand, depth + 1)
        if isinstance(operand, str):
            raise _Refused("sign of a string")
        return _UNARY[type(node.op)](operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, depth + 1), _evaluate(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            if isinstance(left, str) or isinstance(right, str):
                raise _Refused("power of a string")
            return _check_size(_power(left, right))
        if isinstance(node.op, ast.Mult):
            return _check_size(_multiply(left, right))
        if isinstance(node.op, ast.Mod) and isinstance(left, str):
            raise _Refused("string formatting")
        return _check_size(_BINARY[type(node.op)](left, right))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "count"
        and len(node.args) == 1
        and not node.keywords
    ):
        # "strawberry".count("r"): the one method the calculator knows
        text, needle = _evaluate(node.func.value, depth + 1), _evaluate(node.args[0], depth + 1)
        if not (isinstance(text, str) and isinstance(needle, str)):
            raise _Refused("count works on strings")
        return text.count(needle)
    raise _Refused(type(node).__name__)


def evaluate_expression(expression: str):
    """The value of an arithmetic or string-count expression, or None if it is refused or fails."""
    if not isinstance(expression, str) or len(expression) > MAX_EXPRESSION_CHARS:
        return None
    try:
        tree = ast.parse(expression.strip(), mode="eval")
        return _evaluate(tree)
    except (_Refused, SyntaxError, ValueError, TypeError, ArithmeticError, RecursionError, MemoryError):
        return None


def use_calculator(expression: str):
    """Run the calculator on model output. Thousands separators in numbers ("1,234") are dropped."""
    if not isinstance(expression, str):
        return None
    if ".count(" not in expression:
        expression = expression.replace(",", "")
    return evaluate_expression(expression)
