"""Training: learning-rate schedule, gradient accumulation, optimizer groups, fine-tuning targets, and a
tiny end-to-end run that must learn.
"""

import itertools
import math
import random

import pytest
import torch

from nanochat.dataloader import tokenizing_data_loader
from nanochat.gpt import GPT, GPTConfig
from nanochat.muon import Muon
from nanochat.tokenizer import RustBPETokenizer
from nanochat.training import accumulate_gradients, get_lr_multiplier, sft_batch, step_optimizers, train

pytestmark = pytest.mark.project_extras  # nanochat.training is this project's own

# --- learning-rate schedule ---

# 1000 steps: warmup over the first 100 (multiplier (step + 1) / 100), constant up to step 800, then a
# linear warmdown over 200 steps from 1 to final_lr_frac = 0.1 (reached at step 1000).
SCHEDULE = dict(num_iterations=1000, warmup_ratio=0.1, warmdown_ratio=0.2, final_lr_frac=0.1)


@pytest.mark.parametrize(
    "step, expected",
    [
        pytest.param(0, 0.01, id="warmup-start"),
        pytest.param(49, 0.5, id="warmup-middle"),
        pytest.param(99, 1.0, id="warmup-end"),
        pytest.param(100, 1.0, id="constant-start"),
        pytest.param(500, 1.0, id="constant-middle"),
        pytest.param(800, 1.0, id="warmdown-start"),
        pytest.param(900, 0.55, id="warmdown-middle"),
        pytest.param(1000, 0.1, id="warmdown-end"),
    ],
)
def test_lr_multiplier_at_known_steps(step, expected):
    assert get_lr_multiplier(step, **SCHEDULE) == pytest.approx(expected, rel=1e-12)


def test_lr_multiplier_without_warmup_or_warmdown_is_one():
    for step in [0, 1, 50, 99, 100]:
        assert get_lr_multiplier(step, 100, warmup_ratio=0.0, warmdown_ratio=0.0, final_lr_frac=0.0) == 1.0


# --- gradient accumulation ---


@pytest.mark.parametrize("grad_accum_steps", [2, 4])
def test_accumulated_gradient_equals_full_batch_gradient(make_model, device, tol, grad_accum_steps):
    model = make_model()
    vocab = model.config.vocab_size
    inputs = torch.randint(0, vocab, (4, 16), device=device)
    targets = torch.randint(0, vocab, (4, 16), device=device)

    full_loss = model(inputs, targets)
    full_loss.backward()
    full = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)

    # equal micro-batches: the mean of their mean losses is the full batch's mean loss
    micro_batches = zip(inputs.chunk(grad_accum_steps), targets.chunk(grad_accum_steps), strict=True)
    loss = accumulate_gradients(model, iter(micro_batches), grad_accum_steps)

    assert loss == pytest.approx(full_loss.item(), rel=tol["rtol"])
    for name, p in model.named_parameters():
        scale = full[name].abs().max()
        assert scale > 0, f"{name} has no gradient: the comparison would be vacuous"
        torch.testing.assert_close(p.grad, full[name], rtol=tol["rtol"], atol=tol["atol"] * scale, msg=name)


# --- optimizers ---


def test_setup_optimizers_groups_every_parameter_once(make_model):
    model = make_model()
    # all different, and none a default (AdamW: 0.001): a swapped or dropped lr shows
    lrs = dict(unembedding_lr=0.002, embedding_lr=0.3, matrix_lr=0.05)
    adamw, muon = model.setup_optimizers(**lrs, weight_decay=0.1)
    assert isinstance(adamw, torch.optim.AdamW)
    assert isinstance(muon, Muon)

    def ids(params):
        return [id(p) for p in params]

    groups = {id(group["params"][0]): group for group in adamw.param_groups}
    assert len(adamw.param_groups) == 2
    embedding, head = model.transformer.wte.weight, model.lm_head.weight
    assert ids(groups[id(embedding)]["params"]) == [id(embedding)]
    assert ids(groups[id(head)]["params"]) == [id(head)]
    assert groups[id(embedding)]["lr"] == lrs["embedding_lr"]
    assert groups[id(head)]["lr"] == lrs["unembedding_lr"]
    assert all(group["weight_decay"] == 0.1 for group in adamw.param_groups)

    muon_params = [p for group in muon.param_groups for p in group["params"]]
    assert sorted(ids(muon_params)) == sorted(ids(model.transformer.h.parameters()))
    assert all(p.ndim == 2 for p in muon_params)
    assert all(group["lr"] == lrs["matrix_lr"] for group in muon.param_groups)

    everything = ids([embedding, head]) + ids(muon_params)
    assert sorted(everything) == sorted(ids(model.parameters()))  # nothing missing, nothing twice
    for optimizer in (adamw, muon):
        assert all(group["initial_lr"] == group["lr"] for group in optimizer.param_groups)


def test_step_optimizers_scales_lrs_steps_and_clears_grads(make_model, device):
    model = make_model()
    optimizers = model.setup_optimizers()
    before = [p.detach().clone() for p in model.parameters()]
    inputs = torch.randint(0, model.config.vocab_size, (2, 8), device=device)
    model(inputs, inputs.long()).backward()
    step_optimizers(model, optimizers, lr_multiplier=0.25)
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            assert group["lr"] == pytest.approx(0.25 * group["initial_lr"], rel=1e-12)
    assert all(p.grad is None for p in model.parameters())
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


# --- supervised fine-tuning batches ---

CONVERSATIONS = [
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 5+3?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me calculate: "},
                    {"type": "python", "text": "5+3"},
                    {"type": "python_output", "text": "8"},
                    {"type": "text", "text": " The answer is 8."},
                ],
            },
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Thanks"},
            {"role": "assistant", "content": "You're welcome!"},
        ]
    },
    {"messages": [{"role": "user", "content": "Count the r's in strawberry"}, {"role": "assistant", "content": "3"}]},
]


def test_sft_targets_are_next_tokens_where_mask_is_one_and_ignored_elsewhere(tokenizer, device):
    inputs, targets = sft_batch(tokenizer, CONVERSATIONS, device=device)
    rendered = [tokenizer.render_conversation(conversation) for conversation in CONVERSATIONS]
    T = max(len(ids) for ids, _ in rendered) - 1
    assert inputs.shape == targets.shape == (len(CONVERSATIONS), T)
    assert (inputs.dtype, targets.dtype) == (torch.int32, torch.int64)
    assert inputs.device.type == targets.device.type == device
    for row, (ids, mask) in enumerate(rendered):
        n = len(ids) - 1
        assert inputs[row, :n].tolist() == ids[:-1]
        expected = [token if trained == 1 else -1 for token, trained in zip(ids[1:], mask[1:], strict=True)]
        assert targets[row, :n].tolist() == expected
        assert targets[row, n:].tolist() == [-1] * (T - n)  # padding is never trained
        assert 0 < expected.count(-1) < n  # both kinds present: the check above is not vacuous


class LargeVocabRenderer:
    """A tokenizer stand-in whose ids sit above 32767, as in any real vocabulary of 50k-200k tokens."""

    def __init__(self, rows):
        self.rows = rows

    def render_conversation(self, conversation):
        return self.rows[conversation["row"]]

    def get_bos_token_id(self):
        return 65_000


def test_sft_batch_keeps_large_token_ids_exact(device):
    rows = [([65_000, 40_001, 50_123, 65_535], [0, 0, 1, 1]), ([65_000, 33_333, 99_999], [0, 1, 1])]
    tokenizer = LargeVocabRenderer(rows)
    inputs, targets = sft_batch(tokenizer, [{"row": 0}, {"row": 1}], device=device)
    assert inputs.tolist() == [[65_000, 40_001, 50_123], [65_000, 33_333, 99_999]]
    assert targets.tolist() == [[-1, 50_123, 65_535], [33_333, 99_999, -1]]


# --- end to end ---


def synthetic_corpus(seed, n_documents=200):
    """Short templated documents, each sentence said three times: learnable, but not from the first
    tokens alone."""
    rng = random.Random(seed)
    names, fruits = ["Alice", "Bob", "Carol", "Dave"], ["apple", "pear", "plum", "fig"]
    return [f"{rng.choice(names)} has {rng.randint(1, 9)} {rng.choice(fruits)}s. " * 3 for _ in range(n_documents)]


def test_tiny_training_run_reduces_the_loss(device):
    torch.manual_seed(0)
    corpus = synthetic_corpus(seed=0)
    tokenizer = RustBPETokenizer.train_from_iterator(iter(corpus), vocab_size=300)
    vocab = tokenizer.get_vocab_size()
    config = GPTConfig(sequence_len=32, vocab_size=vocab, n_layer=2, n_head=4, n_kv_head=2, n_embd=32)
    model = GPT(config)
    model.init_weights()
    model.to(device)
    batches = tokenizing_data_loader(tokenizer, itertools.cycle(corpus), B=4, T=32, device=device)
    losses = train(model, batches, num_iterations=150, grad_accum_steps=2, warmup_ratio=0.05, warmdown_ratio=0.2)
    # the head starts at std 0.001: the first loss is that of a uniform guess
    assert losses[0] == pytest.approx(math.log(vocab), abs=0.1)
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.4 * first, f"loss went from {first:.2f} to {last:.2f}"
