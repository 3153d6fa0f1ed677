"""The operator library: one module per bug class, each a small LibCST-matcher class on `base.Operator`."""

from mutator.operators.base import Example, Mutation, Operator, Site
from mutator.operators.exponent_scaling import ExponentScaling
from mutator.operators.inverted_predicate import InvertedPredicate
from mutator.operators.missing_reset import MissingReset
from mutator.operators.off_by_layer import OffByLayer
from mutator.operators.over_allocation import OverAllocation
from mutator.operators.swapped_token_order import SwappedTokenOrder

OPERATORS: dict[str, Operator] = {
    operator.name: operator
    for operator in (
        ExponentScaling(),
        OffByLayer(),
        InvertedPredicate(),
        MissingReset(),
        OverAllocation(),
        SwappedTokenOrder(),
    )
}

__all__ = ["OPERATORS", "Example", "Mutation", "Operator", "Site"]
