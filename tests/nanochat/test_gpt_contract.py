"""The model's smaller promises: rotary tables on the model's device and a rotation in its input's dtype, and
(this project's own) tables left out of checkpoints and the messages of a config that does not split
into heads or that outgrows its tables. Written against generic (mutmut) mutants that survived test_gpt.py.
"""

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
