"""mask-branch: attention gets the wrong mask: a causal flag or a mask-choosing branch inverted, a mask
rule's boundary moved by one, or a causal / prefix mask's diagonal off by one.

Attention picks its mask by the shapes it sees: plain causal when queries and keys have the same length,
no mask for a single decoded token, a prefix-plus-causal mask for a chunk after a cache. Inverting one of
those choices (`if Tq == Tk:` -> `!=`, `is_causal=mask is None` -> `is not None`), flipping a literal
`is_causal=` inside such a branch, or shifting a `tril`/`triu` diagonal by one (each query sees one key
too many, or misses itself) keeps every shape, so only a comparison against a reference forward (full vs
cached vs chunked) sees it.

Sites, by meaning:
- an `is_causal=` argument or an `is_causal` / `has_*_mask` flag computed from a comparison;
- a choice of mask: an `if`/`elif` (or a conditional expression assigned to a mask) whose branches call
  attention or build a mask, or that sits in a function that builds masks; its comparisons are inverted,
  and its flags and helpers (`if causal:`, `if exists(mask):`) negated;
- the comparisons a mask is built from (`mask = q_idx >= kv_idx`, `mask &= linds < rinds + window`, the
  `return` of a mask function): `>=` becomes `>` and so on, a query that no longer sees itself or sees one
  key more;
- a `tril`/`triu` call's diagonal, given or not;
- the keys a fill hides: `scores.masked_fill(~keep, min)` (also with a name bound to `finfo.min`), a mask
  made its own complement (`causal_mask = ~causal_mask`) or a name bound to one (`cannot_attend =
  logical_not(eq(a, b))`), zeros filled into a bias made of masked scores (`torch.full(shape, -10000.0)`);
- in a function named for the causal flag (`_reset_is_causal`), the flags it returns; in a function that
  builds a mask, the mask it returns by a conditional, and its branches on the cache;
- a branch that turns a sliding window on or off (`window_size = config.window_size`, else None).
An `if`'s test is split into its conditions through parentheses (`if (\n offset == 0\n or ...):`).
Not sites: checks of a mask's format (dtype, rank, device, size) and masks that are not attention's (the
loss mask, padding, top-p, dropout, images), whose names say so; functions that check their inputs
(`_check_*`) and branches that only raise; whether an optional input was given (`cu_seqlens is not None`
picks a kernel's layout); flags for what to return or create (`return_padding_mask`); whether masks are
cached; branches that only convert a mask (`.to(dtype)`) or turn it into positions.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import BOUNDARY, Example, Operator, Site, binop, comparisons, parens, rewritable, rewritten
from mutator.operators.meaning import (
    bindings,
    body_of,
    callee,
    code,
    enclosing,
    mentions,
    only_complains,
    owners,
    reaches,
)

CAUSAL = re.compile(r"(?i)causal")
# what a mask choice compares: query/key lengths, shapes, the mask itself
SHAPES = re.compile(
    r"(?i)(mask|causal|^(attn|attention)_bias$|^t[qk]?$|^s_?[qk]$|^[qk]_?len|len$|^len|seq|window|shape|size"
    r"|(query|key)_?tokens)"
)
MASKING_CALL = m.Call(
    func=m.Name(m.MatchRegex(r"(?i).*(attention|attn|sdpa|tril|triu).*"))
    | m.Attribute(attr=m.Name(m.MatchRegex(r"(?i).*(attention|attn|sdpa|tril|triu|masked_fill).*")))
) | m.Call(
    args=[m.ZeroOrMore(), m.Arg(keyword=m.Name(m.MatchRegex(r"(?i)(is_causal|attn_mask|mask)"))), m.ZeroOrMore()]
)
# an additive mask is an "attention bias" (SDPA's and xformers' `attn_bias`), not a positional one
MASK_NAME = re.compile(r"(?i)mask|causal|^(attn|attention)_bias$")
# an additive mask is an attention bias (`maybe_get_attention_bias_tensor`), as MASK_NAME has it
MASK_FUNCTION = re.compile(r"(?i)mask|causal|(attn|attention)_bias")
# a causal language model is a kind of model (`wrap_hg_model_if_causal_lm`), not a causal mask
MODEL_KIND = re.compile(r"(?i)causal_?lm")
MASK_NAME_ONLY = re.compile(r"(?i)mask")
BUILDS_MASK = re.compile(r"(?i)mask|bias")  # a function that builds a mask (or bias) returns it, not a flag
# a tokenizer's special-tokens mask, a loss's or a label's: functions named for masks that are not attention's
NOT_MASK_FUNCTION = re.compile(r"(?i)special|token|loss|label")
# functions that only check their inputs: their branches choose nothing
VALIDATION = re.compile(r"(?i)^_*(check|validate|verify|assert)(s|ed)?(_|$)")
# a flag that says what to hand back (`if self.return_padding_mask:`), not which mask attention uses
OUTPUTS = re.compile(r"(?i)^_*(return|output|create|generate|requires?)_")
# what a condition is about when it chooses no attention mask: a loss's mask, whether masks are cached
# and which pipeline stage or rank a process is (`if is_decoder_input_rank:` moves tensors between ranks)
NOT_CHOSEN = re.compile(r"(?i)loss|cacheable|_cached$|(^|_)ranks?($|_)|pipeline")
# what a branch that only converts a mask calls (`bias = bias.to(dtype=dtype)`): its format, not which mask
CONVERSIONS = re.compile(r"(?i)^(to|type|float|half|bfloat16|contiguous|cuda|cpu|detach|clone|astype|cast)$")
POSITIONS = re.compile(r"(?i)pos")  # position ids computed from a padding mask: positions, not attention
# a sliding or local window: which keys a query sees, chosen by a branch that sets it
WINDOW = re.compile(r"(?i)window")
# a mask whose name says which keys it hides (`causal_mask = ~causal_mask`), not a plain `mask` of any kind
NAMED_MASK = re.compile(r"(?i)(causal|window|sliding|local|prefix|attn|attention).*mask")
# what a None check must be about to choose a mask: the mask itself, or a cache (decoding)
CHOSEN_BY_NONE = re.compile(r"(?i)mask|causal|^(attn|attention)_bias$|cache|past|window")
# calls that only reshape or convert a mask: `ops.expand_dims(i >= j, axis=0)` builds the mask of `i >= j`
RESHAPING = re.compile(r"(?i)^(expand_dims|unsqueeze|cast|astype|to|view|reshape|broadcast_to|bool|float|int)$")
BOOKKEEPING = re.compile(r"(?i)size|len|shape|idx|index")  # mask_size = ...: how big, not which mask
CHOICE = re.compile(
    r"(?i)mask|causal|sliding|window|prefix|prefill|decode(?!r)|decoding"
)  # a flag or a helper that decides which mask (a decode step; not a decoder, an encoder-decoder model)
FILLED = m.Call(func=m.Attribute(attr=m.Name("masked_fill") | m.Name("masked_fill_")), args=[m.Arg(), m.Arg()])
TRIANGLES = m.Name("tril") | m.Name("triu") | m.Name("tril_") | m.Name("triu_")
TRIANGLE = m.Call(func=TRIANGLES | m.Attribute(attr=TRIANGLES))
# a mask's format or size, not which mask: dtype and rank checks, a cached mask's length
FORMAT = re.compile(r"(?i)^(dtype|ndim|dim|device|size|shape|is_floating_point)$|isinstance|hasattr")
# masks that are not attention's (the prompt's loss mask, sampling's top-p mask, padding, dropout, images),
# and a cached mask's bookkeeping (`if self.mask_cache is None:` builds it lazily, it chooses nothing)
OTHER_MASKS = re.compile(
    r"(?i)prompt|prob|top_?[pk]|dropout|vision|image|sum_mask|masked|ignore_(index|id)|(^|_)targets?(_ids)?$|label|pos_|eos|keep"
    r"|mask_cache|cached_mask|(^|_)targets?_mask"
)
# code around attention that is not attention: losses, dropout, token shifts, positional biases, rope ramps
# (not "rotary": fused rotary-attention kernels build causal masks)
NOT_ATTENTION = re.compile(r"(?i)loss|dropout|(^|_)shift|bucket|ramp|positional|position_?bias")
# a function that computes the causal flag, by its name, or by what it is handed
CAUSAL_FLAG_FUNCTION = re.compile(r"(?i)^_*((is|use)_)?causal$|(^|_)(is|use)_causal($|_)")
ATTENTION_INPUT = re.compile(r"(?i)causal|mask|attn|attention|quer|(^|_)(keys?|[qk]|kv)(_|$)|^s_?[qk]$|^t[qk]$")
FLAG = re.compile(r"(?i)^(is_)?causal$|^has_.*mask|^use_.*mask")  # a flag that says which mask, not a mask
# what attention's masked scores are set to: the dtype's lowest value, or minus infinity
INF = m.SimpleString(m.MatchRegex(r"""^['"]-inf['"]$"""))
MASKED_SCORE = (
    m.Attribute(value=m.Call(func=m.Attribute(attr=m.Name("finfo")) | m.Name("finfo")), attr=m.Name("min"))
    | m.Call(func=m.Name("float"), args=[m.Arg(value=INF)])
    | m.UnaryOperation(operator=m.Minus(), expression=m.Call(func=m.Name("float")) | m.Attribute(attr=m.Name("inf")))
)
# a bias that starts as a large negative everywhere (`torch.full(shape, -10000.0)`) before zeros open it
HUGE = m.Integer(m.MatchIfTrue(lambda v: _magnitude(v) >= 1e4)) | m.Float(m.MatchIfTrue(lambda v: _magnitude(v) >= 1e4))
NEGATIVE_BIAS = m.UnaryOperation(operator=m.Minus(), expression=HUGE) | MASKED_SCORE
# (1.0 - mask) * finfo.min: a keep-mask turned into an additive one
ADDITIVE = m.BinaryOperation(
    operator=m.Multiply(),
    left=m.BinaryOperation(operator=m.Subtract(), left=m.Integer("1") | m.Float("1.0")),
    right=MASKED_SCORE,
)


def _magnitude(text: str) -> float:
    try:
        return abs(float(text.replace("_", "")))
    except ValueError:
        return 0.0


def _negated(test: cst.BaseExpression) -> cst.BaseExpression:
    """`not x` for x, and x for `not x`."""
    if m.matches(test, m.UnaryOperation(operator=m.Not())):
        return test.expression
    return cst.UnaryOperation(operator=cst.Not(), expression=test)


def _conditions(test: cst.BaseExpression, whole: bool = False) -> list[cst.BaseExpression]:
    """The operands of and/or (recursively), or the test itself; the test of an `if` is split through its
    parentheses too (`if (\n a == 0\n or b\n):`, `if (a or n > 0) and c:`), and `not (a == b)` is the
    comparison it negates."""
    if isinstance(test, cst.BooleanOperation) and (whole or not test.lpar):
        return _conditions(test.left, whole) + _conditions(test.right, whole)
    if m.matches(test, m.UnaryOperation(operator=m.Not())) and rewritable(test.expression):
        return [test.expression]
    return [test]


def _operands(expr) -> list[cst.Comparison]:
    """The single comparisons an expression is combined from, outside any call's arguments."""
    if rewritable(expr):
        return [expr]
    if isinstance(expr, (cst.BinaryOperation, cst.BooleanOperation)):
        return _operands(expr.left) + _operands(expr.right)
    if isinstance(expr, cst.UnaryOperation):
        return _operands(expr.expression)
    return []


def _mask_function(name: str) -> bool:
    """A function's name says it builds attention's mask or causal flag (not a special-tokens mask)."""
    name = MODEL_KIND.sub("", name)
    return bool(MASK_FUNCTION.search(name)) and not NOT_MASK_FUNCTION.search(name)


def _in_mask_function(node, scope) -> bool:
    """node sits in a function (or a function nested in one) whose name says it builds masks."""
    return any(_mask_function(function.name.value) for function in owners(node, scope))


def _validates(node, scope) -> bool:
    """node sits in a function that checks its inputs (`_check_masks_shapes`): it chooses nothing."""
    return any(VALIDATION.search(function.name.value) for function in owners(node, scope))


def _not_attention(node, scope) -> bool:
    """node sits in a loss, a dropout, a token shift, a positional bias or rotary code (by their names)."""
    return any(NOT_ATTENTION.search(owner.name.value) for owner in owners(node, scope, (cst.FunctionDef, cst.ClassDef)))


LABELS = re.compile(r"(?i)label|target")


def _writes(statement: cst.CSTNode) -> cst.CSTNode | None:
    """What a one-line statement writes to: the target of `x[k] = v`, or the receiver of `x.f(...)`."""
    if not m.matches(statement, m.SimpleStatementLine(body=[m.DoNotCare()])):
        return None
    small = statement.body[0]
    if m.matches(small, m.Assign(targets=[m.AssignTarget()])):
        return small.targets[0].target
    if m.matches(small, m.Expr(value=m.Call(func=m.Attribute()))):
        return small.value.func.value
    return None


def _converts(statement) -> bool:
    """`x = x.to(dtype=dtype, device=device)`: the statement only converts what it already holds."""
    if not m.matches(statement, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget()])])):
        return False
    assign = statement.body[0]
    value = assign.value
    if not m.matches(value, m.Call(func=m.Attribute(attr=m.Name(m.MatchIfTrue(CONVERSIONS.match))))):
        return False
    return code(value.func.value) == code(assign.targets[0].target)


def _passes_mask_on(branch: cst.If) -> bool:
    """The branch only writes the labels (`labels.masked_fill_(mask == 0, -100)`: the loss mask), or only
    files values under a key of a container that is not a mask (`state["attention_mask"] = mask`):
    it chooses no attention mask."""
    if not isinstance(branch.body, cst.IndentedBlock):
        return False
    written = [_writes(statement) for statement in branch.body.body]
    if any(target is None for target in written):
        return False
    if all(_converts(statement) for statement in branch.body.body):
        return True  # if self.attn_bias is not None: self.attn_bias = self.attn_bias.to(dtype=dtype)
    if all(mentions(target, POSITIONS) and not mentions(target, MASK_NAME) for target in written):
        return True  # if attention_mask is not None: pos = pos - cumsum(~attention_mask): positions
    labels = all(mentions(target, LABELS) for target in written)
    filed = m.Subscript(slice=[m.SubscriptElement(slice=m.Index(value=m.SimpleString() | m.FormattedString()))])
    stored = all(m.matches(t, filed) and not mentions(t.value, MASK_NAME) for t in written)
    return labels or stored


def _checks_format(node) -> bool:
    """A check of a mask's format (`mask.dtype == torch.bool`, `mask.dim() == 4`, `isinstance(mask, str)`),
    judged by the attributes and functions it uses, not by what it passes to calls (`device=`, or the
    `mask.size(-1)` of a reshape in `cols < (cols + 1).view(mask.size(-1), 1)`)."""
    names = {c.func.value for c in m.findall(node, m.Call(func=m.Name()))}
    passed = set()  # attributes inside the arguments of a call that is not itself a check (len, isinstance)
    for call in m.findall(node, m.Call(func=~m.Name(m.MatchRegex("len|isinstance|hasattr|tuple|list")))):
        passed |= {id(a) for arg in call.args for a in m.findall(arg, m.Attribute())}
    names |= {a.attr.value for a in m.findall(node, m.Attribute()) if id(a) not in passed}
    return any(FORMAT.search(name) for name in names)


def _chooses_mask(branch: cst.If, scope) -> bool:
    """The branch (or what follows in its else) calls attention or builds a mask, or, in a function that
    builds masks (`def causal_mask(...)`), returns one; a mask's size or index is bookkeeping."""
    function = enclosing(branch, scope, cst.FunctionDef)
    in_mask_function = function is not None and _mask_function(function.name.value)
    parts = [branch.body] + ([branch.orelse] if branch.orelse is not None else [])
    for part in parts:
        if m.findall(part, MASKING_CALL) or (in_mask_function and m.findall(part, m.Return())):
            return True
        targets = m.findall(part, m.AssignTarget())
        if any(mentions(t.target, MASK_NAME) and not mentions(t.target, BOOKKEEPING) for t in targets):
            return True
        for assign in m.findall(part, m.Assign()):
            if any(mentions(t.target, FLAG) for t in assign.targets) and comparisons(assign.value):
                return True  # if window is None: is_causal = q_len == k_len: the arm sets the causal flag
        if any(mentions(t.target, WINDOW) for t in targets) and _turns_window_off(branch):
            return True  # window_size = config.window_size, else window_size = None: a window or none
        if in_mask_function and targets and mentions(branch.test, CHOSEN_BY_NONE):
            # if self_attention_cache is not None: input_length = cache.shape[2]: a mask function's branch
            # on the cache (or the mask) sets what the mask is built from
            return True
    return False


_MASK_CHOOSING: dict[cst.FunctionDef, frozenset[str]] = {}  # nodes hash by identity; bounded below


def _mask_choosing_names(function: cst.FunctionDef, scope) -> frozenset[str]:
    """The names that are the whole test of a branch of `function` that chooses a mask, found once per
    function: every assignment in it asks (a search of the whole function each time, before)."""
    if function not in _MASK_CHOOSING:
        if len(_MASK_CHOOSING) > 4096:
            _MASK_CHOOSING.clear()
        branches = m.findall(function, m.If(test=m.Name()))
        _MASK_CHOOSING[function] = frozenset(b.test.value for b in branches if _chooses_mask(b, scope))
    return _MASK_CHOOSING[function]


def _turns_window_off(branch: cst.If) -> bool:
    """One arm of the branch sets a window to None: it chooses between a sliding window and none (a branch
    that only fills in a configured window's details chooses nothing)."""
    window = m.Name(m.MatchRegex(r"(?i).*window.*"))
    none = m.Assign(targets=[m.AssignTarget(target=window | m.Attribute(attr=window))], value=m.Name("None"))
    return bool(m.findall(branch, none))


def _diagonal(call: cst.Call):
    """The diagonal argument of tril/triu (keyword or the positional after the tensor), or None."""
    method_form = not m.matches(call.func, m.Name() | m.Attribute(value=m.Name("torch")))
    positional = [a for a in call.args if a.keyword is None]
    keyword = next((a for a in call.args if m.matches(a, m.Arg(keyword=m.Name("diagonal")))), None)
    if keyword is not None:
        return keyword.value
    wanted = 0 if method_form else 1
    return positional[wanted].value if len(positional) > wanted else None


def _reshaped(value):
    """What a mask is made of under calls that only reshape or convert it: `ops.expand_dims(i >= j, axis=0)`
    and `(q_idx >= kv_idx).to(dtype)` are the mask `i >= j`, `q_idx >= kv_idx`."""
    while isinstance(value, cst.Call):
        func = value.func
        # a call of something indexed or returned (`fns[0](i >= j)`) has no name: it is no reshape
        name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
        if not RESHAPING.match(name):
            break
        positional = [a for a in value.args if a.keyword is None]
        if isinstance(func, cst.Attribute) and not isinstance(func.value, cst.Name):
            value = func.value  # (q_idx >= kv_idx).to(dtype): the receiver is the mask
        elif isinstance(func, cst.Attribute) and positional and isinstance(positional[0].value, cst.Comparison):
            value = positional[0].value  # ops.expand_dims(i >= j, axis=0)
        elif isinstance(func, cst.Name) and positional:
            value = positional[0].value  # expand_dims(i >= j, 0)
        else:
            break
    return value


def _converted(where) -> bool:
    """`mask.bool()`, `mask.to(torch.bool)`: a mask in another form (an additive one, 0/1) filled in as
    scores converts it; which keys it hides was chosen where it was built."""
    return m.matches(where, m.Call(func=m.Attribute(attr=m.Name("bool") | m.Name("to") | m.Name("type"))))


def _complemented(where, scope) -> bool:
    """The mask was made the complement of another (`causal_mask = ~causal_mask`) in the function: the
    complement is mutated where it is taken, not again where it is filled."""
    root = _reshaped(where)
    while isinstance(root, (cst.Attribute, cst.Call, cst.Subscript)):
        root = root.func if isinstance(root, cst.Call) else root.value
    if not isinstance(root, cst.Name):
        return False
    invert = m.UnaryOperation(operator=m.BitInvert()) | m.Call(func=m.Attribute(attr=m.Name("logical_not")))
    return any(m.matches(v, invert) for v in bindings(body_of(where, scope)).get(root.value, ()))


def _complement_taken(where, scope) -> dict | None:
    """The edit that drops the complement a filled name was bound to (`x = torch.logical_not(m).unsqueeze(1)`
    -> `x = m.unsqueeze(1)`), unless the name complements itself (`m = ~m`, mutated as an assignment)."""
    if not isinstance(where, cst.Name) or mentions(where, NAMED_MASK):
        return None
    values = bindings(body_of(where, scope)).get(where.value, ())
    if len(values) != 1:
        return None
    inner = _reshaped(values[0])
    if m.matches(inner, m.UnaryOperation(operator=m.BitInvert())):
        return {inner: inner.expression}
    if m.matches(inner, m.Call(func=m.Attribute(attr=m.Name("logical_not")) | m.Name("logical_not"), args=[m.Arg()])):
        return {inner: inner.args[0].value}
    return None


def _optional_given(comparison: cst.Comparison) -> bool:
    """`cu_seqlens is not None`: whether an optional input was passed, unless it is a mask or a cache."""
    return isinstance(comparison.comparisons[0].operator, (cst.Is, cst.IsNot)) and not mentions(
        comparison, CHOSEN_BY_NONE
    )


def _returns_flag(node, scope) -> bool:
    """`node` is a return of a function that computes attention's causal flag: named for the flag
    (`_reset_is_causal`, `use_causal`, a property `causal`), or named for causality and handed an attention
    input (the flag, a mask, queries or keys). A name alone is not enough: `causal_conv1d_available()` says
    whether a causal convolution kernel is installed."""
    function = enclosing(node, scope, cst.FunctionDef)
    if function is None or not CAUSAL.search(function.name.value) or BUILDS_MASK.search(function.name.value):
        return False
    if CAUSAL_FLAG_FUNCTION.search(function.name.value):
        return True
    params = function.params
    names = [p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)]
    return any(ATTENTION_INPUT.search(name) for name in names)


def _fills_masked_score(call: cst.Call, scope) -> bool:
    """The call fills a masked score (`finfo.min`, `-inf`, or a name bound to one), or fills zeros into a
    bias that holds masked scores everywhere else (`torch.full(shape, -10000.0)`)."""
    value = call.args[1].value
    body = body_of(call, scope)
    if reaches(value, body, lambda n: m.matches(n, MASKED_SCORE), depth=1):
        return isinstance(value, cst.Name) or m.matches(value, MASKED_SCORE)
    receiver = call.func.value
    zero = m.Integer("0") | m.Float(m.MatchRegex(r"^0?\.0*$"))
    return (
        m.matches(value, zero)
        and isinstance(receiver, cst.Name)
        and mentions(receiver, MASK_NAME)
        and any(
            m.findall(bound, NEGATIVE_BIAS)
            and m.findall(bound, m.Call(func=m.Attribute(attr=m.Name("full")) | m.Name("full")))
            for bound in bindings(body).get(receiver.value, ())
        )
    )


# --- where attention code is, and what a branch's arms do (small predicates the sites ask) ---

ATTENTION_CLASS = re.compile(r"(?i)attention|attn")
# what computes attention: its kernels, and the softmax over the scores (not a loss's log-softmax)
ATTENDS = re.compile(
    r"(?i)^(scaled_dot_product_attention|sdpa|flex_attention|memory_efficient_attention|flash_attn\w*|softmax"
    r"|_?(masked_|scale_mask_)?softmax\w*)$"
)
# how a mask is moved along unchanged: taken out of a container, converted, copied
MOVES = re.compile(
    r"(?i)^(pop|get|to|type|float|half|bool|long|int|contiguous|clone|detach|cuda|cpu|squeeze|unsqueeze)$"
)


def _in_attention_class(node, scope) -> bool:
    """node sits in a class named for attention (`class FlashSelfAttention`): its __init__ sets its mask."""
    return any(ATTENTION_CLASS.search(cls.name.value) for cls in owners(node, scope, cst.ClassDef))


def _to_causal_builder(arg: cst.Arg, scope) -> bool:
    """arg is a keyword of a call to a function named for a causal mask (`_create_causal_bias_tensor(...,
    from_bottom_right=True)`, `make_causal_mask(...)`): a literal there decides the mask it builds."""
    call = scope.parent(arg)
    if arg.keyword is None or not isinstance(call, cst.Call):
        return False
    name = MODEL_KIND.sub("", callee(call))
    return bool(CAUSAL.search(name)) and bool(BUILDS_MASK.search(name)) and not mentions(arg.keyword, OTHER_MASKS)


def _none_arm(value) -> bool:
    """`a if c else None` (or the other way round): a conditional that turns something on or off."""
    none = m.Name("None")
    return isinstance(value, cst.IfExp) and (m.matches(value.body, none) or m.matches(value.orelse, none))


def _window_choice(value: cst.IfExp):
    """The test of a conditional that chooses a sliding window or none (`w if layer_idx not in globals else
    None`, `(w - 1, 0) if w is not None else (-1, -1)`): inverted, or negated."""
    test = value.test
    if _checks_format(test):
        return
    yield Site("branch-inverted", rewritten(test) if rewritable(test) else {test: _negated(test)})


def _attends(function: cst.FunctionDef) -> bool:
    """The function computes attention: it calls an attention kernel or a softmax, fills masked scores,
    adds a mask to scores (`scores + attention_mask`), or builds a triangle."""
    for add in m.findall(function, m.BinaryOperation(operator=m.Add())):
        if any(_additive_mask(side) for side in (add.left, add.right)):
            return True
    for call in m.findall(function, m.Call()):
        if ATTENDS.match(callee(call)) or m.matches(call, TRIANGLE):
            return True
        if m.matches(call, FILLED) and m.findall(call.args[1], MASKED_SCORE):
            return True
    return False


def _additive_mask(value) -> bool:
    """An attention mask (or a slice of one) as an operand: `attention_mask[:, :, :, :n]`, `attn_bias`."""
    while isinstance(value, (cst.Subscript, cst.Attribute)):
        if isinstance(value, cst.Attribute) and mentions(value.attr, MASK_NAME):
            break
        value = value.value
    return (
        isinstance(value, (cst.Name, cst.Attribute)) and mentions(value, MASK_NAME) and not mentions(value, OTHER_MASKS)
    )


def _moves(value) -> bool:
    """The value only moves a mask along: a name, an attribute, an item of a container, None, or one of
    those taken out (`kwargs.pop("mask")`) or converted (`.to(device)`)."""
    while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and MOVES.match(value.func.attr.value):
        value = value.func.value
    return isinstance(value, (cst.Name, cst.Attribute, cst.Subscript))


def _arm_builds_mask(branch: cst.If) -> bool:
    """An arm of the branch builds a mask (assigns a mask something more than a moved one), or calls
    attention or a function that builds a mask, or passes a literal causal flag."""
    parts = [branch.body] + ([branch.orelse] if branch.orelse is not None else [])
    for part in parts:
        for assign in m.findall(part, m.Assign()):
            if any(mentions(t.target, MASK_NAME) for t in assign.targets) and not _moves(assign.value):
                return True
        for call in m.findall(part, m.Call()):
            name = callee(call)
            if ATTENDS.match(name) or m.matches(call, TRIANGLE) or _builds_by_name(name):
                return True
        if m.findall(part, m.Arg(keyword=m.Name(m.MatchRegex(r"(?i)is_causal|causal")), value=m.Name())):
            return True
    return False


def _builds_by_name(name: str) -> bool:
    """A call named for building a mask (`make_attention_mask`), not for applying one (`masked_fill`)."""
    return _mask_function(name) and bool(BUILDS_MASK.search(name)) and not OTHER_MASKS.search(name)


def _given(condition) -> bool:
    """`x is None`, `x is not None`, `exists(x)`: whether an input was given."""
    if m.matches(condition, m.Call(func=m.Name("exists"))):
        return True
    return m.matches(
        condition,
        m.Comparison(comparisons=[m.ComparisonTarget(operator=m.Is() | m.IsNot(), comparator=m.Name("None"))]),
    )


def _in_attention_code_or_builds(branch: cst.If, scope) -> bool:
    """Whether a mask was given chooses attention's mask where attention is computed (or in a mask
    function), or when one of the branch's arms builds a mask; elsewhere (a model wrapper's forward,
    generation) it passes a mask along: `if attention_mask is None: attention_mask = kwargs.pop(...)`."""
    functions = list(owners(branch, scope))
    if not functions:
        return True  # module level: judged by the branch alone, as before
    if any(_mask_function(f.name.value) or _attends(f) for f in functions):
        return True
    return _arm_builds_mask(branch)


def _only_selects(name: str, node, scope) -> bool:
    """The mask `name` is only used to pick elements out of (or into) a tensor, or its shape, or returned:
    `right_padded_mask = indices < lengths[:, None]; new[..][right_padded_mask] = values` moves data
    between padded layouts; no attention sees it as a mask here (outside functions that build masks)."""
    if _in_mask_function(node, scope):
        return False
    function = enclosing(node, scope, cst.FunctionDef)
    if function is None:
        return False
    uses = [n for n in m.findall(function, m.Name(name))]
    indexed = {id(n) for sub in m.findall(function, m.SubscriptElement()) for n in m.findall(sub, m.Name(name))}
    shaped = {id(a.value) for a in m.findall(function, m.Attribute(value=m.Name(name), attr=m.Name("shape")))}
    returned = {id(n) for r in m.findall(function, m.Return()) for n in m.findall(r, m.Name(name))}
    targets = {id(t.target) for t in m.findall(function, m.AssignTarget(target=m.Name(name)))}
    rest = [n for n in uses if id(n) not in indexed | shaped | returned | targets]
    return bool(indexed - shaped) and not rest


class MaskBranch(Operator):
    name = "mask-branch"
    variants = (
        "is-causal-inverted",
        "is-causal-flipped",
        "branch-inverted",
        "boundary-shifted",
        "diagonal-plus-one",
        "diagonal-minus-one",
        "fill-inverted",
    )

    def sites(self, node, scope):
        handler = self._HANDLERS.get(type(node))
        if handler is None or _not_attention(node, scope) or _validates(node, scope):
            return
        yield from handler(self, node, scope)

    def _param_sites(self, node: cst.Param, scope):
        """def forward(self, q, k, v, is_causal: bool = True): what every caller that leaves it out gets;
        in `__init__`, only of an attention module (`class SelfAttention: def __init__(self, causal=False)`)."""
        if not m.matches(
            node, m.Param(name=m.Name(m.MatchRegex(r"(?i)^(is_)?causal$")), default=m.Name("True") | m.Name("False"))
        ):
            return
        function = enclosing(node, scope, cst.FunctionDef)
        if function is None or (function.name.value == "__init__" and not _in_attention_class(node, scope)):
            return  # a layer's configuration, when the layer is no attention
        flipped = cst.Name("False" if node.default.value == "True" else "True")
        yield Site("is-causal-flipped", {node.default: flipped})

    def _arg_sites(self, node: cst.Arg, scope):
        if m.matches(node, m.Arg(keyword=m.Name(m.MatchRegex(r"(?i)is_causal|causal")))):
            if m.matches(node.value, m.Name("True") | m.Name("False")):
                if _inside_branch(node, scope) or _to_causal_builder(node, scope):
                    flipped = cst.Name("False" if node.value.value == "True" else "True")
                    yield Site("is-causal-flipped", {node.value: flipped})
            else:
                for comparison in comparisons(node.value):
                    yield Site("is-causal-inverted", rewritten(comparison))
        elif _to_causal_builder(node, scope) and m.matches(node.value, m.Name("True") | m.Name("False")):
            # _create_causal_bias_tensor(q_len, k_len, from_bottom_right=True): the literal decides the mask
            flipped = cst.Name("False" if node.value.value == "True" else "True")
            yield Site("is-causal-flipped", {node.value: flipped})
        elif m.matches(node, m.Arg(keyword=m.Name(m.MatchRegex(r"(?i).*window.*")), value=m.IfExp())):
            # window_size=(w - 1, 0) if w is not None else (-1, -1): a sliding window or none
            yield from _window_choice(node.value)

    def _assign_sites(self, node, scope):
        if isinstance(node, cst.AnnAssign):  # mask: Tensor = (block_pos == 0) & (token_pos <= 0)
            if node.value is None or not m.matches(node.target, m.Name() | m.Attribute()):
                return
            target, value = node.target, node.value
        elif m.matches(node, m.Assign(targets=[m.AssignTarget(target=m.Name() | m.Attribute())])):
            target, value = node.targets[0].target, node.value
        else:
            return
        if mentions(target, FLAG) or (mentions(target, CAUSAL) and not mentions(target, MASK_NAME_ONLY)):
            for comparison in comparisons(value):
                yield Site("is-causal-inverted", rewritten(comparison))
        elif isinstance(target, cst.Name) and self._picks_mask(target.value, node, scope):
            # first_prefill = seqpos[0] == 0, then `if first_prefill:` builds the mask; of a flag made
            # of many things (`split_qkv = ... or not all([...])`), the comparisons of lengths, masks
            # and caches, not whether some optional input was given (`unpadded = cu_seqlens is not None`)
            anywhere = _in_mask_function(node, scope)
            for comparison in comparisons(value):
                if (anywhere or mentions(comparison, SHAPES)) and not _optional_given(comparison):
                    yield Site("branch-inverted", rewritten(comparison))
        elif (
            mentions(target, NAMED_MASK)
            and m.matches(value, m.UnaryOperation(operator=m.BitInvert()))
            and code(value.expression) == code(target)
        ):
            # causal_mask = ~causal_mask: the keys to hide become the keys to keep; dropped, it hides the rest
            yield Site("fill-inverted", {value: value.expression})
        elif mentions(target, WINDOW) and _none_arm(value):
            # self.window = config.window if layer_idx not in config.global_layers else None
            yield from _window_choice(value)
        elif mentions(target, MASK_NAME) and not mentions(target, OTHER_MASKS):
            test = value.test if isinstance(value, cst.IfExp) else None
            chosen = test is not None and mentions(test, CHOICE)
            if chosen and not _checks_format(test) and not mentions(test, OTHER_MASKS):
                # mask = swa_mask if layer.use_sliding else fa_mask
                yield Site("branch-inverted", rewritten(test) if rewritable(test) else {test: _negated(test)})
            if m.matches(value, ADDITIVE):  # (1.0 - mask) * finfo.min -> mask * finfo.min
                yield Site("fill-inverted", {value.left: value.left.right})
            elif (
                m.matches(value, m.UnaryOperation(operator=m.BitInvert()))
                and code(value.expression) != code(target)
                and _in_mask_function(node, scope)
            ):
                # def _combine_attention_mask(...): pad_mask = ~attention_mask.bool(): a keep-mask made a
                # mask of the keys to hide, in a function that builds the mask
                yield Site("fill-inverted", {value: value.expression})
            if not (isinstance(target, cst.Name) and _only_selects(target.value, node, scope)):
                yield from self._mask_values(value)

    def _augassign_sites(self, node: cst.AugAssign, scope):
        if m.matches(node.target, m.Name() | m.Attribute()) and mentions(node.target, MASK_NAME):
            yield from self._mask_values(node.value)  # mask &= linds < rinds + window_size

    def _return_sites(self, node: cst.Return, scope):
        if node.value is None or not _in_mask_function(node, scope):
            return
        yield from self._mask_values(node.value)  # return (kv_idx <= q_idx) & (q_idx - kv_idx < window)
        value = node.value
        if isinstance(value, cst.IfExp) and not _checks_format(value.test) and not mentions(value.test, OTHER_MASKS):
            # return minimum(padding_mask, causal_mask) if padding_mask is not None else causal_mask
            test = value.test
            yield Site("branch-inverted", rewritten(test) if rewritable(test) else {test: _negated(test)})
        elif m.matches(value, m.Name("True") | m.Name("False")) and _returns_flag(node, scope):
            # def _reset_is_causal(...): ... return False: the flag a cached decode step gets
            yield Site("is-causal-flipped", {value: cst.Name("False" if value.value == "True" else "True")})
        elif (
            isinstance(value, (cst.Name, cst.Attribute))
            and mentions(value, CAUSAL)
            and not mentions(value, BUILDS_MASK)  # return causal_4d_mask: a mask, not a flag
            and _returns_flag(node, scope)
        ):
            # ... return original_is_causal: the flag every other call gets
            yield Site("is-causal-flipped", {value: cst.UnaryOperation(operator=cst.Not(), expression=value)})

    def _if_sites(self, node: cst.If, scope):
        if not (_chooses_mask(node, scope) or mentions(node.test, MASK_NAME)):
            return
        if only_complains(node) or _passes_mask_on(node):
            return
        anywhere = _in_mask_function(node, scope)
        passed_on = None  # computed once, for a test of whether a mask was given
        for condition in _conditions(node.test, whole=True):
            if _checks_format(condition) or any(mentions(condition, p) for p in (OTHER_MASKS, OUTPUTS, NOT_CHOSEN)):
                continue
            if _given(condition):
                if passed_on is None:
                    passed_on = not _in_attention_code_or_builds(node, scope)
                if passed_on:
                    continue  # if attention_mask is None: attention_mask = kwargs.pop(...): passed along
            if rewritable(condition):
                if anywhere or mentions(condition, SHAPES):
                    yield Site("branch-inverted", rewritten(condition))
            elif mentions(condition, CHOICE):  # if is_causal:, if exists(mask):, if use_sliding_window:
                yield Site("branch-inverted", {condition: _negated(condition)})

    def _call_sites(self, node: cst.Call, scope):
        if m.matches(node, MASKING_CALL):
            # attention(q, k, v, mask if cache is None else cache.mask): the mask chosen in the call
            for arg in node.args:
                value = arg.value
                if not isinstance(value, cst.IfExp) or not mentions(
                    cst.List([cst.Element(value.body), cst.Element(value.orelse)]), MASK_NAME
                ):
                    continue
                test = value.test
                if not _checks_format(test) and not mentions(test, OTHER_MASKS):
                    yield Site("branch-inverted", rewritten(test) if rewritable(test) else {test: _negated(test)})
        if m.matches(node, FILLED) and _in_mask_function(node, scope):
            # mask.masked_fill_(cols < rows + 1, 0): the comparison that builds a causal mask in place
            yield from self._mask_values(node.args[0].value)
        elif m.matches(node, FILLED) and _fills_masked_score(node, scope):
            # bias.masked_fill_(bias == 0, finfo.min): the keys hidden are the complement of the right ones
            where = node.args[0].value
            complement = _complement_taken(where, scope)
            if complement is not None:
                # cannot_attend = torch.logical_not(torch.eq(a, b)); bias.masked_fill(cannot_attend, min):
                # the complement dropped where it is taken
                yield Site("fill-inverted", complement)
            if m.matches(where, m.UnaryOperation(operator=m.BitInvert())):
                yield Site("fill-inverted", {where: where.expression})
            elif rewritable(where) and not _checks_format(where) and not mentions(where, OTHER_MASKS):
                yield Site("fill-inverted", rewritten(where))
            elif (
                isinstance(where, (cst.Name, cst.Attribute, cst.Call))
                and mentions(where, MASK_NAME)
                and not mentions(where, OTHER_MASKS)
                and not _checks_format(where)
                and not _complemented(where, scope)
                and not _converted(where)
            ):
                # scores.masked_fill(causal_mask, -10000.0): hide the keys the mask keeps instead
                yield Site("fill-inverted", {where: cst.UnaryOperation(operator=cst.BitInvert(), expression=where)})
        elif m.matches(node, TRIANGLE):
            diagonal = _diagonal(node)
            if diagonal is not None:
                grouped = parens(diagonal) if isinstance(diagonal, cst.BinaryOperation) else diagonal
                yield Site("diagonal-plus-one", {diagonal: binop(grouped, cst.Add(), 1)})
                yield Site("diagonal-minus-one", {diagonal: binop(grouped, cst.Subtract(), 1)})
            else:  # the main diagonal by default: one more, or one fewer
                for variant, k in (("diagonal-plus-one", "1"), ("diagonal-minus-one", "-1")):
                    tight = cst.AssignEqual(
                        whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
                    )
                    arg = cst.Arg(keyword=cst.Name("diagonal"), value=cst.parse_expression(k), equal=tight)
                    yield Site(variant, {node: node.with_changes(args=[*node.args, arg])})

    @staticmethod
    def _picks_mask(name: str, assign: cst.Assign, scope) -> bool:
        """`name` is then the whole test of a branch that builds or passes a mask."""
        function = enclosing(assign, scope, cst.FunctionDef)
        return function is not None and name in _mask_choosing_names(function, scope)

    def _mask_values(self, value):
        """The comparisons that build a mask, each with its boundary moved by one: those the value is made
        of (through &, |, ~, not), not bounds passed to a call inside it (`tl.load(p, mask=offs < n)`)."""
        for comparison in _operands(_reshaped(value)):
            if not rewritable(comparison, BOUNDARY) or mentions(comparison, OTHER_MASKS):
                continue
            if not _checks_format(comparison):
                yield Site("boundary-shifted", rewritten(comparison, BOUNDARY))

    _HANDLERS = {
        cst.Param: _param_sites,
        cst.Arg: _arg_sites,
        cst.Assign: _assign_sites,
        cst.AnnAssign: _assign_sites,
        cst.AugAssign: _augassign_sites,
        cst.Return: _return_sites,
        cst.If: _if_sites,
        cst.Call: lambda self, node, scope: self._call_sites(node, scope),
    }

    def examples(self):
        decode = (
            "def attend(self, q, kv, params):\n"
            "    if (\n"
            "        params.seqlen_offset == 0\n"
            "        or not self.use_flash\n"
            "    ):\n"
            "        return self.inner_attn(q, kv)\n"
            "    return flash_attn_with_kvcache(q, kv)\n"
        )
        reset = (
            "def _reset_is_causal(num_query_tokens, num_key_tokens, is_causal):\n"
            "    if is_causal and num_query_tokens != num_key_tokens:\n"
            "        if num_query_tokens != 1:\n"
            "            raise ValueError(num_query_tokens)\n"
            "        else:\n"
            "            return False\n"
            "    return is_causal\n"
        )
        not_attention = (
            "def dropout_seq(seq, mask):\n    if exists(mask):\n        seq = seq[mask]\n"
            "class RelativePositionBias:\n    def forward(self, i, j, causal):\n        if not causal:\n"
            "            n = attn_mask(i, j)\n"
        )
        validation = (
            "def attend(q, mask, is_causal):\n    if mask is None and not is_causal:\n        raise ValueError(q)\n"
        )
        branches = (
            "def attend(q, k, v):\n"
            "    Tq, Tk = q.size(2), k.size(2)\n"
            "    if Tq == Tk:\n"
            "        return sdpa(q, k, v, is_causal=True)\n"
            "    elif Tq == 1:\n"
            "        return sdpa(q, k, v, is_causal=False)\n"
            "    allowed = torch.ones(Tq, Tk, dtype=torch.bool).tril(diagonal=Tk - Tq)\n"
            "    return sdpa(q, k, v, attn_mask=allowed)\n"
        )
        return (
            Example(
                "fill-inverted",
                "def bias(n):\n    b = torch.triu(torch.ones(n, n), diagonal=1)\n"
                "    b.masked_fill_(b == 1, torch.finfo(b.dtype).min)\n",
                "def bias(n):\n    b = torch.triu(torch.ones(n, n), diagonal=1)\n"
                "    b.masked_fill_(b != 1, torch.finfo(b.dtype).min)\n",
            ),
            Example(
                "fill-inverted",
                "scores = scores.masked_fill(~allowed, float('-inf'))\n",
                "scores = scores.masked_fill(allowed, float('-inf'))\n",
            ),
            Example(
                "fill-inverted",
                "attention_mask = (1.0 - attention_mask) * torch.finfo(dtype).min\n",
                "attention_mask = attention_mask * torch.finfo(dtype).min\n",
            ),
            # a filled value that is no masked score, a loss mask, a top-k filter that is no comparison
            Example(
                "fill-inverted",
                "s = s.masked_fill(~keep, 0.0)\nlabels = labels.masked_fill(labels == pad, float('-inf'))\n"
                "logits = logits.masked_fill(indices_to_remove, float('-inf'))\n",
                None,
            ),
            # the loss mask written into the labels, and a mask filed away for the next step
            Example(
                "branch-inverted",
                "def get_labels(labels, attention_mask):\n    if attention_mask is not None:\n"
                "        labels.masked_fill_(attention_mask == 0.0, -100)\n"
                "def step(state, attention_mask):\n    if attention_mask is not None:\n"
                '        state["attention_mask"] = attention_mask\n',
                None,
            ),
            Example(
                "branch-inverted",
                "def attend(scores, attention_mask):\n    if attention_mask is not None:\n"
                "        scores[:, :, :, :n] = scores[:, :, :, :n] + attention_mask\n",
                "def attend(scores, attention_mask):\n    if attention_mask is None:\n"
                "        scores[:, :, :, :n] = scores[:, :, :, :n] + attention_mask\n",
            ),
            Example(
                "branch-inverted",
                "def attention(q, k, v, attention_bias):\n    if attention_bias is not None:\n"
                "        attention_bias = attention_bias[:, :, -q.size(2) :, :]\n"
                "    return sdpa(q, k, v, attention_bias)\n",
                "def attention(q, k, v, attention_bias):\n    if attention_bias is None:\n"
                "        attention_bias = attention_bias[:, :, -q.size(2) :, :]\n"
                "    return sdpa(q, k, v, attention_bias)\n",
            ),
            # a positional bias is no mask
            Example(
                "branch-inverted",
                "def attention(q, k, v, position_bias):\n    if position_bias is not None:\n"
                "        position_bias = position_bias[:, :, -q.size(2) :, :]\n    return q + position_bias\n",
                None,
            ),
            # checking a mask's shape is validation, not a choice of mask
            Example(
                "branch-inverted",
                "def f(mask, b, t):\n    if mask is not None:\n        assert mask.shape == (b, t)\n",
                None,
            ),
            Example(
                "branch-inverted",
                "def f(q, mask, cache):\n    return attention(q, mask if cache is None else cache.mask)\n",
                "def f(q, mask, cache):\n    return attention(q, mask if cache is not None else cache.mask)\n",
            ),
            Example(
                "branch-inverted",
                "def metadata(seqpos, seqlens):\n    first_prefill = seqpos[0] == 0\n    if first_prefill:\n"
                "        mask = causal(seqlens)\n    return mask\n",
                "def metadata(seqpos, seqlens):\n    first_prefill = seqpos[0] != 0\n    if first_prefill:\n"
                "        mask = causal(seqlens)\n    return mask\n",
            ),
            Example(
                "is-causal-flipped",
                "def forward(self, q, k, v, is_causal: bool = True):\n    return sdpa(q, k, v, is_causal=is_causal)\n",
                "def forward(self, q, k, v, is_causal: bool = False):\n    return sdpa(q, k, v, is_causal=is_causal)\n",
            ),
            Example("is-causal-flipped", "def __init__(self, dim, causal=False):\n    self.causal = causal\n", None),
            Example("branch-inverted", not_attention, None),
            Example("branch-inverted", validation, None),
            # a ring buffer's index wrap and a mask's length are bookkeeping, not a choice of mask
            Example(
                "branch-inverted",
                "def make_mask(self):\n    if idx >= self.max_size:\n        idx = 0\n"
                "    if self.offset < self.max_size:\n        mask_size = self.offset + 1\n",
                None,
            ),
            Example(
                "boundary-shifted",
                "def make_causal_mask(n):\n    return mask.masked_fill_(cols < rows + 1, 0)\n",
                "def make_causal_mask(n):\n    return mask.masked_fill_(cols <= rows + 1, 0)\n",
            ),
            Example("branch-inverted", branches, branches.replace("Tq == Tk", "Tq != Tk")),
            Example("branch-inverted", branches, branches.replace("Tq == 1", "Tq != 1")),
            Example("is-causal-flipped", branches, branches.replace("is_causal=False", "is_causal=True")),
            Example("diagonal-plus-one", branches, branches.replace("diagonal=Tk - Tq", "diagonal=(Tk - Tq) + 1")),
            Example("diagonal-minus-one", branches, branches.replace("diagonal=Tk - Tq", "diagonal=(Tk - Tq) - 1")),
            Example(
                "is-causal-inverted",
                "y = sdpa(q, k, v, attn_mask=mask, is_causal=mask is None)\n",
                "y = sdpa(q, k, v, attn_mask=mask, is_causal=mask is not None)\n",
            ),
            Example(
                "is-causal-inverted",
                "is_causal = query.shape[2] > 1 and causal_mask is None\n",
                "is_causal = query.shape[2] <= 1 and causal_mask is None\n",
            ),
            Example("diagonal-plus-one", "mask = torch.triu(ones, 1)\n", "mask = torch.triu(ones, 1 + 1)\n"),
            # a literal flag that no branch chooses, a branch that builds no mask, a triangle with no diagonal
            Example("is-causal-flipped", "y = sdpa(q, k, v, is_causal=True)\n", None),
            Example("branch-inverted", "if kv_cache is not None:\n    k, v = kv_cache.insert_kv(i, k, v)\n", None),
            Example(
                "diagonal-plus-one",
                "m = torch.tril(torch.ones(T, T))\n",
                "m = torch.tril(torch.ones(T, T), diagonal=1)\n",
            ),
            Example("boundary-shifted", "causal_mask = q_idx >= kv_idx\n", "causal_mask = q_idx > kv_idx\n"),
            Example("boundary-shifted", "mask &= linds < rinds + window\n", "mask &= linds <= rinds + window\n"),
            Example(
                "branch-inverted",
                "if exists(mask):\n    sim = sim.masked_fill(~mask, -1e9)\n",
                "if not exists(mask):\n    sim = sim.masked_fill(~mask, -1e9)\n",
            ),
            Example(
                "branch-inverted",
                "mask = swa_mask if layer.use_sliding else fa_mask\n",
                "mask = swa_mask if not layer.use_sliding else fa_mask\n",
            ),
            Example(
                "boundary-shifted",
                "def get_sliding_window_mask_mod(w):\n    def mod(b, h, q_idx, kv_idx):\n"
                "        return (kv_idx <= q_idx) & (q_idx - kv_idx < w)\n",
                "def get_sliding_window_mask_mod(w):\n    def mod(b, h, q_idx, kv_idx):\n"
                "        return (kv_idx < q_idx) & (q_idx - kv_idx < w)\n",
            ),
            # a mask's format is not which mask: dtype and rank checks
            Example("branch-inverted", "if attn_mask.dtype == torch.bool:\n    attn_mask = attn_mask.float()\n", None),
            # a parenthesised test is split too: prefill (offset 0) or decode
            Example("branch-inverted", decode, decode.replace("seqlen_offset == 0", "seqlen_offset != 0")),
            # whether an optional input was given picks a kernel's layout, not a mask
            Example(
                "branch-inverted",
                "def forward(self, qkv, causal, cu_seqlens=None):\n    unpadded = cu_seqlens is not None\n"
                "    if unpadded:\n        return flash_attn_varlen_func(qkv, cu_seqlens, causal=causal)\n"
                "    return flash_attn_func(qkv, causal=causal)\n",
                None,
            ),
            Example(
                "branch-inverted",
                "if is_causal and (not s_q == 1):\n    causal_mask = ones.tril()\n",
                "if is_causal and (not s_q != 1):\n    causal_mask = ones.tril()\n",
            ),
            # a function that checks its inputs, a nested check that only raises, a flag for what to return,
            # a conversion, positions made from the mask, whether masks are cached
            Example(
                "branch-inverted",
                "def _check_masks_shapes(inputs, mask):\n    if mask is None:\n        mask = get_mask(inputs)\n"
                "def attend(x, mask):\n    if mask is not None:\n        if mask.shape[0] != 2:\n"
                "            raise ValueError(mask)\n"
                "def pack(self, x):\n    if self.return_padding_mask:\n        mask = ones_like(x)\n"
                "def forward(self, attention_mask, pos):\n    if self.attn_bias is not None:\n"
                "        self.attn_bias = self.attn_bias.to(dtype=dtype)\n    if attention_mask is not None:\n"
                "        pos = pos - cumsum(~attention_mask)\n"
                "def item(self):\n    if self.masks_are_cacheable:\n        attention_mask = self.stored\n",
                None,
            ),
            # a check that raises but whose else returns still chooses: the flag a decode step gets
            Example("branch-inverted", reset, reset.replace("num_query_tokens != 1", "num_query_tokens == 1")),
            Example("is-causal-flipped", reset, reset.replace("return False", "return True")),
            Example("is-causal-flipped", reset, reset.replace("return is_causal", "return not is_causal")),
            # a function that builds a mask returns the mask, not a flag
            Example("is-causal-flipped", "def causal_mask(n):\n    if n == 1:\n        return False\n", None),
            Example("is-causal-flipped", "def to_causal_4d(n):\n    return causal_4d_mask\n", None),
            Example("is-causal-flipped", "def get_causal_attention_bias(n):\n    return causal_bias\n", None),
            Example(
                "branch-inverted",
                "def get(self, i):\n    if self._generate_attention_mask:\n        mask = ones(i)\n",
                None,
            ),
            Example(
                "branch-inverted",
                "def compute_self_attention_mask(padding_mask, causal_mask):\n"
                "    return minimum(padding_mask, causal_mask) if padding_mask is not None else causal_mask\n",
                "def compute_self_attention_mask(padding_mask, causal_mask):\n"
                "    return minimum(padding_mask, causal_mask) if padding_mask is None else causal_mask\n",
            ),
            Example(
                "branch-inverted",
                "def compute_attention_mask(x, cache):\n    n = x.shape[1]\n    if cache is not None:\n"
                "        n = cache.shape[2]\n    return causal(n)\n",
                "def compute_attention_mask(x, cache):\n    n = x.shape[1]\n    if cache is None:\n"
                "        n = cache.shape[2]\n    return causal(n)\n",
            ),
            Example(
                "branch-inverted",
                "if is_window_layer(config, i):\n    window_size = config.window\nelse:\n    window_size = None\n",
                "if not is_window_layer(config, i):\n    window_size = config.window\nelse:\n    window_size = None\n",
            ),
            Example("branch-inverted", "if use_cache:\n    window_size = None\n", None),
            Example("fill-inverted", "causal_mask = ~causal_mask\n", "causal_mask = causal_mask\n"),
            Example("fill-inverted", "mask = ~mask\n", None),  # a plain mask of any kind, negated to convert it
            Example(
                "fill-inverted",
                "def attend(w, key_padding_mask, q):\n    min_val = torch.finfo(q.dtype).min\n"
                "    w = w.masked_fill(key_padding_mask.view(b, 1, 1, s), min_val)\n",
                "def attend(w, key_padding_mask, q):\n    min_val = torch.finfo(q.dtype).min\n"
                "    w = w.masked_fill(~key_padding_mask.view(b, 1, 1, s), min_val)\n",
            ),
            Example(
                "fill-inverted",
                "def attend(key_padding_mask, b, s):\n    padding_mask = torch.full((b, s), -10000.0)\n"
                "    padding_mask.masked_fill_(key_padding_mask, 0.0)\n",
                "def attend(key_padding_mask, b, s):\n    padding_mask = torch.full((b, s), -10000.0)\n"
                "    padding_mask.masked_fill_(~key_padding_mask, 0.0)\n",
            ),
            # zeros filled into a bias that holds no masked scores open nothing
            Example(
                "fill-inverted",
                "def attend(key_padding_mask, b, s):\n    padding_mask = torch.zeros(b, s)\n"
                "    padding_mask.masked_fill_(key_padding_mask, 0.0)\n",
                None,
            ),
            Example(
                "fill-inverted",
                "def apply_sequence_id(attn_bias, a, b):\n"
                "    cannot_attend = torch.logical_not(torch.eq(a, b)).unsqueeze(1)\n"
                "    return attn_bias.masked_fill(cannot_attend, torch.finfo(attn_bias.dtype).min)\n",
                "def apply_sequence_id(attn_bias, a, b):\n"
                "    cannot_attend = torch.eq(a, b).unsqueeze(1)\n"
                "    return attn_bias.masked_fill(cannot_attend, torch.finfo(attn_bias.dtype).min)\n",
            ),
            Example(
                "boundary-shifted",
                "mask = ops.expand_dims(i >= j, axis=0)\n",
                "mask = ops.expand_dims(i > j, axis=0)\n",
            ),
            Example("boundary-shifted", "x_mask = tl.load(p, mask=offs < n)\n", None),
            # a mask function that calls something indexed on its comparison: no reshape of it
            Example("boundary-shifted", "def causal_mask(i, j, fns):\n    return fns[0](i >= j)\n", None),
            # a loss's target mask, a causal LM wrapper, a pipeline rank, an encoder-decoder model, whether a
            # mask input is required, a float check: no choice of attention mask
            Example(
                "branch-inverted",
                "def nll(logits, targets, target_mask):\n    if target_mask is not None:\n"
                "        loss = loss * target_mask\n"
                "def wrap_if_causal_lm(model, config):\n    if config.model_type == 'causal_lm':\n"
                "        model = Adapter(model)\n    return model\n"
                "def decode(states, is_decoder_input_rank):\n    if is_decoder_input_rank:\n"
                "        generated_mask = torch.cat(states.mask, dim=-1)\n"
                "def generate(self, ids, enc_mask, is_encoder_decoder):\n    if is_encoder_decoder:\n"
                "        attention_mask = enc_mask\n"
                "def get_random_inputs(self, n):\n    if self.requires_attention_mask:\n"
                "        attention_mask = torch.ones(n, n)\n"
                "def normalize_mask(self, attention_mask):\n    if attention_mask.is_floating_point():\n"
                "        attention_mask = attention_mask.masked_fill(attention_mask < -1e4, -1e9)\n",
                None,
            ),
            # outside attention code, a branch that only moves a mask along passes it on; one whose arm
            # builds a mask chooses it
            Example(
                "branch-inverted",
                "def forward(self, x, attention_mask=None, **kwargs):\n    if attention_mask is None:\n"
                '        attention_mask = kwargs.pop("mask")\n'
                "    return self.model(x, attention_mask=attention_mask)\n",
                None,
            ),
            Example(
                "branch-inverted",
                "def forward(self, x, attention_mask=None):\n    if attention_mask is None:\n"
                "        attention_mask = make_attention_mask(x)\n    return self.model(x, attention_mask)\n",
                "def forward(self, x, attention_mask=None):\n    if attention_mask is not None:\n"
                "        attention_mask = make_attention_mask(x)\n    return self.model(x, attention_mask)\n",
            ),
            # a mask that only picks values into another layout is no attention mask; one filled into scores is
            Example(
                "boundary-shifted",
                "def pad_to_right(tensor, mask):\n    indices = torch.arange(mask.shape[1])\n"
                "    right_padded_mask = indices < mask.sum(1)[:, None]\n    new = torch.zeros_like(tensor)\n"
                "    new[:, : right_padded_mask.shape[1]][right_padded_mask] = tensor[mask]\n"
                "    return new, right_padded_mask\n",
                None,
            ),
            Example(
                "boundary-shifted",
                "def attend(s, i, j):\n    mask = i >= j\n    return s.masked_fill(~mask, float('-inf'))\n",
                "def attend(s, i, j):\n    mask = i > j\n    return s.masked_fill(~mask, float('-inf'))\n",
            ),
            # an annotated assignment builds a mask like a plain one
            Example(
                "boundary-shifted",
                "mask: Tensor = (block_pos == 0) & (token_pos <= 0)\n",
                "mask: Tensor = (block_pos == 0) & (token_pos < 0)\n",
            ),
            # a window or none, chosen by a conditional: per layer, or passed to the kernel
            Example(
                "branch-inverted",
                "self.window = config.window if layer_idx not in config.global_layers else None\n",
                "self.window = config.window if layer_idx in config.global_layers else None\n",
            ),
            Example("branch-inverted", "self.window = config.window if config.window else 4096\n", None),
            Example(
                "branch-inverted",
                "y = flash_attn_func(q, k, v, window_size=(w - 1, 0) if w is not None else (-1, -1))\n",
                "y = flash_attn_func(q, k, v, window_size=(w - 1, 0) if w is None else (-1, -1))\n",
            ),
            Example("branch-inverted", "y = flash_attn_func(q, k, v, window_size=w)\n", None),
            # a literal handed to a causal mask's builder decides that mask; to another function it does not
            Example(
                "is-causal-flipped",
                "bias = _create_causal_bias_tensor(q_len, k_len, from_bottom_right=True)\n",
                "bias = _create_causal_bias_tensor(q_len, k_len, from_bottom_right=False)\n",
            ),
            Example("is-causal-flipped", "mask = get_attention_mask(tok, ids, prepend_bos=True)\n", None),
            # the default of an attention module's causal flag is the mask every layer gets
            Example(
                "is-causal-flipped",
                "class SelfAttention:\n    def __init__(self, causal=False):\n        self.causal = causal\n",
                "class SelfAttention:\n    def __init__(self, causal=True):\n        self.causal = causal\n",
            ),
            # in a function that builds a mask, a keep-mask complemented into the keys to hide
            Example(
                "fill-inverted",
                "def combine_mask(block_mask, attention_mask):\n    pad_mask = ~attention_mask.bool()\n"
                "    return block_mask | pad_mask\n",
                "def combine_mask(block_mask, attention_mask):\n    pad_mask = attention_mask.bool()\n"
                "    return block_mask | pad_mask\n",
            ),
            # an arm that computes the causal flag from the lengths chooses the mask
            Example(
                "branch-inverted",
                "def forward(self, q, k):\n    is_causal = False\n    if self.window is None:\n"
                "        is_causal = q.size(1) == k.size(1)\n    return sdpa(q, k, is_causal=is_causal)\n",
                "def forward(self, q, k):\n    is_causal = False\n    if self.window is not None:\n"
                "        is_causal = q.size(1) == k.size(1)\n    return sdpa(q, k, is_causal=is_causal)\n",
            ),
            # a function that gets an attention bias (an additive mask) chooses it: none for a single query
            Example(
                "branch-inverted",
                "def maybe_get_attention_bias(bias, q_layout):\n    if q_layout.max_seq_len == 1:\n"
                "        return None\n    return make(bias, q_layout)\n",
                "def maybe_get_attention_bias(bias, q_layout):\n    if q_layout.max_seq_len != 1:\n"
                "        return None\n    return make(bias, q_layout)\n",
            ),
            # a function named for causality that says whether a kernel is installed returns no causal flag;
            # one handed the query and key lengths does
            Example("is-causal-flipped", "def causal_conv1d_available():\n    return True\n", None),
            Example(
                "is-causal-flipped",
                "def _causal_after_cache(query_len, key_len):\n    if query_len == 1:\n        return False\n"
                "    return True\n",
                "def _causal_after_cache(query_len, key_len):\n    if query_len == 1:\n        return True\n"
                "    return True\n",
            ),
        )


def _inside_branch(node, scope) -> bool:
    """Whether `node` sits in an if/elif/else body (where a branch chose this literal)."""
    parent = scope.parent(node)
    while parent is not None and not isinstance(parent, (cst.FunctionDef, cst.Module)):
        if isinstance(parent, (cst.If, cst.Else)):
            return True
        parent = scope.parent(parent)
    return False
