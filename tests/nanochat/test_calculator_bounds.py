"""The calculator's bounds, at their edges: this project's own limits (MAX_RESULT_DIGITS, MAX_STRING_CHARS,
the 308-digit float range, MAX_FLOAT_EXPONENT), what is computed just inside them and refused just outside,
and that refused work is refused before it runs.

Written against generic (mutmut) mutants of nanochat/tools.py that survived test_calculator.py. A size
estimate here is the one the calculator documents: decimal digits of an integer from its bit length.
"""

import math

import pytest

from nanochat import tools
from nanochat.tools import use_calculator

pytestmark = pytest.mark.project_extras  # the limits are this calculator's own choice


def estimate(n):
    """Decimal digits of |n| as the calculator estimates them: int(bit_length * log10(2)) + 1."""
    return int(abs(n).bit_length() * math.log10(2)) + 1


def power_of_two_with_estimate(digits):
    """An exponent b such that 2**b is estimated at exactly `digits` digits."""
    return next(b for b in range(20 * digits) if estimate(2**b) == digits)


@pytest.mark.parametrize(
    "expression, expected",
    [
        pytest.param("1.5+2.5", 4.0, id="float-sum"),
        pytest.param("2.0**3", 8.0, id="float-base-int-exponent"),
        pytest.param("2**0.5", 2**0.5, id="int-base-float-exponent"),
        pytest.param("1.0**10000", 1.0, id="float-exponent-at-its-bound"),
        pytest.param("2**-1", 0.5, id="negative-exponent"),
        pytest.param("(10**400)**0", 1, id="zero-exponent-of-a-huge-base"),
        pytest.param("0**0", 1, id="zero-to-the-zero"),
        pytest.param("0**5", 0, id="zero-base"),
        pytest.param("2**2000", 2**2000, id="602-digit-power-of-2"),
        pytest.param("3**2000", 3**2000, id="955-digit-power-of-3"),
        pytest.param("2**7000", 2**7000, id="2108-digit-power-of-2"),
        pytest.param("'a'*10000", "a" * 10000, id="string-repeat-at-its-bound"),
        pytest.param("'a'*5000+'b'*5000", "a" * 5000 + "b" * 5000, id="string-sum-at-its-bound"),
        pytest.param("'ab'*0", "", id="string-repeat-zero"),
        pytest.param("3*'ab'", "ababab", id="count-first-repeat"),
    ],
)
def test_computes_inside_the_bounds(expression, expected):
    result = use_calculator(expression)
    assert result == expected and type(result) is type(expected)


def test_float_range_edges_of_a_power():
    inside, outside = 2**1020, 2**1023  # estimated at 308 and 309 digits: the float range's edge is 308
    assert (estimate(inside), estimate(outside)) == (308, 309)
    assert use_calculator(f"({inside})**0.5") == inside**0.5
    assert use_calculator(f"({outside})**0.5") is None
    assert use_calculator(f"({inside})**-1") == inside**-1
    assert use_calculator(f"({outside})**-1") is None
    assert use_calculator(f"2**-({inside})") == 0.0
    assert use_calculator(f"2**-({outside})") is None


def test_product_digit_bound_edges():
    half = power_of_two_with_estimate(2000)
    more = power_of_two_with_estimate(2001)
    assert use_calculator(f"(2**{half})*(2**{half})") == 2 ** (2 * half)  # estimates sum to 4000: computed
    assert use_calculator(f"(2**{half})*(2**{more})") is None  # 4001: refused


def test_sum_digit_bound_edges():
    below, at = power_of_two_with_estimate(3999), power_of_two_with_estimate(4000)
    assert use_calculator(f"2**{below}+1") == 2**below + 1  # 3999 digits + 1 may carry to 4000: computed
    assert use_calculator(f"2**{at}+1") is None  # 4000 digits + 1 could carry past the bound: refused


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("'%d' % 5", id="string-formatting"),
        pytest.param("(2**1023)**0.5", id="float-of-a-309-digit-int"),
        pytest.param("(-8)**(1/3)", id="complex-result"),
    ],
)
def test_refuses_outside_the_bounds(expression):
    assert use_calculator(expression) is None


@pytest.fixture
def operations(monkeypatch):
    """Every arithmetic operation the calculator runs, as (name, operands)."""
    ran = []

    def record(name, real):
        def operation(*operands):
            ran.append((name, operands))
            return real(*operands)

        return operation

    monkeypatch.setattr(tools, "_BINARY", {op: record(f.__name__, f) for op, f in tools._BINARY.items()})
    monkeypatch.setattr(tools, "_UNARY", {op: record(f.__name__, f) for op, f in tools._UNARY.items()})
    return ran


@pytest.mark.parametrize(
    "expression, refused_operation",
    [
        pytest.param("(10**5)*'ab'", "mul", id="count-first-string-repeat"),
        pytest.param("(10**3999)*(10**3999)", "mul", id="product"),
        pytest.param("'a'*9999+'b'*9999", "add", id="string-sum"),
        pytest.param("'a'*9999+'bb'", "add", id="string-sum-just-over"),
    ],
)
def test_refused_work_never_runs(operations, expression, refused_operation):
    assert use_calculator(expression) is None
    # the operands were computed, then the operation itself was refused before it ran
    assert operations and operations[-1][0] != refused_operation, [name for name, _ in operations]


def test_result_and_expression_length_bounds_are_inclusive():
    at = power_of_two_with_estimate(4000)
    assert use_calculator(f"2**{at}") == 2**at  # an integer estimated at exactly MAX_RESULT_DIGITS digits
    assert use_calculator("1" * 1000) == int("1" * 1000)  # exactly MAX_EXPRESSION_CHARS characters
    assert use_calculator("1" * 1001) is None


def left_sum(count, leaf="1"):
    """count additions nested to the left: ((1+1)+1)+...; its deepest leaf lies `count` levels below it."""
    return "(" * (count - 1) + leaf + "".join(f"+{leaf})" for _ in range(count - 1)) + f"+{leaf}"


def right_sum(count, leaf="1"):
    return "".join(f"{leaf}+(" for _ in range(count - 1)) + f"{leaf}+{leaf}" + ")" * (count - 1)


# Nesting: the parsed expression is level 0, each node one level below its parent (a method call's
# receiver and argument one below the call); deeper than MAX_DEPTH (50) is refused.
@pytest.mark.parametrize(
    "deepest_allowed, nested",
    [
        pytest.param(49, lambda k: "-" * k + "1", id="signs"),  # k signs: the literal at level k + 1
        pytest.param(49, left_sum, id="left-nested-sum"),
        pytest.param(49, right_sum, id="right-nested-sum"),
        pytest.param(48, lambda k: f"({left_sum(k, repr('a'))}).count('a')", id="count-of-a-nested-receiver"),
        pytest.param(48, lambda k: f"'aaa'.count({left_sum(k, repr('a'))})", id="count-of-a-nested-argument"),
    ],
)
def test_nesting_bound_edges(deepest_allowed, nested):
    assert use_calculator(nested(deepest_allowed)) is not None
    assert use_calculator(nested(deepest_allowed + 1)) is None


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("'abc'.count('a', 1)", id="count-with-a-second-argument"),
        pytest.param("'abc'.count('a', start=1)", id="count-with-a-keyword"),
        pytest.param("'abc'.find('b')", id="another-one-argument-method"),
    ],
)
def test_only_count_with_one_argument_is_a_call(expression):
    assert use_calculator(expression) is None
