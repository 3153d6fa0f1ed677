"""Rotary configuration: a non-default base and linear position scaling reach the cos/sin tables.

A model configured with rope_theta or rope_scaling but built with the defaults still runs, and cached
decoding still agrees with the full forward: only the tables, against the closed form, show it.
"""

import pytest
import torch

from nanochat.gpt import GPT, GPTConfig

pytestmark = pytest.mark.project_extras  # rope_theta and rope_scaling are this nanochat's options, not the seed API


def closed_form(seq_len, head_dim, base, scaling):
    """angle(t, i) = (t / scaling) / base^(2i / head_dim), in float64."""
    t = torch.arange(seq_len, dtype=torch.float64)[:, None] / scaling
    i = torch.arange(head_dim // 2, dtype=torch.float64)[None, :]
    return t / base ** (2 * i / head_dim)


def check_tables(model, head_dim, base, scaling, assert_close):
    angles = closed_form(model.cos.size(1), head_dim, base, scaling)
    assert model.cos.shape == (1, angles.size(0), 1, head_dim // 2)
    assert_close(model.cos[0, :, 0].cpu().double(), angles.cos(), atol=1e-4, rtol=0)
    assert_close(model.sin[0, :, 0].cpu().double(), angles.sin(), atol=1e-4, rtol=0)


def test_rotary_base_and_scaling_come_from_the_config(device, tiny_config, assert_close):
    config = GPTConfig(**{**tiny_config, "n_embd": 64, "rope_theta": 500.0, "rope_scaling": 4.0})  # head_dim 16
    model = GPT(config)
    check_tables(model, 16, base=500.0, scaling=4.0, assert_close=assert_close)  # as built
    model.init_weights()
    check_tables(model.to(device), 16, base=500.0, scaling=4.0, assert_close=assert_close)  # re-derived


def test_position_scaling_reads_position_s_times_t_as_t(tiny_config, assert_close):
    # Linear interpolation: with rope_scaling s, position s * t gets the angles that position t had.
    plain = GPT(GPTConfig(**tiny_config))
    scaled = GPT(GPTConfig(**{**tiny_config, "rope_scaling": 2.0}))
    t = torch.arange(0, plain.cos.size(1) // 2)
    assert_close(scaled.cos[:, 2 * t], plain.cos[:, t], atol=1e-4, rtol=0)
    assert_close(scaled.sin[:, 2 * t], plain.sin[:, t], atol=1e-4, rtol=0)
    assert (scaled.cos[:, 1:] - plain.cos[:, 1:]).abs().max() > 1e-2  # and it is not the plain table


def test_defaults_are_the_seed_model(tiny_config):
    config = GPTConfig(**tiny_config)
    assert (config.window_size, config.rope_theta, config.rope_scaling) == (None, 10000.0, 1.0)
