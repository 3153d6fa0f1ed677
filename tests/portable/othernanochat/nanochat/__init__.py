"""othernanochat: a second implementation of the nanochat API, used only as a test fixture.

It exists to show that the portable oracles in tests/nanochat (`-m "not project_extras"`) judge the
public API and not this project's choices. It takes the other reasonable choice wherever that API
leaves a detail open: a vocabulary padded to a multiple of 64 (logits sliced back), rotary tables
four times the sequence length, a KVCache with optional device/dtype arguments and separate key and
value tensors that double when full, explicit boolean attention masks with repeated kv heads, zero
initial output projections, and the calculator in engine.py.
"""

IMPLEMENTATION = "othernanochat"
