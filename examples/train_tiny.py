"""Train a tiny nanochat on CPU for a few hundred steps and print the loss at the start and the end.

    python examples/train_tiny.py

The whole pipeline in a few seconds: a tokenizer trained on a synthetic corpus, <|bos|>-prefixed
documents cut into (inputs, targets) batches, AdamW + Muon with a warmup/warmdown schedule and gradient
accumulation. The loss starts at ln(vocab_size) (a uniform guess) and should end well below 1.
"""

import argparse
import itertools
import math
import random

import torch

from nanochat.dataloader import tokenizing_data_loader
from nanochat.gpt import GPT, GPTConfig
from nanochat.tokenizer import RustBPETokenizer
from nanochat.training import train


def synthetic_corpus(seed, n_documents=200):
    """Short templated documents, each sentence said three times: the repeats are learnable."""
    rng = random.Random(seed)
    names, fruits = ["Alice", "Bob", "Carol", "Dave"], ["apple", "pear", "plum", "fig"]
    return [f"{rng.choice(names)} has {rng.randint(1, 9)} {rng.choice(fruits)}s. " * 3 for _ in range(n_documents)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # tensors this small run faster on one thread than on several
    corpus = synthetic_corpus(args.seed)
    tokenizer = RustBPETokenizer.train_from_iterator(iter(corpus), vocab_size=300)
    vocab_size = tokenizer.get_vocab_size()
    config = GPTConfig(sequence_len=32, vocab_size=vocab_size, n_layer=2, n_head=4, n_kv_head=2, n_embd=32)
    model = GPT(config)
    model.init_weights()
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters, vocabulary of {vocab_size}")

    batches = tokenizing_data_loader(tokenizer, itertools.cycle(corpus), B=4, T=32)
    losses = train(model, batches, num_iterations=args.steps, grad_accum_steps=2, warmup_ratio=0.05)
    print(f"uniform guess: {math.log(vocab_size):.3f}")
    print(f"loss at step 0: {losses[0]:.3f}")
    print(f"loss at step {len(losses) - 1}: {losses[-1]:.3f}")


if __name__ == "__main__":
    main()
