"""Level 1 acceptance tests: each one checks a property the fixed tokenizer and data loader must have.

Run them with `pytest tests/`. They train a tiny tokenizer on the CPU and take a few seconds.
"""

import pytest
import torch

from nanochat.dataloader import make_batch, tokenizing_data_loader
from nanochat.tokenizer import RustBPETokenizer

DOCUMENTS = ["The quick brown fox jumps over the lazy dog.", "Hello world!", "What is 5+3? It is 8.", "Bye."]


@pytest.fixture(scope="module")
def tokenizer():
    return RustBPETokenizer.train_from_iterator(iter(DOCUMENTS * 50), vocab_size=300)


def stream(tokenizer, documents):
    """What the loader must produce: every document's plain ids, each after one <|bos|>."""
    bos = tokenizer.get_bos_token_id()
    return [token for document in documents for token in [bos, *tokenizer.encode(document)]]


def test_encode_puts_bos_first_for_a_string(tokenizer):
    plain = tokenizer.encode("Hello world!")
    assert tokenizer.encode("Hello world!", prepend="<|bos|>") == [tokenizer.get_bos_token_id(), *plain]


def test_encode_puts_bos_first_for_every_row_of_a_list(tokenizer):
    bos = tokenizer.get_bos_token_id()
    rows = tokenizer.encode(DOCUMENTS, prepend="<|bos|>")
    assert rows == [[bos, *tokenizer.encode(document)] for document in DOCUMENTS]


def test_batches_hold_ids_of_the_right_dtypes():
    inputs, targets = make_batch(list(range(2 * 4 + 1)), 2, 4)
    assert inputs.dtype == torch.int32, "inputs are int32 (embedding indices)"
    assert targets.dtype == torch.int64, "targets are int64 (what cross_entropy takes)"


def test_large_token_ids_survive_a_batch():
    ids = [70_000 + 13 * i for i in range(3 * 5 + 1)]  # beyond what 16 bits can hold
    inputs, targets = make_batch(ids, 3, 5)
    assert inputs.flatten().tolist() == ids[:-1]
    assert targets.flatten().tolist() == ids[1:]


def test_targets_are_the_inputs_shifted_by_one():
    ids = list(range(100, 100 + 2 * 6 + 1))
    inputs, targets = make_batch(ids, 2, 6)
    assert inputs.shape == targets.shape == (2, 6)
    assert torch.equal(targets.long(), inputs.long() + 1), "target t must be the token after input t"


def test_loader_batches_cut_the_bos_stream_with_one_shared_token(tokenizer):
    B, T = 2, 5
    expected = stream(tokenizer, DOCUMENTS)
    batches = list(tokenizing_data_loader(tokenizer, DOCUMENTS, B, T, tokenizer_batch_size=2))
    assert len(batches) == (len(expected) - 1) // (B * T) >= 2
    # the last target of one batch is the first input of the next: every token is predicted once
    inputs = torch.cat([x.flatten() for x, _ in batches]).tolist()
    targets = torch.cat([y.flatten() for _, y in batches]).tolist()
    assert inputs == expected[: len(inputs)]
    assert targets == expected[1 : len(targets) + 1]
