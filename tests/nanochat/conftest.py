"""Fixtures for the nanochat suite: tiny, seeded models and a tokenizer trained on a fixed corpus.

Everything under test is built per test (function scope), so a mutant swapped into the code between
tests is always the code that built the object. Both builds take a few milliseconds.

Shared values reach the tests as fixtures, not imports, so the suite runs under any pytest import mode.
"""

import random
import re

import pytest
import torch
import torch.nn as nn

from nanochat.gpt import GPT, GPTConfig
from nanochat.tokenizer import RustBPETokenizer

VOCAB_SIZE = 300
CORPUS = [
    "The quick brown fox jumps over the lazy dog. What is 5+3? The answer is 8.",
    "Let me calculate: 12 * 12 = 144. You're welcome! The word strawberry has 3 r's.",
    "Once upon a time, a user asked the assistant about the numbers 0123456789.",
] * 20

# Tiny but not degenerate: 3 layers (first, middle, last differ), grouped-query attention (4 query
# heads share 2 key/value heads), head_dim 8, and room for sequences longer than any test uses.
TINY = dict(sequence_len=64, vocab_size=VOCAB_SIZE, n_layer=3, n_head=4, n_kv_head=2, n_embd=32)


EXTRAS_MODULE = "pytestmark = pytest.mark.project_extras"


def pytest_ignore_collect(collection_path, config):
    """Under -m "not project_extras", a test module marked project_extras as a whole is not even imported.

    Such modules import this project's own helpers (nanochat.training, dataloader.make_batch, ...), which
    another nanochat need not have: importing them would fail its collection, not just skip them.
    """
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    if not re.search(r"\bnot\s+project_extras\b", config.getoption("markexpr") or ""):
        return None
    return True if EXTRAS_MODULE in collection_path.read_text(encoding="utf-8") else None  # None: decide as usual


@pytest.fixture
def tiny_config():
    return dict(TINY)


@pytest.fixture
def tol(device):
    """atol/rtol for comparing two computations of the same logits.

    float32 on CPU agrees to ~1e-6; CUDA runs the model under bf16 autocast (~1e-2). The bugs these
    tests look for change logits by O(1).
    """
    return dict(atol=1e-4, rtol=1e-4) if device == "cpu" else dict(atol=5e-2, rtol=5e-2)


def _assert_close(actual, expected, atol=1e-5, rtol=1.3e-6):
    """|actual - expected| <= atol + rtol * |expected| everywhere (NaN fails), shapes equal.

    torch.testing.assert_close does this too, but its first call imports torch.distributed (~1 s),
    which would make whichever test calls it first look slow to the mutation runner's timings.
    """
    assert actual.shape == expected.shape, f"shapes differ: {tuple(actual.shape)} vs {tuple(expected.shape)}"
    diff = (actual - expected).abs()
    ok = diff <= atol + rtol * expected.abs()
    assert ok.all(), f"{(~ok).sum().item()} of {ok.numel()} elements differ; max abs diff {diff.max().item():.3g}"


@pytest.fixture
def assert_close():
    return _assert_close


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(1234)
    random.seed(1234)


@pytest.fixture
def tokenizer():
    return RustBPETokenizer.train_from_iterator(iter(CORPUS), vocab_size=VOCAB_SIZE)


@torch.no_grad()
def rerandomize(model, seed=0):
    """Give every projection a full-size random weight.

    init_weights starts the output projections near zero and the lm_head at std 0.001 on purpose, so
    an untrained model's logits barely depend on attention: oracles comparing two attention paths
    would compare near-identical numbers. Full-size weights make every path visible in the logits.
    """
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            bound = 3**0.5 * module.in_features**-0.5  # uniform with std 1/sqrt(fan_in)
            weight = (torch.rand(module.weight.shape, generator=gen) * 2 - 1) * bound
            module.weight.copy_(weight)
    return model


@pytest.fixture
def make_model(device):
    """Factory: make_model(**config overrides) -> an eval-mode GPT on `device` with random weights."""

    def make(seed=0, **overrides):
        torch.manual_seed(seed)
        model = GPT(GPTConfig(**{**TINY, **overrides}))
        model.init_weights()
        rerandomize(model, seed)
        return model.to(device).eval()

    return make


@pytest.fixture
def model(make_model):
    return make_model()
