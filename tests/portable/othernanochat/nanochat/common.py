"""Where files live."""

import os
from pathlib import Path


def get_base_dir():
    """$NANOCHAT_BASE_DIR when set, otherwise a nanochat folder in the user's cache; created if missing."""
    chosen = os.environ.get("NANOCHAT_BASE_DIR")
    base = Path(chosen) if chosen else Path.home() / ".cache" / "nanochat"
    base.mkdir(parents=True, exist_ok=True)
    return str(base)
