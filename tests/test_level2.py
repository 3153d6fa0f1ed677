"""Level 2 acceptance: training (gradient accumulation, learning-rate schedule, optimizers, fine-tuning).

User-level checks in the style of the level notebooks: coarse on purpose (tests/nanochat/ holds the
exact oracles), but each one fails on the bug it names.
"""

import itertools

import pytest
import torch

from nanochat.dataloader import tokenizing_data_loader
from nanochat.gpt import GPT, GPTConfig
from nanochat.muon import Muon
from nanochat.tokenizer import RustBPETokenizer
from nanochat.training import accumulate_gradients, get_lr_multiplier, sft_batch, train

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Hello world!", "What is 5+3? It is 8."]


@pytest.fixture(scope="module")
def tokenizer():
    return RustBPETokenizer.train_from_iterator(iter(TEXTS * 50), vocab_size=300)


@pytest.fixture
def model(tokenizer, device):
    torch.manual_seed(0)
    config = GPTConfig(
        sequence_len=32, vocab_size=tokenizer.get_vocab_size(), n_layer=2, n_head=2, n_kv_head=2, n_embd=32
    )
    model = GPT(config)
    model.init_weights()
    return model.to(device)


def test_loss_goes_down(model, tokenizer, device):
    batches = tokenizing_data_loader(tokenizer, itertools.cycle(TEXTS), B=4, T=16, device=device)
    losses = train(model, batches, num_iterations=30, grad_accum_steps=2, warmup_ratio=0.1)
    print(f"loss: {losses[0]:.3f} -> {losses[-1]:.3f}")
    assert losses[-1] < losses[0] - 1.0, f"FAIL: loss went from {losses[0]:.3f} to {losses[-1]:.3f}"


def test_warmup_reaches_full_learning_rate():
    multipliers = [get_lr_multiplier(step, 1000, warmup_ratio=0.05, warmdown_ratio=0.2) for step in range(1000)]
    assert multipliers[0] > 0, "FAIL: the first step does not train"
    assert max(multipliers[:100]) > 0.9, f"FAIL: after 100 of 1000 steps the lr is only {max(multipliers[:100]):.4f}x"


def test_gradient_accumulation_keeps_the_gradient_scale(model, device):
    inputs = torch.randint(0, model.config.vocab_size, (4, 16), device=device)
    targets = torch.randint(0, model.config.vocab_size, (4, 16), device=device)
    model(inputs, targets).backward()
    full_norm = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    model.zero_grad()
    accumulate_gradients(model, zip(inputs.chunk(4), targets.chunk(4), strict=True), grad_accum_steps=4)
    accumulated_norm = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    ratio = (accumulated_norm / full_norm).item()
    assert 0.5 < ratio < 2.0, f"FAIL: accumulating 4 micro-batches scales the gradient by {ratio:.2f}"


def test_optimizers_hold_the_right_parameters(model):
    adamw, muon = model.setup_optimizers()
    assert isinstance(muon, Muon), "FAIL: the second optimizer is not Muon"
    adamw_params = {id(p) for group in adamw.param_groups for p in group["params"]}
    assert id(model.transformer.wte.weight) in adamw_params, "FAIL: the embedding is not in AdamW"
    muon_params = [p for group in muon.param_groups for p in group["params"]]
    assert id(model.transformer.h[0].attn.c_q.weight) in {id(p) for p in muon_params}, "FAIL: c_q is not in Muon"
    assert all(p.ndim == 2 for p in muon_params), "FAIL: Muon holds a non-matrix"


def test_sft_does_not_train_on_the_prompt(tokenizer):
    conversation = {"messages": [{"role": "user", "content": "Hello world!"}, {"role": "assistant", "content": "Hi!"}]}
    inputs, targets = sft_batch(tokenizer, [conversation])
    prompt_length = len(tokenizer.encode("Hello world!")) + 2  # <|bos|> <|user_start|> prompt
    assert (targets[0, :prompt_length] == -1).all(), "FAIL: the model is trained to write the user's prompt"
    assert (targets[0] != -1).any(), "FAIL: nothing is trained"
