"""The loader and make_batch at their edges: a stream of exactly B*T + 1 tokens is one whole batch, the
device they are given (and the CPU by default), and the message of a wrong token count.

Written against generic (mutmut) mutants that survived test_dataloader.py.
"""

import pytest
import torch

from nanochat.dataloader import make_batch, tokenizing_data_loader

pytestmark = pytest.mark.project_extras  # this loader's signature is this project's own


def test_a_stream_of_exactly_one_batch_and_one_token_gives_that_batch(tokenizer):
    documents = ["The quick brown fox.", "Once upon a time"]
    stream = [t for d in documents for t in [tokenizer.get_bos_token_id()] + tokenizer.encode(d)]
    T = len(stream) - 1  # B * T + 1 == len(stream) with B = 1
    batches = list(tokenizing_data_loader(tokenizer, documents, 1, T))
    assert len(batches) == 1
    inputs, targets = batches[0]
    assert torch.equal(inputs[0], torch.tensor(stream[:-1], dtype=torch.int32))
    assert torch.equal(targets[0], torch.tensor(stream[1:]))
    assert list(tokenizing_data_loader(tokenizer, documents, 1, T + 1)) == []  # one token short: none


def test_make_batch_defaults_to_the_cpu_and_honours_its_device():
    inputs, targets = make_batch(list(range(9)), 2, 4)
    assert inputs.device.type == targets.device.type == "cpu"
    # the meta device stands in for an accelerator: both tensors must go where they are sent
    inputs, targets = make_batch(list(range(9)), 2, 4, device="meta")
    assert inputs.device.type == targets.device.type == "meta"
    assert (inputs.dtype, targets.dtype) == (torch.int32, torch.int64)


def test_the_loader_sends_its_batches_to_its_device(tokenizer):
    inputs, targets = next(tokenizing_data_loader(tokenizer, ["The quick brown fox."] * 4, 1, 4, device="meta"))
    assert inputs.device.type == targets.device.type == "meta"


def test_make_batch_says_how_many_tokens_a_batch_takes():
    with pytest.raises(AssertionError) as raised:
        make_batch(list(range(8)), 2, 4)
    assert str(raised.value) == "a (2, 4) batch takes 9 tokens, got 8"
