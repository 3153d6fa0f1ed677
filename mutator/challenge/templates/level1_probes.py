# Probe cells for the level-1 challenge notebook. Each "# %% <name>" line starts a cell: "setup" runs
# first, then one cell per class of the level. Probes print what they measure; none of them raises,
# so the notebook runs top to bottom on broken and fixed code alike.

# %% setup
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))  # this workspace's nanochat, not an installed one
import torch

from nanochat.dataloader import make_batch, tokenizing_data_loader
from nanochat.tokenizer import RustBPETokenizer

documents = ["The quick brown fox jumps over the lazy dog.", "Hello world!", "What is 5+3? It is 8.", "Bye."]
tokenizer = RustBPETokenizer.train_from_iterator(iter(documents * 50), vocab_size=300)
bos = tokenizer.get_bos_token_id()


DIAGNOSE = True  # easy: a probe prints what it found wrong; above easy, only what a user sees


def report(ok, what):
    print(("OK      " if ok else "PROBLEM ") + what)


def probe(what, check):
    """Run one check; an exception is a finding too, not a reason to stop the notebook."""
    try:
        report(check(), what)
    except Exception as error:
        first = (str(error).splitlines() or [""])[0]
        report(False, f"{what}: raised {type(error).__name__}: {first}")


print("nanochat loaded from", sys.modules["nanochat"].__file__)
print("<|bos|> is token", bos)

# %% bos-missing
# Every document starts with <|bos|>: encode(..., prepend="<|bos|>") puts it first, for one string and
# for every row of a list, and the data loader asks for it.


def string_starts_with_bos():
    one = tokenizer.encode("Hello world!", prepend="<|bos|>")
    print("encode('Hello world!', prepend='<|bos|>') ->", one)
    return one[:1] == [bos] and one[1:] == tokenizer.encode("Hello world!")


def rows_start_with_bos():
    rows = tokenizer.encode(documents, prepend="<|bos|>")
    print("first token of each row:", [row[:1] for row in rows])
    return all(row[:1] == [bos] for row in rows)


probe("a string starts with <|bos|>", string_starts_with_bos)
probe("every row of a list starts with <|bos|>", rows_start_with_bos)


def loader_document_starts():
    lengths = [len(tokenizer.encode(d)) + 1 for d in documents]  # one row holds one pass over them
    inputs, _ = next(tokenizing_data_loader(tokenizer, itertools.cycle(documents), 1, sum(lengths)))
    row = inputs[0].long().tolist()
    print("first loader row:", tokenizer.decode(row))
    return row.count(bos) == len(documents)


probe("the loader puts one <|bos|> before each document", loader_document_starts)

# %% token-dtype
# Inputs are int32 (embedding indices), targets int64 (what cross_entropy takes), and no id may change
# on the way, however large the vocabulary.
ids = [70_000 + 13 * i for i in range(2 * 4 + 1)]


def dtypes():
    inputs, targets = make_batch(ids, 2, 4)
    print("inputs:", inputs.dtype, "| targets:", targets.dtype)
    return inputs.dtype == torch.int32 and targets.dtype == torch.int64


def large_ids():
    inputs, targets = make_batch(ids, 2, 4)
    print("ids in:", ids[:4], "... | inputs out:", inputs.flatten().tolist()[:4], "...")
    return set(inputs.flatten().tolist()) | set(targets.flatten().tolist()) <= set(ids)


probe("token dtypes", dtypes)
probe("large token ids survive a batch", large_ids)

# %% target-shift
# Target t is the token after input t, and consecutive batches share exactly one token (the last target
# of one batch is the first input of the next).


def shifted_by_one():
    inputs, targets = make_batch(list(range(100, 113)), 2, 6)
    print("inputs: ", inputs[0].tolist())
    print("targets:", targets[0].tolist())
    return torch.equal(targets.long(), inputs.long() + 1)


def batch_boundaries():
    batches = list(tokenizing_data_loader(tokenizer, documents, 2, 5, tokenizer_batch_size=2))
    inputs = torch.cat([x.flatten() for x, _ in batches]).tolist()
    targets = torch.cat([y.flatten() for _, y in batches]).tolist()
    print(f"{len(batches)} batches; last target, then first input, at each boundary:")
    print([(a[-1, -1].item(), b[0, 0].item()) for (_, a), (b, _) in itertools.pairwise(batches)])
    # read in order, the targets are the inputs one token later, across rows and batches alike
    return len(batches) >= 2 and targets[:-1] == inputs[1:]


probe("targets are the inputs shifted by one", shifted_by_one)
probe("consecutive batches share exactly one token", batch_boundaries)
