"""Level 1 acceptance: tokenizer and data loading.

User-level checks in the style of the level notebooks: coarse on purpose (tests/nanochat/ holds the
exact oracles), but each one fails on the bug it names.
"""

import pytest
import torch

from nanochat.dataloader import tokenizing_data_loader
from nanochat.tokenizer import RustBPETokenizer

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Hello world!", "What is 5+3? It is 8."]
B, T = 2, 16


@pytest.fixture(scope="module")
def tokenizer():
    return RustBPETokenizer.train_from_iterator(iter(TEXTS * 50), vocab_size=300)


@pytest.fixture(scope="module")
def batch(tokenizer, device):
    return next(tokenizing_data_loader(tokenizer, TEXTS * 10, B, T, device=device))


def test_bos_is_the_first_token_of_a_string(tokenizer):
    ids = tokenizer.encode("Hello world!", prepend="<|bos|>")
    assert ids[0] == tokenizer.get_bos_token_id(), "FAIL: <|bos|> is not the first token"


def test_bos_is_the_first_token_of_every_row_of_a_batch(tokenizer):
    rows = tokenizer.encode(TEXTS, prepend="<|bos|>")
    assert len(rows) == len(TEXTS)
    assert all(row[0] == tokenizer.get_bos_token_id() for row in rows), "FAIL: a row does not start with <|bos|>"


def test_loader_batches_start_with_bos(tokenizer, batch):
    inputs, _ = batch
    assert inputs[0, 0].item() == tokenizer.get_bos_token_id(), "FAIL: the first document lacks <|bos|>"


def test_batch_shapes(batch):
    inputs, targets = batch
    assert inputs.shape == (B, T) and targets.shape == (B, T), f"FAIL: shapes {inputs.shape}, {targets.shape}"


def test_tokens_are_integers(batch):
    inputs, targets = batch
    assert not inputs.is_floating_point(), f"FAIL: inputs are {inputs.dtype}"
    assert targets.dtype == torch.int64, f"FAIL: targets are {targets.dtype}, cross_entropy wants int64"


def test_targets_differ_from_inputs(batch):
    inputs, targets = batch
    assert not torch.equal(inputs.long(), targets), "FAIL: targets equal inputs: nothing to predict"


def test_targets_are_the_next_tokens(batch):
    inputs, targets = batch
    assert torch.equal(inputs[:, 1:].long(), targets[:, :-1]), "FAIL: targets are not inputs shifted by one"
