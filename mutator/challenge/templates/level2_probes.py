# Probe cells for the level-2 challenge notebook. Each "# %% <name>" line starts a cell: "setup" runs
# first, then one cell per class of the level. Probes print what they measure; none of them raises,
# so the notebook runs top to bottom on broken and fixed code alike.

# %% setup
import sys
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))  # this workspace's nanochat, not an installed one
import torch

from nanochat.gpt import GPT, GPTConfig
from nanochat.muon import Muon
from nanochat.tokenizer import RustBPETokenizer
from nanochat.training import accumulate_gradients, get_lr_multiplier, sft_batch

texts = ["The quick brown fox jumps over the lazy dog.", "Hello world!", "What is 5+3? It is 8."]
tokenizer = RustBPETokenizer.train_from_iterator(iter(texts * 50), vocab_size=300)
config = GPTConfig(sequence_len=32, vocab_size=300, n_layer=2, n_head=4, n_kv_head=2, n_embd=32)


def probe_model():
    """A tiny untrained model whose parameters all get a real gradient (output projections given weight)."""
    torch.manual_seed(0)
    model = GPT(config)
    model.init_weights()
    torch.nn.init.normal_(model.lm_head.weight, std=0.5)
    for block in model.transformer.h:
        torch.nn.init.normal_(block.attn.c_proj.weight, std=0.2)
        torch.nn.init.normal_(block.mlp.c_proj.weight, std=0.2)
    return model


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

# %% grad-accum-normalisation
# Four micro-batches of 1 row, accumulated, must give the gradient of the one batch of 4 rows they
# make up: the loss of each micro-batch is a mean over its own tokens.


def accumulated_matches_full():
    model = probe_model()
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randint(0, 300, (4, 16), generator=generator)
    targets = torch.randint(0, 300, (4, 16), generator=generator)
    model(inputs, targets).backward()
    full = torch.cat([p.grad.flatten() for p in model.parameters()])
    model.zero_grad(set_to_none=True)
    accumulate_gradients(model, zip(inputs.chunk(4), targets.chunk(4), strict=True), 4)
    accumulated = torch.cat([p.grad.flatten() for p in model.parameters()])
    print(f"gradient norm: full batch {full.norm():.4f}, accumulated {accumulated.norm():.4f}")
    return ((accumulated - full).norm() / full.norm()).item() < 1e-4


probe("accumulated gradient equals the full-batch gradient", accumulated_matches_full)

# %% lr-warmup
# 1000 steps with warmup_ratio=0.1, warmdown_ratio=0.2, final_lr_frac=0.1: the multiplier rises
# linearly to 1 over the first 100 steps, stays at 1 until step 800, then falls linearly to 0.1.
schedule = dict(num_iterations=1000, warmup_ratio=0.1, warmdown_ratio=0.2, final_lr_frac=0.1)
expected = {0: 0.01, 49: 0.5, 99: 1.0, 500: 1.0, 800: 1.0, 900: 0.55, 1000: 0.1}


def follows_schedule():
    got = {step: get_lr_multiplier(step, **schedule) for step in expected}
    for step, value in got.items():
        print(f"step {step:4d}: multiplier {value:.4f} (expected {expected[step]})")
    return all(abs(got[step] - value) < 1e-9 for step, value in expected.items())


probe("learning-rate multiplier over a run", follows_schedule)

# %% optimizer-groups
# AdamW holds the embedding and the head, each at its own rate; Muon holds every matrix of the blocks.
# Beyond easy the probe shows what training would: the loss of a few steps with these optimizers,
# beside a reference set up by hand.
LEARNING_RATES = dict(unembedding_lr=0.001, embedding_lr=0.3, matrix_lr=0.05)


def loss_after_steps(optimizers, model, steps=3):
    generator = torch.Generator().manual_seed(4)
    inputs = torch.randint(0, 300, (2, 16), generator=generator)
    targets = torch.randint(0, 300, (2, 16), generator=generator)
    for _ in range(steps):
        model(inputs, targets).backward()
        for optimizer in optimizers:
            optimizer.step()
        model.zero_grad(set_to_none=True)
    with torch.no_grad():
        return model(inputs, targets).item()


def reference_optimizers(model):
    adamw = torch.optim.AdamW(
        [
            dict(params=list(model.lm_head.parameters()), lr=LEARNING_RATES["unembedding_lr"]),
            dict(params=list(model.transformer.wte.parameters()), lr=LEARNING_RATES["embedding_lr"]),
        ],
        betas=(0.8, 0.95),
        eps=1e-10,
        weight_decay=0.0,
    )
    return [adamw, Muon(list(model.transformer.h.parameters()), lr=LEARNING_RATES["matrix_lr"], momentum=0.95)]


def groups_as_intended():
    model = probe_model()
    optimizers = model.setup_optimizers(**LEARNING_RATES)
    names = {id(p): name for name, p in model.named_parameters()}
    print("setup_optimizers returned:", ", ".join(type(optimizer).__name__ for optimizer in optimizers))
    if DIAGNOSE:
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                held = [names[id(p)] for p in group["params"]]
                more = f" and {len(held) - 1} more" if len(held) > 1 else ""
                print(f"{type(optimizer).__name__:6s} lr={group['lr']}: {held[0]}{more}")
    else:
        reference = probe_model()
        got, wanted = loss_after_steps(optimizers, model), loss_after_steps(reference_optimizers(reference), reference)
        print(f"loss after 3 training steps: {got:.4f} (a reference optimizer setup: {wanted:.4f})")
    adamw, muon = optimizers
    rates = {names[id(p)]: group["lr"] for group in adamw.param_groups for p in group["params"]}
    in_muon = {names[id(p)] for group in muon.param_groups for p in group["params"]}
    blocks = {name for name in names.values() if name.startswith("transformer.h.")}
    return (
        isinstance(adamw, torch.optim.AdamW)
        and isinstance(muon, Muon)
        and rates == {"transformer.wte.weight": 0.3, "lm_head.weight": 0.001}
        and in_muon == blocks
    )


probe("parameters are in the right optimizer at the right rate", groups_as_intended)

# %% sft-mask
# In a fine-tuning batch, target t is token t + 1 where that token is the assistant's, and -1
# (ignored by the loss) everywhere else: the prompt is read, never trained. Beyond easy the probe shows
# what fine-tuning would: the loss on the answer's tokens and on the prompt's, before and after.
conversation = {"messages": [{"role": "user", "content": "Hello world!"}, {"role": "assistant", "content": "Bye."}]}


def losses_on_answer_and_prompt(model, ids, mask):
    inputs = torch.tensor([ids[:-1]])
    with torch.no_grad():
        logits = model(inputs)[0]
    losses = torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="none")
    answer = torch.tensor(mask[1:], dtype=torch.bool)
    return losses[answer].mean().item(), losses[~answer].mean().item()


def fine_tuning_losses(ids, mask, steps=10):
    model = probe_model()
    before = losses_on_answer_and_prompt(model, ids, mask)
    inputs, targets = sft_batch(tokenizer, [conversation])
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    for _ in range(steps):
        model(inputs.long(), targets.long()).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return before, losses_on_answer_and_prompt(model, ids, mask)


def trains_only_the_answer():
    ids, mask = tokenizer.render_conversation(conversation)
    _, targets = sft_batch(tokenizer, [conversation])
    trained = [t for t in targets[0].tolist() if t != -1]
    wanted = [token for token, keep in zip(ids[1:], mask[1:], strict=True) if keep]
    if DIAGNOSE:
        print("trained targets:", repr(tokenizer.decode(trained)))
        print("wanted:         ", repr(tokenizer.decode(wanted)))
    else:
        (answer_before, prompt_before), (answer_after, prompt_after) = fine_tuning_losses(ids, mask)
        print(f"loss on the answer's tokens over 10 fine-tuning steps: {answer_before:.3f} -> {answer_after:.3f}")
        print(f"loss on the prompt's tokens over 10 fine-tuning steps: {prompt_before:.3f} -> {prompt_after:.3f}")
    return trained == wanted


probe("fine-tuning trains the answer and not the prompt", trains_only_the_answer)
