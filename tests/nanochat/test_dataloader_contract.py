"""The loader at its edge: a stream of exactly B*T + 1 tokens is one whole batch.

Written against a generic (mutmut) mutant that survived test_dataloader.py (`>=` turned into `>`).
"""

import pytest
import torch

from nanochat.dataloader import tokenizing_data_loader

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
