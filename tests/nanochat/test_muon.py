"""Muon: Newton-Schulz orthogonalization, the update it applies, and that it descends.

The reference for "orthogonalized G" is U V^T from torch's SVD of G = U S V^T (the polar factor). Test
matrices are Gaussian and non-square, so their singular values (relative to the Frobenius norm) stay
well above the ~1e-2 below which ten Newton-Schulz steps are not yet converged.
"""

import itertools

import pytest
import torch

from nanochat.muon import Muon, orthogonalize

pytestmark = pytest.mark.project_extras  # Muon is not part of the nanochat API the oracles need


def gaussian(shape, seed, device):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(device)


def polar(G):
    U, _, Vh = torch.linalg.svd(G.double().cpu(), full_matrices=False)
    return (U @ Vh).float()


@pytest.mark.parametrize("shape", [(16, 48), (48, 16), (24, 40)], ids=["wide", "tall", "nearly-square"])
def test_orthogonalize_gives_the_polar_factor(device, shape):
    G = gaussian(shape, seed=0, device=device) * 3.0  # the scale of G must not matter
    X = orthogonalize(G)
    assert X.shape == G.shape and X.dtype == torch.float32
    singular_values = torch.linalg.svdvals(X.double().cpu())
    torch.testing.assert_close(singular_values, torch.ones_like(singular_values), atol=1e-3, rtol=0)
    torch.testing.assert_close(X.cpu(), polar(G), atol=1e-3, rtol=0)


def muon_step(W0, grads, lr, momentum=0.95, nesterov=True):
    """W after one Muon step per gradient in `grads` (each supplied as .grad, not computed)."""
    W = torch.nn.Parameter(W0.clone())
    opt = Muon([W], lr=lr, momentum=momentum, nesterov=nesterov)
    for grad in grads:
        W.grad = grad.clone()
        opt.step()
    return W.detach()


@pytest.mark.parametrize("shape, scale", [((16, 48), 1.0), ((48, 16), 3**0.5)], ids=["wide", "tall"])
def test_first_step_moves_by_lr_times_scaled_polar_factor(device, shape, scale):
    # first step: the momentum buffer is the gradient, and Nesterov's g + m*g only rescales it
    W0, G = gaussian(shape, 1, device), gaussian(shape, 2, device)
    lr = 0.05
    W1 = muon_step(W0, [G], lr)
    update = (W0 - W1).cpu() / (lr * scale)
    torch.testing.assert_close(update, polar(G), atol=1e-3, rtol=0)


@pytest.mark.parametrize("nesterov", [True, False])
def test_second_step_follows_the_momentum(device, nesterov):
    shape, lr, m = (16, 32), 0.05, 0.9
    W0, G1, G2 = gaussian(shape, 3, device), gaussian(shape, 4, device), gaussian(shape, 5, device)
    W1 = muon_step(W0, [G1], lr, momentum=m, nesterov=nesterov)
    W2 = muon_step(W0, [G1, G2], lr, momentum=m, nesterov=nesterov)
    buffer = m * G1 + G2
    direction = G2 + m * buffer if nesterov else buffer
    torch.testing.assert_close((W1 - W2).cpu() / lr, polar(direction), atol=1e-3, rtol=0)


def test_descends_a_quadratic(device):
    # f(W) = |W - W*|^2 / 2 has gradient G = W - W*. With P = U V^T of G, one step W - lr P gives
    # f - lr <G, P> + lr^2 |P|^2 / 2, where <G, P> is the nuclear norm of G and |P|^2 = min(m, n).
    W_star = gaussian((16, 32), 6, device)
    W = torch.nn.Parameter(gaussian((16, 32), 7, device))
    opt = Muon([W], lr=0.1)
    losses = []
    for step in range(40):
        loss = 0.5 * (W - W_star).square().sum()
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        if step == 0:
            nuclear = torch.linalg.svdvals(W.grad.double().cpu()).sum().item()
            expected_after_first = loss.item() - 0.1 * nuclear + 0.1**2 * 16 / 2
        opt.step()
    assert losses[1] == pytest.approx(expected_after_first, rel=1e-4)
    assert all(after < before for before, after in itertools.pairwise(losses))
    assert losses[-1] < 0.5 * losses[0]
