"""The model's message when a sequence outgrows its rotary tables (this project's own wording and 10x
tables). Written against generic (mutmut) mutants of GPT.forward that survived test_gpt.py.
"""

import pytest
import torch


@pytest.mark.project_extras
def test_a_sequence_past_the_rotary_tables_is_refused_with_its_length(make_model, device):
    model = make_model(sequence_len=4)  # tables for 40 positions
    with torch.no_grad(), pytest.raises(AssertionError) as raised:
        model(torch.zeros(1, 41, dtype=torch.long, device=device))
    assert str(raised.value) == "sequence of 41 exceeds rotary tables (40)"
