"""The model's smaller promises: rotary tables and attention masks on the model's device and a rotation in
its input's dtype, and (this project's own) tables left out of checkpoints, the sliding window's mask on
the model's device, the rotary helper's defaults, and the messages of a config that does not split into
heads or that outgrows its tables. Written against generic (mutmut) mutants that survived test_gpt.py.
"""

import inspect

import pytest
import torch


@pytest.mark.project_extras
def test_a_sequence_past_the_rotary_tables_is_refused_with_its_length(make_model, device):
    model = make_model(sequence_len=4)  # tables for 40 positions
    with torch.no_grad(), pytest.raises(AssertionError) as raised:
        model(torch.zeros(1, 41, dtype=torch.long, device=device))
    assert str(raised.value) == "sequence of 41 exceeds rotary tables (40)"


def test_apply_rotary_emb_keeps_the_dtype_of_its_input():
    from nanochat.gpt import apply_rotary_emb

    x = torch.randn(1, 3, 2, 8).to(torch.bfloat16)
    cos, sin = torch.ones(1, 3, 1, 4), torch.zeros(1, 3, 1, 4)  # float32 tables, as the model keeps them
    assert apply_rotary_emb(x, cos, sin).dtype == torch.bfloat16


def test_rotary_tables_follow_the_model_to_its_device(tiny_config):
    from nanochat.gpt import GPT, GPTConfig

    # the meta device stands in for an accelerator: tables made on the CPU would not be there
    with torch.device("meta"):
        model = GPT(GPTConfig(**tiny_config))
    assert model.cos.device.type == model.sin.device.type == "meta"
    model.init_weights()
    assert model.cos.device.type == model.sin.device.type == "meta"


def meta_cache(config, seq_len):
    """A KVCache for the model, made on the meta device where its constructor takes a device (the API leaves
    that open); one that allocates on first insert follows its keys there."""
    from nanochat.engine import KVCache

    accepted = inspect.signature(KVCache).parameters
    extra = {name: value for name, value in (("device", "meta"), ("dtype", torch.float32)) if name in accepted}
    head_dim = config.n_embd // config.n_head
    return KVCache(
        batch_size=1, num_heads=config.n_kv_head, seq_len=seq_len, head_dim=head_dim, num_layers=config.n_layer, **extra
    )


def test_attention_masks_follow_the_queries_to_their_device(tiny_config):
    from nanochat.gpt import GPT, GPTConfig

    # a chunk after a cached prefix needs an explicit mask: made on the CPU, it would not be with the
    # queries on an accelerator (the meta device stands in for one)
    with torch.device("meta"):
        model = GPT(GPTConfig(**tiny_config))
        ids = torch.zeros(1, 7, dtype=torch.long)
    cache = meta_cache(model.config, seq_len=7)
    with torch.no_grad():
        model(ids[:, :4], kv_cache=cache)
        logits = model(ids[:, 4:], kv_cache=cache)  # 3 queries over 7 keys
    assert logits.device.type == "meta"
    assert logits.shape[:2] == (1, 3)


@pytest.mark.project_extras  # window_size is this project's own option
def test_the_sliding_window_mask_follows_the_queries_to_their_device(tiny_config):
    from nanochat.gpt import GPT, GPTConfig

    with torch.device("meta"):
        model = GPT(GPTConfig(**tiny_config, window_size=3))
        ids = torch.zeros(1, 7, dtype=torch.long)
    cache = meta_cache(model.config, seq_len=7)
    with torch.no_grad():
        whole = model(ids)
        model(ids[:, :4], kv_cache=cache)
        chunk = model(ids[:, 4:], kv_cache=cache)
    assert whole.device.type == chunk.device.type == "meta"
    assert (whole.shape[:2], chunk.shape[:2]) == ((1, 7), (1, 3))


@pytest.mark.project_extras  # a private helper: with neither argument given, the tables are the seed model's
def test_precomputed_rotary_tables_default_to_base_10000_and_no_scaling(make_model):
    model = make_model()
    head_dim = model.config.n_embd // model.config.n_head
    cos, sin = model._precompute_rotary_embeddings(16, head_dim)
    channels = torch.arange(0, head_dim, 2, dtype=torch.float64)
    angles = torch.outer(torch.arange(16, dtype=torch.float64), 1.0 / 10000 ** (channels / head_dim))
    torch.testing.assert_close(cos[0, :, 0].double().cpu(), angles.cos(), atol=1e-6, rtol=0)
    torch.testing.assert_close(sin[0, :, 0].double().cpu(), angles.sin(), atol=1e-6, rtol=0)


@pytest.mark.project_extras  # this project keeps the tables out of checkpoints (a pure function of the config)
def test_rotary_tables_are_not_saved(make_model):
    saved = make_model().state_dict()
    assert "cos" not in saved and "sin" not in saved
    assert "lm_head.weight" in saved


@pytest.mark.project_extras
@pytest.mark.parametrize(
    "overrides, message",
    [
        pytest.param(dict(n_embd=30), "n_embd must divide evenly into heads", id="embedding"),
        pytest.param(dict(n_kv_head=3), "query heads must divide evenly into kv groups", id="groups"),
    ],
)
def test_a_config_that_does_not_split_into_heads_says_so(tiny_config, overrides, message):
    from nanochat.gpt import GPT, GPTConfig

    with pytest.raises(AssertionError) as raised:
        GPT(GPTConfig(**{**tiny_config, **overrides}))
    assert str(raised.value) == message
