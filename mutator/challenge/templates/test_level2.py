"""Level 2 acceptance tests: each one checks a property the fixed training code must have.

Run them with `pytest tests/`. They use a tiny model on the CPU and take a few seconds.
"""

import pytest
import torch

from nanochat.gpt import GPT, GPTConfig
from nanochat.muon import Muon
from nanochat.tokenizer import RustBPETokenizer
from nanochat.training import accumulate_gradients, get_lr_multiplier, sft_batch

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Hello world!", "What is 5+3? It is 8."]
CONFIG = dict(sequence_len=32, n_layer=2, n_head=4, n_kv_head=2, n_embd=32)


@pytest.fixture(scope="module")
def tokenizer():
    return RustBPETokenizer.train_from_iterator(iter(TEXTS * 50), vocab_size=300)


def make_model(vocab_size=300):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab_size, **CONFIG))
    model.init_weights()
    # Untrained output projections are small; give them weight so every parameter gets a real gradient.
    torch.nn.init.normal_(model.lm_head.weight, std=0.5)
    for block in model.transformer.h:
        torch.nn.init.normal_(block.attn.c_proj.weight, std=0.2)
        torch.nn.init.normal_(block.mlp.c_proj.weight, std=0.2)
    return model


def flat_gradient(model):
    return torch.cat([p.grad.flatten() for p in model.parameters()])


@pytest.mark.parametrize("steps", [2, 4])
def test_accumulated_gradient_equals_the_full_batch_gradient(steps):
    model = make_model()
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randint(0, 300, (4, 16), generator=generator)
    targets = torch.randint(0, 300, (4, 16), generator=generator)
    model(inputs, targets).backward()
    full = flat_gradient(model)
    model.zero_grad(set_to_none=True)
    accumulate_gradients(model, zip(inputs.chunk(steps), targets.chunk(steps), strict=True), steps)
    accumulated = flat_gradient(model)
    error = ((accumulated - full).norm() / full.norm()).item()
    assert error < 1e-4, f"accumulating {steps} micro-batches changes the gradient by {error:.1%}"


# 1000 steps: warmup over the first 100, constant to step 800, then down to 0.1 at step 1000.
SCHEDULE = dict(num_iterations=1000, warmup_ratio=0.1, warmdown_ratio=0.2, final_lr_frac=0.1)


@pytest.mark.parametrize("step, expected", [(0, 0.01), (49, 0.5), (99, 1.0), (100, 1.0)])
def test_warmup_rises_linearly_to_the_base_rate(step, expected):
    assert get_lr_multiplier(step, **SCHEDULE) == pytest.approx(expected)


@pytest.mark.parametrize("step, expected", [(500, 1.0), (800, 1.0), (900, 0.55), (1000, 0.1)])
def test_warmdown_falls_linearly_to_the_final_fraction(step, expected):
    assert get_lr_multiplier(step, **SCHEDULE) == pytest.approx(expected)


def test_each_parameter_has_its_optimizer_and_rate():
    model = make_model()
    adamw, muon = model.setup_optimizers(unembedding_lr=0.001, embedding_lr=0.3, matrix_lr=0.05)
    assert isinstance(adamw, torch.optim.AdamW) and isinstance(muon, Muon), "setup_optimizers returns [AdamW, Muon]"
    rate = {id(p): group["lr"] for group in adamw.param_groups for p in group["params"]}
    assert rate == {id(model.transformer.wte.weight): 0.3, id(model.lm_head.weight): 0.001}
    in_muon = {id(p) for group in muon.param_groups for p in group["params"]}
    assert in_muon == {id(p) for p in model.transformer.h.parameters()}
    assert all(group["lr"] == 0.05 for group in muon.param_groups)


def test_fine_tuning_trains_the_answer_and_not_the_prompt(tokenizer):
    conversation = {"messages": [{"role": "user", "content": "Hello world!"}, {"role": "assistant", "content": "Bye."}]}
    ids, mask = tokenizer.render_conversation(conversation)
    inputs, targets = sft_batch(tokenizer, [conversation])
    assert inputs[0].tolist() == ids[:-1]
    # target t is token t + 1, kept where that token is the assistant's and -1 everywhere else
    assert targets[0].tolist() == [token if trained else -1 for token, trained in zip(ids[1:], mask[1:], strict=True)]
