"""The operator library: one module per bug class, each a small LibCST-matcher class on `base.Operator`."""

from mutator.operators.attention_scores import AttentionScores
from mutator.operators.base import Example, Mutation, Operator, Site
from mutator.operators.concat_growth import ConcatGrowth
from mutator.operators.constant_scale import ConstantScale
from mutator.operators.dropped_statement import DroppedStatement
from mutator.operators.dtype_swap import DtypeSwap
from mutator.operators.exponent_scaling import ExponentScaling
from mutator.operators.growth_copy import GrowthCopy
from mutator.operators.head_sharing import HeadSharing
from mutator.operators.ignore_index import IgnoreIndex
from mutator.operators.inverted_predicate import InvertedPredicate
from mutator.operators.kv_head_index import KvHeadIndex
from mutator.operators.length_advance import LengthAdvance
from mutator.operators.logit_softcap import LogitSoftcap
from mutator.operators.mask_branch import MaskBranch
from mutator.operators.mask_geometry import MaskGeometry
from mutator.operators.mask_polarity import MaskPolarity
from mutator.operators.meaning import ACCUM, LOSS_MASK, MASKS
from mutator.operators.missing_reset import MissingReset
from mutator.operators.off_by_layer import OffByLayer
from mutator.operators.over_allocation import OverAllocation
from mutator.operators.position_offset import PositionOffset
from mutator.operators.rope_config import RopeConfig
from mutator.operators.rotary_rotation import RotaryRotation
from mutator.operators.sampling_filter import SamplingFilter
from mutator.operators.shared_state import SharedState
from mutator.operators.slice_shift import SliceShift
from mutator.operators.swapped_arguments import SwappedArguments
from mutator.operators.swapped_token_order import SwappedTokenOrder

OPERATORS: dict[str, Operator] = {
    operator.name: operator
    for operator in (
        ExponentScaling(),
        OffByLayer(),
        HeadSharing(),
        MaskBranch(),
        MissingReset(),
        OverAllocation(),
        ConcatGrowth(),
        LengthAdvance(),
        SwappedTokenOrder(),
        # levels 1 and 2: tokenizer, data and training
        InvertedPredicate(),
        DroppedStatement(),
        DtypeSwap(),
        SliceShift(),
        ConstantScale(),
        ConstantScale("accumulation-scale", ACCUM),
        SliceShift("mask-shift", LOSS_MASK, unless=None, context=MASKS),
        MaskPolarity(),
        IgnoreIndex(),
        SwappedArguments(),
        # level 4
        RopeConfig(),
        RotaryRotation(),
        KvHeadIndex(),
        MaskGeometry(),
        AttentionScores(),
        PositionOffset(),
        SharedState(),
        GrowthCopy(),
        SamplingFilter(),
        LogitSoftcap(),
    )
}

__all__ = ["OPERATORS", "Example", "Mutation", "Operator", "Site"]
