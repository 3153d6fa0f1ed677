"""What the operators ask about code's meaning: the words its names use, where a name got its value,
and which definition a node sits in.

Operators recognise a site by what the code computes, in any file and any function. These helpers keep
that recognition small: the identifiers an expression mentions (`self.n_kv_head` mentions `self` and
`n_kv_head`), the values a name is bound to in the enclosing function (one step of data flow, enough for
`channel_range = torch.arange(0, d, 2)` followed by `base ** (channel_range / d)`), and the enclosing
function and class of a node.
"""

from __future__ import annotations

import functools
import re

import libcst as cst
import libcst.matchers as m


def identifiers(node: cst.CSTNode) -> set[str]:
    """Every name and attribute name in `node` (`self.cache.k` -> {"self", "cache", "k"})."""
    return {name.value for name in m.findall(node, m.Name())}


def descendants(node: cst.CSTNode) -> list[cst.CSTNode]:
    """`node` and every node below it, in source order."""
    found = []

    class _All(cst.CSTVisitor):
        def on_visit(self, child):
            found.append(child)
            return True

    node.visit(_All())
    return found


def value_identifiers(node: cst.CSTNode) -> set[str]:
    """The names in `node` that stand for values: a call's keyword (`prepend` in `f(x, prepend=True)`) names a
    parameter of the callee, not a value the expression holds."""
    keywords = {id(arg.keyword) for arg in m.findall(node, m.Arg()) if arg.keyword is not None}
    return {name.value for name in m.findall(node, m.Name()) if id(name) not in keywords}


def callee(call: cst.Call) -> str:
    """The called function's own name: `append` for `row.tokens.append(x)`, `emit` for `emit(x)`, "" for a call
    through a subscript or a call (`handlers[i](x)`, `make()(x)`)."""
    func = call.func
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else ""


def mentions(node: cst.CSTNode, pattern: re.Pattern) -> bool:
    """Whether any identifier in `node` matches `pattern` (searched, not anchored)."""
    return any(pattern.search(name) for name in identifiers(node))


def code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def enclosing(node: cst.CSTNode, scope, kind: type) -> cst.CSTNode | None:
    """The nearest ancestor of `node` of type `kind` (cst.FunctionDef, cst.ClassDef, cst.Module)."""
    parent = scope.parent(node)
    while parent is not None and not isinstance(parent, kind):
        parent = scope.parent(parent)
    return parent


def owners(node: cst.CSTNode, scope, kind: type | tuple = cst.FunctionDef):
    """The definitions `node` sits in, innermost first (a function nested in a function yields both)."""
    owner = enclosing(node, scope, kind)
    while owner is not None:
        yield owner
        owner = enclosing(owner, scope, kind)


def body_of(node: cst.CSTNode, scope) -> cst.CSTNode:
    """The function `node` sits in, or the module at top level: where its names are bound."""
    return enclosing(node, scope, cst.FunctionDef) or enclosing(node, scope, cst.Module) or node


@functools.lru_cache(maxsize=256)
def bindings(body: cst.CSTNode) -> dict[str, tuple[cst.BaseExpression, ...]]:
    """name -> the values assigned to it in `body` (`x = ...`, `x: T = ...`, and a loop variable to what it
    iterates over: `for c in channels`, `[... for c in channels]`)."""
    found: dict[str, list] = {}
    for loop in m.findall(body, m.CompFor(target=m.Name()) | m.For(target=m.Name())):
        found.setdefault(loop.target.value, []).append(loop.iter)
    for assign in m.findall(body, m.Assign() | m.AnnAssign()):
        if assign.value is None:
            continue
        targets = [t.target for t in assign.targets] if isinstance(assign, cst.Assign) else [assign.target]
        for target in targets:
            if isinstance(target, cst.Name):
                found.setdefault(target.value, []).append(assign.value)
    return {name: tuple(values) for name, values in found.items()}


def reaches(expr: cst.CSTNode, body: cst.CSTNode, predicate, depth: int = 3) -> bool:
    """Whether `predicate` holds for a node of `expr`, or of a value its names were bound to in `body`
    (followed `depth` steps)."""
    if any(predicate(node) for node in descendants(expr)):
        return True
    if depth == 0:
        return False
    assigned = bindings(body)
    return any(
        reaches(value, body, predicate, depth - 1)
        for name in identifiers(expr)
        for value in assigned.get(name, ())
        if value is not expr
    )


@functools.lru_cache(maxsize=256)
def class_attributes(cls: cst.ClassDef) -> frozenset[str]:
    """The attributes the class's methods keep on `self` (`self.k_cache`, or a buffer registered by name)."""
    names = {a.attr.value for a in m.findall(cls, m.Attribute(value=m.Name("self")))}
    registered = m.findall(
        cls,
        m.Call(func=m.Attribute(attr=m.Name("register_buffer")), args=[m.Arg(value=m.SimpleString()), m.ZeroOrMore()]),
    )
    return frozenset(names | {str(call.args[0].value.evaluated_value) for call in registered})


SUMMED = m.Arg(keyword=m.Name(m.MatchRegex(r"(?i)(loss_)?reduction")), value=m.SimpleString(m.MatchRegex("^.sum.$")))


def divides_by_callers_count(division: cst.CSTNode, scope) -> bool:
    """A summed loss divided by a count the caller hands in: `ce_loss / batch_size_in_tokens` in a function
    that computes its loss with `reduction="sum"` and takes the divisor as a parameter. The caller counted
    the whole batch, across its micro-batches; a count made in the function (`loss / n_tokens`) is a mean."""
    if not m.matches(division, m.BinaryOperation(operator=m.Divide(), right=m.Name())):
        return False
    function = enclosing(division, scope, cst.FunctionDef)
    if function is None or not mentions(division.left, LOSS) or division.right.value in bindings(function):
        return False
    parameters = {p.name.value for p in (*function.params.params, *function.params.kwonly_params)}
    return division.right.value in parameters and bool(m.findall(function.body, SUMMED))


BACKWARD = m.Call(func=m.Attribute(attr=m.Name("backward")) | m.Name("backward"))
LEN = m.Call(func=m.Name("len"), args=[m.Arg()])


def divides_by_backward_loops_count(division: cst.CSTNode, scope) -> bool:
    """The loss divided by how many times the loop around it runs backward: `loss = loss / num_batches`
    in `for i in range(num_batches): ... backward(loss)`, or `loss / len(batches)` in `for b in batches`.
    That loop is gradient accumulation, whatever its count is called, and the division its normalisation."""
    if not m.matches(division, m.BinaryOperation(operator=m.Divide())) or not mentions(division.left, LOSS):
        return False
    loops = [loop for loop in owners(division, scope, cst.For) if m.findall(loop.body, BACKWARD)]
    if not loops:
        return False
    divisor = code(division.right)
    function = enclosing(division, scope, cst.FunctionDef)
    assigned = bindings(function) if function is not None else {}
    # what the divisor counts: `n` itself, or what `n = len(batches)` measures
    counted = {divisor} | {code(value.args[0].value) for value in assigned.get(divisor, ()) if m.matches(value, LEN)}
    if m.matches(division.right, LEN):
        counted.add(code(division.right.args[0].value))
    for loop in loops:
        runs = loop.iter
        if m.matches(runs, m.Call(func=m.Name("range") | m.Name("enumerate"), args=[m.Arg()])):
            runs = runs.args[0].value  # range(n), enumerate(batches)
        if m.matches(runs, LEN):
            runs = runs.args[0].value  # range(len(batches))
        if code(runs) in counted:
            return True
    return False


# --- the words that carry a quantity's meaning in ML code -----------------------------------------
# Where the structure alone is everywhere (a division, a slice, an integer dtype), what a value *is*
# shows in the names it is computed from or assigned to: `loss / grad_accum_steps` normalises gradient
# accumulation, `tokens[1:]` shifts targets, `round(warmup_ratio * n)` is a warmup length.

# the token that starts a sequence: BOS, start-of-text, start-of-sequence, a packer's start token
BOS = re.compile(r"(?i)(^|_)(bos|sot|sos)(_|$)|begin_of_text|^prepend(_id|_token)?$|(^|_)start_token($|_id)")
# a count of the micro-batches one step accumulates (`grad_accum_steps`, megatron-style `num_microbatches`;
# a micro-batch's size, `micro_batch_size`, is not a count of them)
ACCUM = re.compile(r"(?i)accum|num_items_in_batch|valid_tokens|micro_?batches")
LOSS = re.compile(r"(?i)loss")
# a learning-rate decay phase, as opposed to weight decay (`weight_decay`, OLMo-style `decay` / `no_decay`
# parameter sets): the decay of a schedule has a length, a ratio or an end
LR_DECAY = r"lr_?decay|(?<!weight_)(?<!no_)decay_?(steps?|iters?|ratio|frac|start|end|epochs?|len|type|period|phase)"
# (a pipeline's warm-up, `num_warmup_microbatches`, counts micro-batches, not steps of the schedule)
SCHEDULE = re.compile(
    rf"(?i)warm(?!up_?micro)|{LR_DECAY}|cooldown|anneal|stable_(steps|iters)|num_iterations|total_steps|max_steps"
    r"|max_iters|training_steps"
)
TOKENS = re.compile(r"(?i)tok|(^|_)ids?$|^idx$|target|label|prompt|^inputs?$|^batch|^sample$|^_?next")
# ... and ids that number something other than the vocabulary: requests, cache blocks, experts (a count of
# tokens, `total_num_tokens`, is not a token either)
NOT_TOKENS = re.compile(
    r"(?i)pos|arange|mask|len|count|offset|lengths|step|doc|segment|seq_id|valid|seen|(^|_)(n|num|total)_?tokens"
    r"|(request|block|page|slot|expert|rank)s?_?(ids?|idx|ind)"
)
SHIFTED = re.compile(
    r"(?i)tokens?$|token_ids|(^|_)ids?($|_)|target|label|logit|logprob|(^|_)probs($|_)|input|^batch|buffer|pred|^x$"
)
# the fine-tuning loss mask, as opposed to attention's: what it is about is the labels and who spoke
MASKS = re.compile(r"(?i)ignore|label|target|loss_mask|assistant|train_on_input|^masked$")
LOSS_MASK = re.compile(r"(?i)^(loss_|label_|target_|sft_)?masks?$")  # a mask that is not attention's
ANY_MASK = re.compile(r"(?i)mask")
OPTIMIZERS = re.compile(r"(?i)adam|muon|sgd|lion|optim|(^|_)opt($|_)|param|decay")


# --- branches that only complain --------------------------------------------------------------------
# A branch whose every statement raises, asserts, warns or logs checks its inputs: inverting it chooses
# nothing (no other mask, no other head sharing), it only moves where the program stops or what it prints.

COMPLAINTS = m.SimpleStatementLine(
    body=[
        m.Raise()
        | m.Assert()
        | m.Expr(
            value=m.Call(
                func=m.Name(m.MatchRegex(r"(?i)print|warn.*"))
                | m.Attribute(attr=m.Name(m.MatchRegex(r"(?i)warn.*|error|info|debug")))
            )
        )
    ]
)


def complains(block) -> bool:
    """Every statement of the block raises or warns, or is an `if` (with no else) that only does that."""
    return isinstance(block, cst.IndentedBlock) and all(
        m.matches(s, COMPLAINTS) or (isinstance(s, cst.If) and s.orelse is None and complains(s.body))
        for s in block.body
    )


def only_complains(branch: cst.If) -> bool:
    """A branch that only raises or warns validates its input (`if mask is not None: if mask.ndim != 2:
    raise ...`); inverting it changes no computation. One whose else does something (`if n != 1: raise ...
    else: return False`) still chooses."""
    orelse = branch.orelse
    return complains(branch.body) and (orelse is None or isinstance(orelse, cst.If) or complains(orelse.body))


# --- values that are only reported ------------------------------------------------------------------
# A loss averaged over the accumulation steps for a log line (`logs["loss_mean"] = loss_sum / accum`,
# `self.log("loss", loss / n)`) trains nothing: a slip there changes a printed number, not a gradient.

REPORTS = re.compile(r"(?i)(^|_)(logs?|logger|metrics?|stats|summary|records?|postfix|progress)(_|$)")
REPORTING_CALL = re.compile(r"(?i)^(log|log_dict|log_metrics|print|info|debug|add_scalars?|set_postfix)$")
MATH = re.compile(r"^(torch|math|np|numpy|jnp|mx)$")  # torch.log(x) is a logarithm


def only_reported(node: cst.CSTNode, scope) -> bool:
    """`node`'s value goes to a log, a metrics table or a progress bar, and nowhere else: it is an argument of
    a reporting call, or the statement stores it only into a container that the code names for reporting."""
    parent = scope.parent(node)
    while parent is not None and not isinstance(parent, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
        if isinstance(parent, cst.Call) and REPORTING_CALL.match(callee(parent)) and not _math(parent):
            return True
        parent = scope.parent(parent)
    if parent is None or not isinstance(parent, cst.SimpleStatementLine) or not parent.body:
        return False
    small = parent.body[0]
    if not isinstance(small, cst.Assign):
        return False
    stores = [t.target for t in small.targets]
    return all(
        isinstance(target, (cst.Subscript, cst.Attribute)) and mentions(target.value, REPORTS) for target in stores
    )


def _math(call: cst.Call) -> bool:
    func = call.func
    return isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and bool(MATH.match(func.value.value))
