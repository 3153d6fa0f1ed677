"""The calculator tool: it computes arithmetic and str.count, and nothing else, quickly.

Its input is model output, i.e. untrusted. The property test throws names, calls, attribute chains,
lambdas, comprehensions and huge sizes at it while every way out of the evaluator (open, import,
exec/eval/compile to code, os/subprocess) is replaced by a sentinel that records the attempt.
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

from nanochat.tools import use_calculator

SECRET = "canary-7f3a9"  # the canary file's content: it must never come back as a result


@pytest.mark.parametrize(
    "expression, expected",
    [
        pytest.param("5+3", 8, id="add"),
        pytest.param("2*3+4", 10, id="precedence"),
        pytest.param("(1+2)*3", 9, id="parentheses"),
        pytest.param("10/4", 2.5, id="divide"),
        pytest.param("7//2", 3, id="floordiv"),
        pytest.param("7%3", 1, id="mod"),
        pytest.param("2**10", 1024, id="power"),
        pytest.param("-3+5", 2, id="negative"),
        pytest.param("1.5*4", 6.0, id="float"),
        pytest.param("1,234 + 1", 1235, id="thousands-separator"),
        pytest.param('"strawberry".count("r")', 3, id="count"),
        pytest.param("'a,b,c'.count(',')", 2, id="count-keeps-commas"),
        pytest.param("'ab' * 3", "ababab", id="string-repeat"),
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
        pytest.param("1" * 2000, id="too-long"),
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
