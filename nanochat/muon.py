"""Muon: momentum SGD whose update for each weight matrix is replaced by the nearest orthogonal matrix.

For a gradient (or momentum) G = U S V^T, Muon steps along U V^T: every singular direction moves by
the same amount, so the few directions that dominate a raw gradient no longer drown out the rest. U V^T
is approximated without an SVD by a Newton-Schulz iteration on X = G / ||G||_F (all singular values
in (0, 1]):

    X <- X (15 I - 10 X^T X + 3 (X^T X)^2) / 8

the Taylor expansion of X (X^T X)^(-1/2) around X^T X = I, to second order. Each step maps a singular
value s to s (15 - 10 s^2 + 3 s^4) / 8: 1 is a fixed point with cubic convergence, and small s grow by
15/8 per step. Ten steps bring every s >= 1e-2 (relative to ||G||_F) to 1 within float32 noise and
leave smaller ones short of it, which only damps the weakest directions; fewer steps with tuned
coefficients are faster but spread all singular values around 1. Zero singular values stay zero (U V^T
of a rank-deficient matrix has them too).

Only for 2-D parameters; the model's embedding and head go to AdamW (see GPT.setup_optimizers).
Computed in float32 whatever the parameter's dtype.
"""

import torch


@torch.no_grad()
def orthogonalize(G, steps=10):
    """Approximate U V^T for G = U S V^T of shape (m, n), by Newton-Schulz iteration in float32."""
    assert G.ndim == 2, "Muon orthogonalizes matrices"
    X = G.float()
    transposed = X.size(0) > X.size(1)
    if transposed:
        X = X.T  # work on the wide side: X X^T is the smaller Gram matrix
    X = X / (X.norm() + 1e-7)  # Frobenius norm bounds the spectral norm: singular values <= 1
    for _ in range(steps):
        A = X @ X.T
        X = (15 * X - 10 * A @ X + 3 * A @ A @ X) / 8
    if transposed:
        X = X.T
    return X


class Muon(torch.optim.Optimizer):
    """Momentum (Nesterov by default), then orthogonalize, then step: p -= lr * scale * U V^T.

    scale = sqrt(max(1, fan_out / fan_in)) for a weight of shape (fan_out, fan_in): an orthogonal update
    has spectral norm 1, and this keeps the update's effect on the RMS of the layer's output the same for
    tall matrices (MLP up-projections) as for square ones.
    """

    def __init__(self, params, lr=0.02, momentum=0.95, nesterov=True, ns_steps=10):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            momentum = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p.grad)
                buffer = state["momentum_buffer"]
                buffer.mul_(momentum).add_(p.grad)
                # Nesterov: look ahead along the momentum, as if this gradient were applied once more
                direction = p.grad.add(buffer, alpha=momentum) if group["nesterov"] else buffer
                update = orthogonalize(direction, group["ns_steps"])
                scale = max(1.0, p.size(0) / p.size(1)) ** 0.5
                p.add_(update.to(p.dtype), alpha=-group["lr"] * scale)
