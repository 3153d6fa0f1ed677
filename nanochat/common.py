"""Shared helpers: where nanochat keeps its files, and which device to run on."""

import os

import torch


def get_base_dir() -> str:
    """The directory for tokenizers and checkpoints: $NANOCHAT_BASE_DIR, else ~/.cache/nanochat."""
    base_dir = os.environ.get("NANOCHAT_BASE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "nanochat")
    os.makedirs(base_dir, exist_ok=True)
    return base_dir


def autodetect_device_type() -> str:
    """The best device torch can use here: cuda, then mps, then cpu."""
    if torch.cuda.is_available():
        return "cuda"
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
