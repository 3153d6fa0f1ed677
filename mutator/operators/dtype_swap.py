"""dtype-swap: the integer dtype of token ids is replaced by another one.

Token ids have two kinds of dtype site, and the slip that matters differs between them:

- A conversion (`.to(dtype=torch.int64)`, `.to(torch.int32)`, `.long()`, `.int()`) decides what the
  consumer gets: `F.cross_entropy` wants int64 class indices and an embedding takes int32 or int64, so
  the width is swapped (int64 <-> int32) or the ids become float32.
- A constructor (`torch.tensor(ids, dtype=torch.int64)`, `torch.full(..., dtype=...)`) decides which
  values fit. Swapping it for int32 or float32 is usually harmless (ids stay exact below 2**24 and are
  converted again later), so it is narrowed to int16 instead, which wraps every id above 32767.

Only integer dtypes are touched: these are ids, not activations. Aliases keep their style
(`torch.long` becomes `torch.int`, not `torch.int32`).
"""

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site

WIDTHS = {"int64": 64, "long": 64, "int32": 32, "int": 32, "int16": 16, "short": 16}
ALIASES = {"long", "int", "short"}
NAMES = {  # (width or "float", alias?) -> the dtype's name
    (64, False): "int64",
    (64, True): "long",
    (32, False): "int32",
    (32, True): "int",
    (16, False): "int16",
    (16, True): "short",
    ("float", False): "float32",
    ("float", True): "float",
}
OTHER_WIDTH = {64: 32, 32: 64, 16: 64}  # the width a conversion is swapped to

INTEGER_DTYPE = m.Attribute(value=m.Name("torch"), attr=m.Name(m.MatchIfTrue(lambda name: name in WIDTHS)))
DTYPE_ARG = m.Arg(keyword=m.Name("dtype"), value=INTEGER_DTYPE)
CONVERSION = m.Call(func=m.Attribute(attr=m.Name("to")))
METHOD = m.Call(func=m.Attribute(attr=m.Name("long") | m.Name("int")), args=[])  # ids.long(), ids.int()


def _variant(width) -> str:
    return f"to-{NAMES[(width, False)]}"


def _renamed(name: cst.Name, width) -> dict:
    return {name: name.with_changes(value=NAMES[(width, name.value in ALIASES)])}


class DtypeSwap(Operator):
    name = "dtype-swap"
    variants = ("to-int32", "to-int64", "to-float32", "to-int16")

    def sites(self, node, scope):
        if m.matches(node, METHOD):
            name = node.func.attr
            for width in (OTHER_WIDTH[WIDTHS[name.value]], "float"):
                yield Site(_variant(width), {name: name.with_changes(value=NAMES[(width, True)])})
        elif m.matches(node, CONVERSION):
            for arg in node.args:
                if m.matches(arg, DTYPE_ARG | m.Arg(keyword=None, value=INTEGER_DTYPE)):
                    name = arg.value.attr
                    for width in (OTHER_WIDTH[WIDTHS[name.value]], "float"):
                        yield Site(_variant(width), _renamed(name, width))
        elif isinstance(node, cst.Call):
            for arg in node.args:
                if m.matches(arg, DTYPE_ARG):
                    name = arg.value.attr
                    if WIDTHS[name.value] > 16:
                        yield Site(_variant(16), _renamed(name, 16))

    def examples(self):
        batch = (
            "tokens = torch.tensor(tokens, dtype=torch.int64)\n"
            "inputs = tokens[:-1].view(B, T).to(device=device, dtype=torch.int32)\n"
            "targets = tokens[1:].view(B, T).to(device=device, dtype=torch.int64)\n"
        )
        return (
            Example("to-int64", batch, batch.replace("dtype=torch.int32", "dtype=torch.int64")),
            Example("to-int32", batch, batch.replace("device, dtype=torch.int64", "device, dtype=torch.int32")),
            Example("to-float32", batch, batch.replace("dtype=torch.int32", "dtype=torch.float32")),
            Example("to-int16", batch, batch.replace("(tokens, dtype=torch.int64)", "(tokens, dtype=torch.int16)")),
            Example("to-int32", "y = ids.to(torch.long)\n", "y = ids.to(torch.int)\n"),
            Example("to-int32", "loss = f(logits, targets.long())\n", "loss = f(logits, targets.int())\n"),
            Example("to-float32", "x = ids.int()\n", "x = ids.float()\n"),
            # activations are not token ids; a conversion without a dtype has nothing to swap
            Example("to-int32", "x = h.to(dtype=torch.bfloat16)\n", None),
            Example("to-int32", "x = ids.to(device)\n", None),
        )
