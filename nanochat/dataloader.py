"""Pre-training data: documents -> one token stream -> (inputs, targets) batches of shape (B, T).

Every document is encoded with <|bos|> in front, so the model always sees where a document begins, and
the documents are concatenated into one stream without padding. A batch is B*T + 1 consecutive tokens
of that stream: inputs are all but the last, targets all but the first (the token that follows each
input), both viewed as B rows of T. The last token of a batch is kept as the first token of the next,
so every token of the stream is predicted exactly once.

Dtypes: inputs are int32 (half the memory of int64; nn.Embedding accepts either), targets are int64
(what F.cross_entropy needs for class indices, with -1 as its ignore_index).
"""

import itertools

import torch


def make_batch(tokens, B, T, device="cpu"):
    """(inputs, targets), each (B, T), from a flat list of exactly B*T + 1 token ids."""
    assert len(tokens) == B * T + 1, f"a ({B}, {T}) batch takes {B * T + 1} tokens, got {len(tokens)}"
    tokens = torch.tensor(tokens, dtype=torch.int64)
    inputs = tokens[:-1]
    targets = tokens[1:]
    inputs = inputs.view(B, T).to(device=device, dtype=torch.int32)
    targets = targets.view(B, T).to(device=device, dtype=torch.int64)
    return inputs, targets


def tokenizing_data_loader(tokenizer, documents, B, T, device="cpu", tokenizer_batch_size=128):
    """Yield (inputs, targets) batches of shape (B, T) from an iterable of document strings.

    Documents are encoded tokenizer_batch_size at a time. The generator ends when `documents` runs out
    (the tokens left over, fewer than a batch, are dropped): pass itertools.cycle(corpus) for epochs.
    """
    needed = B * T + 1
    documents = iter(documents)
    buffer = []
    while texts := list(itertools.islice(documents, tokenizer_batch_size)):
        for ids in tokenizer.encode(texts, prepend="<|bos|>"):
            buffer.extend(ids)
        while len(buffer) >= needed:
            yield make_batch(buffer[:needed], B, T, device)
            del buffer[: needed - 1]  # keep the last target: it is the next batch's first input
