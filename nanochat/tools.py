"""The calculator tool the model calls between <|python_start|> and <|python_end|>.

Model output is untrusted text, so it is never handed to eval. It is parsed with `ast` and walked by a
small evaluator that knows numbers, strings, arithmetic and `str.count`; anything else (names, calls,
attributes, comprehensions, ...) is refused. Every refusal, and every failure, returns None, which the
engine reads as "no tool output": the calculator never raises.

The work is bounded before it is done. Each operation first predicts the size of its result from the
sizes of its operands (decimal digits of an integer from its bit length, characters of a string) and
refuses when the prediction passes a bound; only then does it compute. Operands are results of earlier
operations, so they are bounded too, and every single operation is a small one: no power, product,
repetition or count ever runs on a size past the bounds. A result is returned only if the engine can
use it: `str()` renders it (Python refuses ints past 4,300 digits) and it encodes as UTF-8, so the
tokenizer takes it (a lone surrogate such as '\\ud800' does not).
"""

import ast
import math
import operator

MAX_EXPRESSION_CHARS = 1000
MAX_RESULT_DIGITS = 4000  # bound on any integer, in decimal digits: under str()'s 4,300-digit limit
MAX_STRING_CHARS = 10_000
MAX_FLOAT_EXPONENT = 10_000  # |exponent| of a power with a float operand
MAX_DEPTH = 50  # nesting bound, so deep expressions cannot exhaust the recursion limit
_LOG10_2 = math.log10(2)

# Every computation goes through these tables, after its size check (tests watch them).
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


def digits(n: int) -> int:
    """An upper bound on the decimal digits of an integer, from its bit length (no conversion)."""
    return int(abs(n).bit_length() * _LOG10_2) + 1


def _size(value) -> float:
    """Digits of an int, characters of a string; a float's size is fixed."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, int):
        return digits(value)
    return 1


def _check_operands(op: type, left, right):
    """Refuse, before computing, an operation whose result would pass the bounds."""
    texts = isinstance(left, str), isinstance(right, str)
    if op is ast.Mod and texts[0]:
        raise _Refused("string formatting")
    if op is ast.Pow:
        if any(texts):
            raise _Refused("power of a string")
        _check_power(left, right)
    elif op is ast.Mult and any(texts):
        text, count = (left, right) if texts[0] else (right, left)
        if isinstance(count, int) and len(text) * max(count, 0) > MAX_STRING_CHARS:
            raise _Refused("string too long")
    elif op is ast.Mult and isinstance(left, int) and isinstance(right, int):
        if digits(left) + digits(right) > MAX_RESULT_DIGITS:
            raise _Refused("product too large")
    elif op is ast.Add and all(texts):
        if len(left) + len(right) > MAX_STRING_CHARS:
            raise _Refused("string too long")
    elif op in (ast.Add, ast.Sub) and isinstance(left, int) and isinstance(right, int):
        if max(digits(left), digits(right)) + 1 > MAX_RESULT_DIGITS:
            raise _Refused("sum too large")
    # Division, floor division and modulo never grow an integer; any float result is fixed-size.


def _check_power(base, exponent):
    if isinstance(base, float) or isinstance(exponent, float):
        # float powers are O(1), but an int operand is converted to a float first (too large: refused)
        if abs(exponent) > MAX_FLOAT_EXPONENT:
            raise _Refused("exponent too large")
        if isinstance(base, int) and digits(base) > 308 or isinstance(exponent, int) and digits(exponent) > 308:
            raise _Refused("operand too large for a float")
        return
    if exponent < 0:
        # an int to a negative power is a float: base must convert, the exponent is applied in floats
        if digits(base) > 308 or digits(exponent) > 308:
            raise _Refused("operand too large for a float")
        return
    if abs(base) > 1 and exponent * (abs(base).bit_length() - 1) * _LOG10_2 > MAX_RESULT_DIGITS:
        # bit_length - 1 is a lower bound on log2|base|: a refusal here is certain to be right
        raise _Refused("power too large")
    if abs(base) > 1 and exponent * math.log10(abs(base)) > MAX_RESULT_DIGITS:
        raise _Refused("power too large")


def _check_result(value):
    if isinstance(value, complex) or not isinstance(value, (int, float, str)) or isinstance(value, bool):
        raise _Refused("not a number or string")
    if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
        raise _Refused("string too long")
    if isinstance(value, int) and digits(value) > MAX_RESULT_DIGITS:
        raise _Refused("number too large")
    return value


def _evaluate(node, depth=0):
    if depth > MAX_DEPTH:
        raise _Refused("expression too deep")
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, depth + 1)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, str):
        return _check_result(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        operand = _evaluate(node.operand, depth + 1)
        if isinstance(operand, str):
            raise _Refused("sign of a string")
        return _check_result(_UNARY[type(node.op)](operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, depth + 1), _evaluate(node.right, depth + 1)
        _check_operands(type(node.op), left, right)
        return _check_result(_BINARY[type(node.op)](left, right))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "count"
        and len(node.args) == 1
        and not node.keywords
    ):
        # "strawberry".count("r"): the one method the calculator knows (on strings bounded above)
        text, needle = _evaluate(node.func.value, depth + 1), _evaluate(node.args[0], depth + 1)
        if not (isinstance(text, str) and isinstance(needle, str)):
            raise _Refused("count works on strings")
        return text.count(needle)
    raise _Refused(type(node).__name__)


def _usable(value):
    """The value if the engine can print and tokenise it, else None."""
    try:
        str(value).encode("utf-8")
    except (ValueError, UnicodeError):
        return None
    return value


def evaluate_expression(expression: str):
    """The value of an arithmetic or string-count expression, or None if it is refused or fails."""
    if not isinstance(expression, str) or len(expression) > MAX_EXPRESSION_CHARS:
        return None
    try:
        tree = ast.parse(expression.strip(), mode="eval")
        return _usable(_evaluate(tree))
    except Exception:  # noqa: BLE001 -- untrusted input: any failure (parser limits included) means "no output"
        return None


def use_calculator(expression: str):
    """Run the calculator on model output. Thousands separators in numbers ("1,234") are dropped."""
    if not isinstance(expression, str):
        return None
    if ".count(" not in expression:
        expression = expression.replace(",", "")
    return evaluate_expression(expression)
