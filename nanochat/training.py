"""Training: the learning-rate schedule, one optimisation step with gradient accumulation, fine-tuning
batches, and a small training loop that runs on CPU.

The optimizers come from GPT.setup_optimizers (AdamW for embedding and head, Muon for the blocks). Every
param group keeps its base rate as "initial_lr"; each step sets lr = initial_lr * get_lr_multiplier(...).
"""

import torch


def get_lr_multiplier(step, num_iterations, warmup_ratio=0.0, warmdown_ratio=0.2, final_lr_frac=0.0):
    """The factor on every base learning rate at `step` (0-based): linear warmup, constant, linear warmdown.

    Warmup: (step + 1) / warmup_iters for the first warmup_iters steps, so step 0 already trains and the
    last warmup step reaches 1. Warmdown: from 1 at step num_iterations - warmdown_iters, linearly down
    to final_lr_frac at step num_iterations.
    """
    warmup_iters = round(warmup_ratio * num_iterations)
    warmdown_iters = round(warmdown_ratio * num_iterations)
    if step < warmup_iters:
        return (step + 1) / warmup_iters
    warmdown_start = num_iterations - warmdown_iters
    if step <= warmdown_start:
        return 1.0
    progress = (step - warmdown_start) / warmdown_iters  # in (0, 1], 1 at step num_iterations
    return 1.0 - progress * (1.0 - final_lr_frac)


def accumulate_gradients(model, batches, grad_accum_steps):
    """Forward and backward over grad_accum_steps micro-batches drawn from `batches`; the mean loss.

    backward() adds into .grad, so each micro-batch's loss (a mean over its tokens) is divided by
    grad_accum_steps first: the summed gradient is then that of the mean loss over all micro-batches,
    which is the full batch's loss when micro-batches hold equal numbers of trained targets.
    """
    losses = []
    for _ in range(grad_accum_steps):
        inputs, targets = next(batches)
        loss = model(inputs, targets)
        losses.append(loss.detach())
        loss = loss / grad_accum_steps
        loss.backward()
    return torch.stack(losses).mean().item()


def step_optimizers(model, optimizers, lr_multiplier):
    """Scale every group's lr from its initial_lr, step every optimizer, and clear the gradients."""
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * lr_multiplier
        optimizer.step()
    model.zero_grad(set_to_none=True)


def sft_batch(tokenizer, conversations, device="cpu"):
    """(inputs, targets) of shape (B, T) for fine-tuning on conversations; T is the longest rendering - 1.

    Rows are rendered with tokenizer.render_conversation and right-padded. Target t is the token at t + 1,
    trained only where the mask at t + 1 is 1 (the assistant's own tokens); elsewhere, and at padding, it
    is -1, which the loss ignores. Padding sits after every real token, so causal attention keeps it from
    changing the real positions. Dtypes as in pre-training: int32 inputs, int64 targets.
    """
    rendered = [tokenizer.render_conversation(conversation) for conversation in conversations]
    length = max(len(ids) for ids, _ in rendered)
    pad = tokenizer.get_bos_token_id()  # any valid id: padded targets are ignored
    ids = torch.full((len(rendered), length), pad, dtype=torch.int64)
    mask = torch.zeros((len(rendered), length), dtype=torch.int64)  # 0 at padding: never trained
    for row, (row_ids, row_mask) in enumerate(rendered):
        ids[row, : len(row_ids)] = torch.tensor(row_ids)
        mask[row, : len(row_mask)] = torch.tensor(row_mask)
    inputs = ids[:, :-1]
    targets = apply_loss_mask(ids[:, 1:], mask)
    return inputs.to(device=device, dtype=torch.int32), targets.to(device=device, dtype=torch.int64)


def apply_loss_mask(targets, mask):
    """Targets (B, T - 1) with -1, which the loss ignores, wherever the token they predict is not trained.

    mask is (B, T), one entry per token: target t predicts token t + 1, so mask[:, t + 1] decides it.
    """
    targets = targets.clone()  # a copy: the caller's tensor shares storage with the inputs
    predicted = mask[:, 1:]  # aligned with the targets: is the predicted token the assistant's?
    targets[predicted == 0] = -1
    return targets


def train(
    model,
    batches,
    num_iterations,
    grad_accum_steps=1,
    warmup_ratio=0.0,
    warmdown_ratio=0.2,
    final_lr_frac=0.0,
    **optimizer_kwargs,
):
    """Train `model` for num_iterations steps on an iterator of (inputs, targets); the loss of each step.

    optimizer_kwargs go to model.setup_optimizers (unembedding_lr, embedding_lr, matrix_lr, weight_decay).
    """
    optimizers = model.setup_optimizers(**optimizer_kwargs)
    losses = []
    for step in range(num_iterations):
        losses.append(accumulate_gradients(model, batches, grad_accum_steps))
        lr_multiplier = get_lr_multiplier(step, num_iterations, warmup_ratio, warmdown_ratio, final_lr_frac)
        step_optimizers(model, optimizers, lr_multiplier)
    return losses
