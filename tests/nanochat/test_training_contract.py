"""train() and sft_batch(): the defaults they apply and the learning rate of every step they take.

Written against generic (mutmut) mutants that survived test_training.py: a changed default of train()
(grad_accum_steps, warmup, warmdown, final fraction), a schedule argument dropped on the way to
get_lr_multiplier, or sft_batch's default device and its device argument.
"""

import itertools

import pytest
import torch

from nanochat.dataloader import make_batch
from nanochat.training import get_lr_multiplier, sft_batch, train

pytestmark = pytest.mark.project_extras  # nanochat.training is this project's own


def recorded_train(make_model, num_iterations, **train_kwargs):
    """Run train() on random batches; (the lr multiplier of every group at each optimizer step, batches drawn)."""
    model = make_model()
    model.train()
    original_setup = model.setup_optimizers
    multipliers = []

    def setup_optimizers(**kwargs):
        optimizers = original_setup(**kwargs)
        for optimizer in optimizers:

            def record(opt, args, kwargs):
                multipliers.append([group["lr"] / group["initial_lr"] for group in opt.param_groups])

            optimizer.register_step_pre_hook(record)
        return optimizers

    model.setup_optimizers = setup_optimizers
    vocab, drawn = model.config.vocab_size, itertools.count()
    device = model.get_device()

    def batches():
        while True:
            next(drawn)
            yield make_batch(torch.randint(0, vocab, (2 * 8 + 1,)).tolist(), 2, 8, device)

    train(model, batches(), num_iterations, **train_kwargs)
    return multipliers, next(drawn)


def test_train_defaults_one_micro_batch_no_warmup_and_a_warmdown_to_zero(make_model):
    multipliers, drawn = recorded_train(make_model, 10)
    assert drawn == 10  # grad_accum_steps=1: one batch per step
    expected = [get_lr_multiplier(s, 10, 0.0, 0.2, 0.0) for s in range(10)]
    assert expected[0] == 1.0 and expected[-1] < 1.0  # the defaults: no warmup, then a warmdown
    for step, m in enumerate(expected):
        for optimizer in (0, 1):
            assert multipliers[2 * step + optimizer] == pytest.approx([m] * len(multipliers[2 * step + optimizer]))


def test_train_applies_every_schedule_argument(make_model):
    schedule = dict(warmup_ratio=0.3, warmdown_ratio=0.3, final_lr_frac=0.5)
    multipliers, drawn = recorded_train(make_model, 10, grad_accum_steps=3, **schedule)
    assert drawn == 30
    expected = [get_lr_multiplier(s, 10, **schedule) for s in range(10)]
    assert expected[0] < 1.0 and 1.0 in expected and expected[-1] < 1.0  # warmup, constant and warmdown
    for step, m in enumerate(expected):
        for optimizer in (0, 1):
            assert multipliers[2 * step + optimizer] == pytest.approx([m] * len(multipliers[2 * step + optimizer]))


CONVERSATIONS = [
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
    {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4, of course."}]},
]


def test_sft_batch_defaults_to_the_cpu_and_honours_its_device(tokenizer):
    inputs, targets = sft_batch(tokenizer, CONVERSATIONS)
    assert inputs.device.type == targets.device.type == "cpu"
    # the meta device stands in for an accelerator: both tensors must go where they are sent
    inputs, targets = sft_batch(tokenizer, CONVERSATIONS, device="meta")
    assert inputs.device.type == targets.device.type == "meta"
    assert (inputs.dtype, targets.dtype) == (torch.int32, torch.int64)


def test_lr_multiplier_defaults_no_warmup_and_a_fifth_warmdown_to_zero():
    explicit = [get_lr_multiplier(s, 10, warmup_ratio=0.0, warmdown_ratio=0.2, final_lr_frac=0.0) for s in range(10)]
    assert [get_lr_multiplier(s, 10) for s in range(10)] == explicit
    assert explicit[:9] == [1.0] * 9 and 0.0 <= explicit[9] < 1.0  # the warmdown: the last 2 of 10 steps


def test_setup_optimizers_defaults(make_model):
    from nanochat.muon import Muon

    model = make_model()
    adamw, muon = model.setup_optimizers()
    head, embedding = adamw.param_groups  # the head's group first, then the embedding's
    assert head["params"][0] is model.lm_head.weight and embedding["params"][0] is model.transformer.wte.weight
    assert (head["lr"], embedding["lr"]) == (0.004, 0.2)
    assert all(g["betas"] == (0.8, 0.95) and g["eps"] == 1e-10 and g["weight_decay"] == 0.0 for g in adamw.param_groups)
    assert all(g["lr"] == 0.02 and g["momentum"] == 0.95 for g in muon.param_groups)
    group = Muon([torch.nn.Parameter(torch.zeros(4, 4))]).param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["ns_steps"]) == (0.02, 0.95, True, 10)
