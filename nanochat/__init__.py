"""A small, readable reference implementation of the nanochat model, engine, tokenizer and tools."""
