"""The calculator tool: it computes arithmetic and str.count, and nothing else, quickly.

Its input is model output, i.e. untrusted. The property test throws names, calls, attribute chains,
lambdas, comprehensions and huge sizes at it while every way out of the evaluator (open, import,
exec/eval/compile to code, os/subprocess) is replaced by a sentinel that records the attempt.

What any nanochat's calculator must do is portable: compute plain arithmetic and str.count, refuse code
and unbounded work, never crash generation. Which operators it supports past + - * / and where its
size bounds lie are its own choice: those tests (this calculator's hardening) are marked project_extras.
"""

import ast
import builtins
import contextlib
import os
import subprocess
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

try:
    from nanochat.tools import use_calculator
except ImportError:  # a nanochat may keep its calculator in engine.py
    from nanochat.engine import use_calculator

EXTRAS = pytest.mark.project_extras
SECRET = "canary-7f3a9"  # the canary file's content: it must never come back as a result


@pytest.mark.parametrize(
    "expression, expected",
    [
        pytest.param("5+3", 8, id="add"),
        pytest.param("2*3+4", 10, id="precedence"),
        pytest.param("(1+2)*3", 9, id="parentheses"),
        pytest.param("10/4", 2.5, id="divide"),
        pytest.param("7//2", 3, id="floordiv", marks=EXTRAS),
        pytest.param("7%3", 1, id="mod", marks=EXTRAS),
        pytest.param("2**10", 1024, id="power", marks=EXTRAS),
        pytest.param("-3+5", 2, id="negative"),
        pytest.param("1.5*4", 6.0, id="float"),
        pytest.param("1,234 + 1", 1235, id="thousands-separator"),
        pytest.param('"strawberry".count("r")', 3, id="count"),
        pytest.param("'a,b,c'.count(',')", 2, id="count-keeps-commas"),
        pytest.param("'ab' * 3", "ababab", id="string-repeat", marks=EXTRAS),
    ],
)
def test_calculator_computes(expression, expected):
    result = use_calculator(expression)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("__import__('os').system('true')", id="import"),
        pytest.param("open('canary.txt').read()", id="open"),
        pytest.param("1/0", id="zero-division"),
        pytest.param("9**9**9", id="huge-power"),
        pytest.param("'a' * 10**9", id="huge-string"),
        pytest.param("x + 1", id="name"),
        pytest.param("(lambda: 1)()", id="lambda"),
        pytest.param("[i for i in range(3)]", id="comprehension"),
        pytest.param("().__class__.__bases__[0]", id="attribute-chain"),
        pytest.param("'abc'.upper()", id="other-method"),
        pytest.param("'a' ** 2", id="string-power"),
        pytest.param("1 if 1 else 2", id="conditional"),
        pytest.param("", id="empty"),
        pytest.param("1 +", id="syntax-error"),
        pytest.param("1" * 2000, id="too-long", marks=EXTRAS),
        pytest.param("(1+1).count('a')", id="count-of-a-number"),
        pytest.param("9**4600", id="too-many-digits-to-print", marks=EXTRAS),
        pytest.param("(10**4000)*(10**4000)", id="product-too-many-digits", marks=EXTRAS),
        pytest.param("-(10**4500)", id="sign-of-a-huge-literal-power", marks=EXTRAS),
        pytest.param("'\\ud800'", id="lone-surrogate", marks=EXTRAS),
        pytest.param("'a'*9999+'b'*9999", id="sum-of-long-strings", marks=EXTRAS),
        pytest.param("(10**100)**(10**5)", id="power-of-a-power"),
        pytest.param("2**(10**8)", id="power-huge-exponent"),
        pytest.param("(10**400)**-2", id="negative-power-of-a-huge-base", marks=EXTRAS),
        pytest.param("2.0**(10**400)", id="float-power-huge-int-exponent", marks=EXTRAS),
        pytest.param("(-8)**(1/3)", id="complex-power", marks=EXTRAS),
        pytest.param("-" * 200 + "1", id="deep-nesting", marks=EXTRAS),
    ],
)
def test_calculator_refuses(expression):
    assert use_calculator(expression) is None


class Escape(BaseException):
    """Raised by a sentinel; a BaseException so that no `except Exception` inside can swallow it."""


@contextlib.contextmanager
def sentinels(attempts):
    """Replace every way out of a pure evaluator with a recorder that refuses to proceed."""
    real_compile = builtins.compile

    def refuse(name):
        def sentinel(*args, **kwargs):
            attempts.append(name)
            raise Escape(name)

        return sentinel

    def compile_ast_only(source, filename, mode, flags=0, *args, **kwargs):
        # ast.parse compiles to a syntax tree, which runs nothing; compiling to code is refused
        if not flags & ast.PyCF_ONLY_AST:
            attempts.append("compile")
            raise Escape("compile")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    patches = [(builtins, n) for n in ("open", "__import__", "exec", "eval", "breakpoint", "input")]
    patches += [(os, n) for n in ("system", "popen", "open", "remove", "execv", "fork")]
    patches += [(subprocess, n) for n in ("Popen", "run", "call", "check_output")]
    saved = [(module, name, getattr(module, name)) for module, name in patches]
    try:
        for module, name in patches:
            setattr(module, name, refuse(f"{module.__name__}.{name}"))
        builtins.compile = compile_ast_only
        yield
    finally:
        builtins.compile = real_compile
        for module, name, value in saved:
            setattr(module, name, value)


@pytest.fixture(scope="module")
def canary_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("canary")
    (path / "canary.txt").write_text(SECRET)
    return path


ATOMS = [
    "1", "9", "0", "2.5", "-7", "10**8", "9**9**9", "'a'", '"r"', "'strawberry'", "'canary.txt'",
    "x", "os", "open", "__import__", "exec", "eval", "getattr", "globals()", "__builtins__",
    "lambda: 0", "[i for i in 'ab']", "{1: 2}", "().__class__.__bases__[0].__subclasses__()",
    "open('canary.txt').read()", "__import__('os').system('touch pwned')", "eval('1+1')",
    "'a'*10**9", "9**999999", "(10**5000)*(10**5000)", "2.0**100000",
]  # fmt: skip
BINARY = ["+", "-", "*", "/", "//", "%", "**"]

expressions = st.recursive(
    st.sampled_from(ATOMS),
    lambda inner: st.one_of(
        st.builds(lambda a, op, b: f"({a}){op}({b})", inner, st.sampled_from(BINARY), inner),
        st.builds(lambda a, b: f"{a}.count({b})", inner, inner),
        st.builds(lambda a, b: f"{a}.{b}", inner, st.sampled_from(["__class__", "read()", "system('ls')", "x"])),
        st.builds(lambda f, a: f"{f}({a})", st.sampled_from(["open", "__import__", "exec", "str", "len"]), inner),
    ),
    max_leaves=6,
) | st.text(alphabet="0123456789+-*/%().,'\" _abcdefghijklmnopqrstuvwxyz", max_size=40)


@EXTRAS  # the sentinels refuse eval and compile, which a sandboxed calculator might use
@settings(
    max_examples=120,
    deadline=None,  # the bound below is explicit
    derandomize=True,  # the same examples every run: results are keyed by test id
    database=None,  # write nothing to disk
    suppress_health_check=[HealthCheck.too_slow],
)
@given(expression=expressions)
@example(expression="__import__('os').system('touch pwned')")
@example(expression="open('canary.txt').read()")
@example(expression="9**9**9")
@example(expression="'a'*10**9")
@example(expression="(10**5000)*(10**5000)")
def test_calculator_runs_no_code_and_returns_quickly(canary_dir, expression):
    attempts = []
    cwd = os.getcwd()
    os.chdir(canary_dir)
    try:
        with sentinels(attempts):
            start = time.perf_counter()
            try:
                result = use_calculator(expression)
            except Escape:
                result = None  # attempts records it
            elapsed = time.perf_counter() - start
    finally:
        os.chdir(cwd)
    assert attempts == [], f"{expression!r} tried {attempts}"
    assert elapsed < 0.5, f"{expression!r} took {elapsed:.2f}s"  # unbounded sizes would take minutes
    assert result is None or type(result) in (int, float, str), repr(result)
    assert SECRET not in str(result)
    assert sorted(p.name for p in canary_dir.iterdir()) == ["canary.txt"]


# --- results the engine can use, work bounded before it is done ------------------------------------

HOSTILE = [
    "9**4600", "-(9**4300)", "(10**3999)*(10**3999)", "(9**2000)*(9**2000)", "10**3999+10**3999",
    "2**(10**8)", "(10**100)**(10**5)", "7**-9999999999", "(10**300)**-1000", "2.0**-100000",
    "0.5**-10**9", "2**0.5**-100", "(-8)**(1/3)", "1e308*10", "10**999/3", "(10**999)//7%5",
    "'ab'*4999+'c'", "'a'*10000+'a'", "('x'*5000).count('')", "(1+1).count('a')", "'\\ud800'",
    "'<|python_start|>'", "'é'*3", "1**(10**999)", "(-1)**(10**999+1)", "0**(10**999)",
]  # fmt: skip


@EXTRAS
@pytest.mark.parametrize("expression", HOSTILE)
def test_every_result_renders_with_str_and_tokenises(tokenizer, expression):
    result = use_calculator(expression)  # must not raise either
    if result is not None:
        text = str(result)  # the engine forces str(result) into the sequence
        assert tokenizer.decode(tokenizer.encode(text)) == text


def _digits(n: int) -> float:
    """Decimal digits of |n| (an upper bound), from its bit length: no conversion, no big arithmetic."""
    return abs(n).bit_length() * 0.30103 + 1


def _result_size(op, a, b=None) -> float:
    """The size (digits of an int, characters of a string) the operation would produce, from its
    operands alone: the test's own bound, computed without doing the operation."""
    operands = [x for x in (a, b) if x is not None]
    sizes = [len(x) if isinstance(x, str) else 1 if isinstance(x, float) else _digits(x) for x in operands]
    if op in ("pos", "neg", "truediv", "floordiv", "mod") or any(isinstance(x, float) for x in (a, b)):
        return max(sizes)
    if op == "add":
        return sum(sizes) if isinstance(a, str) else max(sizes) + 1
    if op == "sub":
        return max(sizes) + 1
    if op == "mul":
        if isinstance(a, str) or isinstance(b, str):
            text, count = (a, b) if isinstance(a, str) else (b, a)
            return len(text) * max(count, 0)
        return sizes[0] + sizes[1]
    if op == "pow":
        return 1 if b < 0 or abs(a) <= 1 else b * (abs(a).bit_length() * 0.30103)
    raise AssertionError(op)


@pytest.fixture
def watched(monkeypatch):
    """Every arithmetic operation the calculator does, checked before it runs: its operands are
    bounded and so is the result they imply. Returns the list of operations seen."""
    from nanochat import tools

    seen = []

    def watch(name, real):
        def operation(*operands):
            size = _result_size(name, *operands)
            limit = tools.MAX_STRING_CHARS if any(isinstance(x, str) for x in operands) else tools.MAX_RESULT_DIGITS
            assert size <= limit + 1, f"{name} of operands of sizes {[_result_size('pos', x) for x in operands]}"
            seen.append(name)
            return real(*operands)

        return operation

    binary = {op: watch(real.__name__.strip("_"), real) for op, real in tools._BINARY.items()}
    unary = {op: watch(real.__name__.strip("_"), real) for op, real in tools._UNARY.items()}
    monkeypatch.setattr(tools, "_BINARY", binary)
    monkeypatch.setattr(tools, "_UNARY", unary)
    return seen


@EXTRAS  # watches this calculator's own operation tables
@pytest.mark.parametrize("expression", HOSTILE)
def test_every_operation_is_bounded_before_it_runs(watched, expression):
    use_calculator(expression)


@EXTRAS
def test_the_watch_sees_the_operations_of_valid_expressions(watched):
    assert use_calculator("2**10 + 3*4 - -1") == 1037
    assert sorted(watched) == ["add", "mul", "neg", "pow", "sub"]
    assert use_calculator("'ab' * 3") == "ababab"


# --- the engine: no calculator input crashes generation -------------------------------------------


class ScriptedModel:
    """Wraps a GPT (so the KV cache really fills) and makes it "sample" a script, one token per step."""

    def __init__(self, model, script):
        self.model, self.config, self.script, self.step = model, model.config, script, 0

    def get_device(self):
        return self.model.get_device()

    def forward(self, ids, targets=None, kv_cache=None):
        import torch

        logits = self.model.forward(ids, kv_cache=kv_cache)
        scripted = torch.full_like(logits, -1e4)
        scripted[:, :, self.script[min(self.step, len(self.script) - 1)]] = 0.0
        self.step += 1
        return scripted


ENGINE_ATOMS = [
    "1", "7", "2.5", "1e308", "9**4600", "10**3999", "2**(10**8)", "'a'", "'\\ud800'", "'ab'*4999",
    "(1+1)", "x", "__import__('os')", "(-8)", "0",
]  # fmt: skip

engine_expressions = st.recursive(
    st.sampled_from(ENGINE_ATOMS),
    lambda inner: st.one_of(
        st.builds(lambda a, op, b: f"({a}){op}({b})", inner, st.sampled_from(BINARY), inner),
        st.builds(lambda a, b: f"{a}.count({b})", inner, inner),
        st.builds(lambda a: f"-{a}", inner),
    ),
    max_leaves=4,
) | st.text(alphabet="0123456789+-*/%().,'e ", max_size=24)


@settings(max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(expression=engine_expressions)
@example(expression="9**4600")
@example(expression="'\\ud800'")
@example(expression="(10**3999)*(10**3999)")
@example(expression="(1+1).count('a')")
def test_no_calculator_input_crashes_generation(model, tokenizer, expression):
    from nanochat.engine import Engine

    special = tokenizer.encode_special
    head = [special("<|python_start|>"), *tokenizer.encode(expression), special("<|python_end|>")]
    script = head + tokenizer.encode("Z") * 3
    engine = Engine(ScriptedModel(model, script), tokenizer)
    start = time.perf_counter()
    # up to the first forced token: the tool runs when <|python_end|> is emitted
    tokens = [column[0] for column, _ in engine.generate([tokenizer.get_bos_token_id()], max_tokens=len(head) + 1)]
    elapsed = time.perf_counter() - start
    assert tokens[: len(head)] == head
    if use_calculator(expression) is not None:
        assert tokens[len(head)] == special("<|output_start|>")
    # a generous bound on a loaded machine: unbounded sizes take seconds to minutes (9.4 s seen)
    assert elapsed < 2.0, f"{expression!r} took {elapsed:.2f}s"
