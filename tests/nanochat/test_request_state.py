"""State between requests and between rows: nothing of one generation or sample leaks into another.

The engine is driven by a scripted model (a real tiny GPT runs every forward pass; its logits are
replaced so that sampling follows a script), so the tokens it must emit and force are known exactly.
"""

import torch

from nanochat.engine import Engine


class ScriptedModel:
    """At step s, every row's next-token logits put all mass on script[s]."""

    def __init__(self, model, script):
        self.model, self.config, self.script, self.step = model, model.config, script, 0

    def get_device(self):
        return self.model.get_device()

    def forward(self, ids, targets=None, kv_cache=None):
        logits = self.model.forward(ids, kv_cache=kv_cache)
        scripted = torch.full_like(logits, -1e4)
        scripted[:, :, self.script[self.step]] = 0.0
        self.step += 1
        return scripted


def test_a_second_tool_call_does_not_see_the_first_ones_expression(model, tokenizer):
    special = tokenizer.encode_special
    start, end = special("<|python_start|>"), special("<|python_end|>")
    out_start, out_end = special("<|output_start|>"), special("<|output_end|>")
    junk = tokenizer.encode("Z")[0]
    first, second = tokenizer.encode("5+3"), tokenizer.encode("2*2")
    eight, four = tokenizer.encode("8"), tokenizer.encode("4")
    script = (
        [start] + first + [end] + [junk] * (len(eight) + 2)
        + [start] + second + [end] + [junk] * (len(four) + 2)
        + [special("<|assistant_end|>")]
        + [junk] * 3  # never reached: generation stops at <|assistant_end|>
    )  # fmt: skip
    prompt = [tokenizer.get_bos_token_id()] + tokenizer.encode("Sums")
    engine = Engine(ScriptedModel(model, script), tokenizer)
    tokens = [column[0] for column, _ in engine.generate(prompt, max_tokens=40)]
    assert tokens == (
        [start] + first + [end] + [out_start] + eight + [out_end]
        + [start] + second + [end] + [out_start] + four + [out_end]
        + [special("<|assistant_end|>")]
    )  # fmt: skip


def test_generation_leaves_the_callers_prompt_alone_and_rows_apart(model, tokenizer):
    prompt = [tokenizer.get_bos_token_id()] + tokenizer.encode("Once upon")
    kept = list(prompt)
    engine = Engine(model, tokenizer)
    list(engine.generate(prompt, num_samples=2, max_tokens=4, temperature=1.0))
    assert prompt == kept
    results, masks = engine.generate_batch(prompt, num_samples=3, max_tokens=4, temperature=1.0, seed=5)
    assert prompt == kept
    assert [len(r) for r in results] == [len(m) for m in masks]
    for row, mask in zip(results, masks, strict=True):
        assert row[: len(prompt)] == prompt and len(row) <= len(prompt) + 4
        assert mask[: len(prompt)] == [0] * len(prompt)
    results[0].append(-1)
    masks[0].append(-1)
    assert results[1][-1] != -1 and masks[1][-1] != -1  # each row is its own list
