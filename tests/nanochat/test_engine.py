"""The Engine: greedy decoding against the naive generator, and the calculator tool's token order.

The tool tests drive the engine with a scripted model: a real tiny GPT runs every forward pass (so
the KV cache really fills), but its logits are replaced so that "sampling" follows a script. The
test then knows exactly which tokens the engine must emit, force and feed back.
"""

import pytest
import torch

from nanochat.engine import Engine


class ScriptedModel:
    """Wraps a GPT; at step s, row r's next-token logits put all mass on scripts[r][s].

    Step 0 is the prompt's forward pass, which the engine runs with batch size 1, so every script
    must agree on its first token. Records what it was fed and the cache position after each call.
    """

    def __init__(self, model, scripts):
        assert len({script[0] for script in scripts}) == 1, "rows share the prompt's first sample"
        self.model, self.config, self.scripts = model, model.config, scripts
        self.fed, self.positions = [], []

    def get_device(self):
        return self.model.get_device()

    def forward(self, ids, targets=None, kv_cache=None):
        step = len(self.fed)
        logits = self.model.forward(ids, kv_cache=kv_cache)
        self.fed.append(ids.tolist())
        self.positions.append(kv_cache.get_pos())
        scripted = torch.full_like(logits, -1e4)
        for row in range(ids.size(0)):
            scripted[row, :, self.scripts[row][step]] = 0.0
        return scripted


@pytest.fixture
def special(tokenizer):
    return tokenizer.encode_special


def run_engine(engine, prompt, **kwargs):
    """Every (token, mask) the engine yields for a single sample."""
    tokens, masks = [], []
    for token_column, mask_column in engine.generate(prompt, **kwargs):
        tokens.append(token_column[0])
        masks.append(mask_column[0])
    return tokens, masks


def test_calculator_result_is_forced_after_python_end(model, tokenizer, special):
    prompt = [tokenizer.get_bos_token_id()] + tokenizer.encode("What is 5+3?")
    junk = tokenizer.encode("Z")[0]  # what the model "wants" while the engine must force instead
    text, expr, answer = tokenizer.encode("Let me see: "), tokenizer.encode("5+3"), tokenizer.encode(" ok")
    eight = tokenizer.encode("8")
    script = (
        text
        + [special("<|python_start|>")] + expr + [special("<|python_end|>")]
        + [junk] * (len(eight) + 2)
        + answer + [special("<|assistant_end|>")]
        + [junk] * 5  # never reached: generation stops at <|assistant_end|>
    )  # fmt: skip
    scripted = ScriptedModel(model, [script])
    tokens, masks = run_engine(Engine(scripted, tokenizer), prompt, max_tokens=50)

    sampled_head = text + [special("<|python_start|>")] + expr + [special("<|python_end|>")]
    forced = [special("<|output_start|>")] + eight + [special("<|output_end|>")]
    tail = answer + [special("<|assistant_end|>")]
    assert tokens == sampled_head + forced + tail
    assert masks == [1] * len(sampled_head) + [0] * len(forced) + [1] * len(tail)
    # every emitted token, forced ones included, went back through the model, one position each
    assert scripted.fed == [[prompt]] + [[[t]] for t in tokens]
    assert scripted.positions == list(range(len(prompt), len(prompt) + len(tokens) + 1))


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("__import__('os')", id="import"),
        pytest.param("1/0", id="zero-division"),
        pytest.param("x+1", id="name"),
    ],
)
def test_refused_calculation_forces_nothing(model, tokenizer, special, expression):
    code = tokenizer.encode(expression)
    after = tokenizer.encode(" no tool")
    script = [special("<|python_start|>")] + code + [special("<|python_end|>")] + after + [special("<|assistant_end|>")]
    junk = tokenizer.encode("Z")  # fed after the end, never emitted
    tokens, masks = run_engine(Engine(ScriptedModel(model, [script + junk]), tokenizer), [1, 2, 3], max_tokens=50)
    assert tokens == script
    assert masks == [1] * len(script)


def test_generate_batch_rows_are_independent(model, tokenizer, special):
    bos, end = tokenizer.get_bos_token_id(), special("<|assistant_end|>")
    junk = tokenizer.encode("Z")[0]
    hi, expr, product = tokenizer.encode("Hi"), tokenizer.encode("12*12"), tokenizer.encode("144")
    first = hi[0]
    rows = [
        # a calculator call, then the end
        [first, special("<|python_start|>")] + expr + [special("<|python_end|>")] + [junk] * (len(product) + 2) + [end],
        # text, ended by <|bos|> (also a stop token)
        [first] + hi + [bos],
        # stops at once after its first token
        [first, end],
    ]
    longest = max(len(r) for r in rows)
    scripts = [r + [junk] * (longest + 5 - len(r)) for r in rows]
    prompt = [bos] + tokenizer.encode("Go")
    results, masks = Engine(ScriptedModel(model, scripts), tokenizer).generate_batch(
        prompt, num_samples=3, max_tokens=40
    )

    forced = [special("<|output_start|>")] + product + [special("<|output_end|>")]
    head0 = [first, special("<|python_start|>")] + expr + [special("<|python_end|>")]
    # results include the prompt and exclude stop tokens; prompt tokens have mask 0
    assert results[0] == prompt + head0 + forced
    assert masks[0] == [0] * len(prompt) + [1] * len(head0) + [0] * len(forced)
    assert results[1] == prompt + [first] + hi
    assert masks[1] == [0] * len(prompt) + [1] * (1 + len(hi))
    assert results[2] == prompt + [first]
    assert masks[2] == [0] * len(prompt) + [1]


@pytest.fixture
def plain_model(make_model, tokenizer):
    """A model whose vocabulary stops before the special tokens.

    The naive generator knows no stop tokens or tools; a model that cannot emit them makes the two
    generators comparable token for token without any normalisation.
    """
    return make_model(vocab_size=tokenizer.get_vocab_size() - 9)


def agreeing_prefix(model, prompt, naive, tokens, atol):
    """How many leading tokens two greedy streams share, allowing them to split only at a near-tie.

    Cached and recomputed logits differ by rounding (~1e-6 in float32, ~1e-2 under CUDA's bf16);
    where two candidates are that close, argmax may legitimately pick either and the streams part.
    """
    for i, (a, b) in enumerate(zip(naive, tokens, strict=True)):
        if a != b:
            with torch.no_grad():
                logits = model(torch.tensor([prompt + naive[:i]], device=model.get_device()))[0, -1]
            gap = (logits[a] - logits[b]).abs().item()
            assert gap <= atol, f"step {i}: engine chose {b}, naive {a}, whose logits differ by {gap:.3g}"
            return i
    return len(naive)


def test_greedy_engine_matches_naive_generate(plain_model, tokenizer, tol):
    # The naive generator recomputes the whole sequence for every token: any cache or position
    # error in the engine shows up as a different token.
    prompt = tokenizer.encode("Once upon a time")
    naive = list(plain_model.generate(prompt, max_tokens=20, temperature=0.0))
    assert len(set(naive)) > 3, "precondition: the greedy stream is not a constant"
    for num_samples in (1, 2):
        engine = Engine(plain_model, tokenizer)
        columns = list(engine.generate(prompt, num_samples=num_samples, max_tokens=20, temperature=0.0))
        assert len(columns) == 20
        assert [masks for _, masks in columns] == [[1] * num_samples] * 20
        for row in range(num_samples):
            tokens = [column[row] for column, _ in columns]
            agreed = agreeing_prefix(plain_model, prompt, naive, tokens, 2 * tol["atol"])
            if plain_model.get_device().type == "cpu":
                assert agreed == 20  # float32 leaves no near-tie in this stream: all 20 agree


def test_seeded_sampling_engine_matches_naive_generate(plain_model, tokenizer, device):
    # With one sample and the same seed both draw from the same generator state; full-temperature
    # sampling visits many tokens, which makes the comparison stronger than greedy decoding.
    if device != "cpu":
        pytest.skip("bf16 autocast moves cached logits by ~1e-2 from recomputed ones: enough to flip a draw")
    prompt = tokenizer.encode("The answer")
    naive = list(plain_model.generate(prompt, max_tokens=16, temperature=1.0, seed=7))
    tokens, _ = run_engine(Engine(plain_model, tokenizer), prompt, max_tokens=16, temperature=1.0, seed=7)
    assert tokens == naive


@pytest.mark.project_extras  # this engine's own guard: the API does not say what a larger model vocabulary does
def test_engine_never_samples_beyond_the_tokenizer(make_model, tokenizer):
    # A model sized for a larger vocabulary than the tokenizer's: ids past the tokenizer must never
    # be emitted, even when the model prefers them.
    model = make_model(vocab_size=tokenizer.get_vocab_size() + 20)
    with torch.no_grad():
        model.lm_head.weight[tokenizer.get_vocab_size() :] *= 50
    tokens, _ = run_engine(Engine(model, tokenizer), [1, 2, 3], max_tokens=10, temperature=1.0)
    assert len(tokens) > 0
    assert max(tokens) < tokenizer.get_vocab_size()
