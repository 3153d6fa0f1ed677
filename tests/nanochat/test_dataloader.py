"""Pre-training data: <|bos|> before every document, token dtypes, and targets shifted by one.

The expected streams are built by hand ([bos] + the document's plain encoding), never with the code under
test, so a BOS dropped by tokenizer.encode or by the loader's call to it shows up as a different stream.
"""

import itertools

import pytest
import torch

from nanochat.dataloader import make_batch, tokenizing_data_loader

pytestmark = pytest.mark.project_extras  # make_batch and this loader's signature are this project's own

DOCUMENTS = [
    "The quick brown fox.",
    "What is 5+3? The answer is 8.",
    "Once upon a time",
    "12 * 12 = 144",
    "You're welcome!",
]


def hand_stream(tokenizer, documents):
    """The token stream the loader must cut into batches: each document's ids after one <|bos|>."""
    bos = tokenizer.get_bos_token_id()
    return [token for document in documents for token in [bos] + tokenizer.encode(document)]


def test_make_batch_shifts_targets_by_one(device):
    B, T = 3, 5
    # ids above 2**16 so that a narrow intermediate dtype would truncate them
    stream = [100_000 + 7 * i for i in range(B * T + 1)]
    inputs, targets = make_batch(stream, B, T, device=device)
    assert inputs.shape == targets.shape == (B, T)
    assert inputs.cpu().flatten().tolist() == stream[:-1]
    assert targets.cpu().flatten().tolist() == stream[1:]


def test_make_batch_dtypes_and_device(device):
    inputs, targets = make_batch(list(range(2 * 4 + 1)), 2, 4, device=device)
    # int32 inputs (embedding indices), int64 targets (cross_entropy class indices): see dataloader.py
    assert inputs.dtype == torch.int32
    assert targets.dtype == torch.int64
    assert inputs.device.type == targets.device.type == device


def test_loader_batches_are_the_bos_prefixed_stream_shifted_by_one(tokenizer, device):
    B, T = 2, 8
    stream = hand_stream(tokenizer, DOCUMENTS)
    # a tokenizer batch of 2 documents: batches are cut across encode calls too
    batches = list(tokenizing_data_loader(tokenizer, DOCUMENTS, B, T, device=device, tokenizer_batch_size=2))
    assert len(batches) == (len(stream) - 1) // (B * T) >= 2
    for inputs, targets in batches:
        assert inputs.shape == targets.shape == (B, T)
        assert (inputs.dtype, targets.dtype) == (torch.int32, torch.int64)
        assert inputs.device.type == targets.device.type == device
    # consecutive batches overlap by one token: every token after the first is predicted exactly once
    seen_inputs = torch.cat([inputs.flatten() for inputs, _ in batches]).tolist()
    seen_targets = torch.cat([targets.flatten() for _, targets in batches]).tolist()
    assert seen_inputs == stream[: len(seen_inputs)]
    assert seen_targets == stream[1 : len(seen_targets) + 1]


def test_loader_starts_every_document_with_bos(tokenizer):
    bos = tokenizer.get_bos_token_id()
    lengths = [1 + len(tokenizer.encode(document)) for document in DOCUMENTS]
    T = sum(lengths)  # one row holds exactly one pass over the documents
    inputs, targets = next(tokenizing_data_loader(tokenizer, itertools.cycle(DOCUMENTS), 1, T))
    starts = [sum(lengths[:i]) for i in range(len(DOCUMENTS))]
    row = inputs[0].tolist()
    assert [row[start] for start in starts] == [bos] * len(DOCUMENTS)
    assert row.count(bos) == len(DOCUMENTS)
    # the token after the last document is the next epoch's <|bos|>
    assert targets[0, -1].item() == bos


@pytest.mark.parametrize("tokenizer_batch_size", [1, 3, 128])
def test_loader_does_not_depend_on_the_tokenizer_batch_size(tokenizer, tokenizer_batch_size):
    got = list(tokenizing_data_loader(tokenizer, DOCUMENTS, 2, 4, tokenizer_batch_size=tokenizer_batch_size))
    expected = list(tokenizing_data_loader(tokenizer, DOCUMENTS, 2, 4, tokenizer_batch_size=len(DOCUMENTS)))
    assert len(got) == len(expected)
    for (inputs, targets), (expected_inputs, expected_targets) in zip(got, expected, strict=True):
        assert torch.equal(inputs, expected_inputs) and torch.equal(targets, expected_targets)
