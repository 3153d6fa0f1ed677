"""constant-scale: a length derived from a fraction, or a divisor, is off by a constant factor.

A schedule derives its phase lengths from fractions of the run: `warmup_iters = round(warmup_ratio *
num_iterations)`. Scaled by 100 the warmup outlasts the run and the learning rate never reaches its base
value; by 10 or a tenth, training still works but is slower or unstable at the start. The same slip in a
divisor (`(step + 1) / warmup_iters`, `loss / grad_accum_steps`) stretches the ramp, or rescales the
gradient, by that factor.

Sites: `round(a * b)` (also `int`, `math.ceil`, `math.floor`), named after the variable it is assigned
to; and `a / n` with a name, attribute, call or difference `n` as divisor, named after the divisor.
Literals are left alone: `x / 2` or `eps=1e-8` are not a length or a count. Divisions are everywhere, so
the length or the divisor must name what the class is about; the operator is made once per meaning (a
schedule's phases, gradient accumulation: see OPERATORS).
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import (
    BOUNDARY,
    Example,
    Operator,
    Site,
    binop,
    comparisons,
    drop_statement,
    parens,
    rewritable,
    rewritten,
)
from mutator.operators.meaning import (
    ACCUM,
    BACKWARD,
    LR_DECAY,
    SCHEDULE,
    bindings,
    body_of,
    divides_by_backward_loops_count,
    divides_by_callers_count,
    enclosing,
    identifiers,
    mentions,
    only_reported,
    owners,
)

ROUNDING = m.Name("round") | m.Name("int") | m.Attribute(attr=m.Name("ceil") | m.Name("floor"))
LENGTH = m.Call(func=ROUNDING, args=[m.Arg(keyword=None, value=m.BinaryOperation(operator=m.Multiply()))])
# min(max_iters, warmup_steps * accum_iters): a length clamped to the run, its product scaled
CLAMPED = m.Call(
    func=m.Name("min") | m.Name("max"),
    args=[m.ZeroOrMore(), m.Arg(keyword=None, value=m.BinaryOperation(operator=m.Multiply())), m.ZeroOrMore()],
)
RATIO = m.BinaryOperation(
    operator=m.Divide(), right=m.Name() | m.Attribute() | m.Call() | m.BinaryOperation(operator=m.Subtract())
)
# ... and, in a learning-rate function, the fraction of a phase done: `num_steps / self.num_stage_steps[0]`
STEP_RATIO = m.BinaryOperation(operator=m.Divide(), right=m.Subscript())
PHASE_TEST = m.If(
    test=m.Comparison(
        comparisons=[
            m.ComparisonTarget(operator=m.LessThan() | m.LessThanEqual() | m.GreaterThan() | m.GreaterThanEqual())
        ]
    )
)
# a length kept at least (or at most) a literal: `warmup_steps = max(self.lr_warmup_steps, 1)`
FLOORED = m.Assign(
    targets=[m.AssignTarget(target=m.Name() | m.Attribute())],
    value=m.Call(
        func=m.Name("min") | m.Name("max"),
        args=[
            m.Arg(keyword=None, value=m.Name() | m.Attribute() | m.Integer()),
            m.Arg(keyword=None, value=m.Name() | m.Attribute() | m.Integer()),
        ],
    ),
)
CHOSEN_LENGTH = m.Assign(targets=[m.AssignTarget(target=m.Name())], value=m.IfExp())
# a phase's end; `k >= max_iters` ends a loop, a pipeline's warm-up counts micro-batches, not steps, and
# gradient clipping's warm-up is not the learning rate's
PHASE = re.compile(
    rf"(?i)(?<!clip_)warm(?!up_?micro)|{LR_DECAY}|cooldown|anneal"
)  # a phase's end; `k >= max_iters` ends a loop
COSINE = m.Call(func=m.Attribute(attr=m.Name("cos")), args=[m.Arg(value=m.BinaryOperation())])
ORDERING = m.LessThan() | m.LessThanEqual() | m.GreaterThan() | m.GreaterThanEqual()
NUMBER = m.Integer() | m.Float()
# a step counter advanced in a schedule: `self.num_steps += increment`, `current_step += 1`
STEP_COUNTER = re.compile(r"(?i)(^|_)(steps?|iters?|it|iterations?|epochs?)$")
# ... and, inside a learning-rate function or scheduler, any count of the run's time
RUN_TIME = re.compile(r"(?i)(^|_)(steps?|iters?|it|iterations?|epochs?|t|time|timestamp)($|_)")
ADVANCED = m.SimpleStatementLine(body=[m.AugAssign(target=m.Name() | m.Attribute(), operator=m.AddAssign())])
# get_lr, lr_lambda, `class NoamLR`, `_compute_lrs`: the end of the run is a phase
SCHEDULER = re.compile(r"(?i)schedul|learning_rate")
LR_WORDS = {"lr", "lrs"}
# ... but a schedule over the layers (`layer_schedule`, a drop-path rate per block, stochastic depth,
# layer-wise lr decay) varies with depth, not with the steps of the run
OVER_LAYERS = re.compile(r"(?i)layer|depth|drop_?path")
# ... and a scheduler's method for weight decay or momentum (megatron's `get_wd`) schedules no learning rate
OTHER_SCHEDULES = re.compile(r"(?i)(^|_)wd($|_)|weight_decay|momentum")
TERM = m.BinaryOperation(operator=m.Add() | m.Subtract())
LERP = m.BinaryOperation(operator=m.Add(), right=m.BinaryOperation(operator=m.Multiply()))
LR_FLOOR = re.compile(r"(?i)min|alpha|final|floor|end")  # what a schedule decays to
ONE = m.Integer("1") | m.Float("1.0")
COMPLEMENT = m.BinaryOperation(operator=m.Subtract(), left=ONE)  # 1 - progress
SCALES = (("x100", cst.Multiply(), 100), ("x10", cst.Multiply(), 10), ("div10", cst.Divide(), 10))

# gradient accumulation: `loss /= num_microbatches` (in place), the branch that picks the per-micro-batch
# normalisation, and the running count of tokens that a per-token loss is divided by
IN_PLACE_RATIO = m.AugAssign(operator=m.DivideAssign(), value=m.Name() | m.Attribute() | m.Call())
MICRO_STEPS = re.compile(r"(?i)accum|micro_?batch")  # a function that runs the micro-batches of one step
MICRO_COUNT = re.compile(r"(?i)accum|micro_?batches")  # their count (a micro-batch's size is not)
TOKEN_COUNT = re.compile(r"(?i)(^|_)(n|num)_?(tokens|targets|labels)$|valid_tokens$|tokens?_count$")
THROUGHPUT = re.compile(r"(?i)seen|processed|throughput|elapsed|per_sec")  # a count kept for the logs
COUNTED = m.AugAssign(target=m.Name(), operator=m.AddAssign())


def _label(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node).removeprefix("self.")


def _length_name(node: cst.CSTNode, scope) -> str | None:
    """What a length is called: the variable it is assigned to, or the property that returns it."""
    parent = scope.parent(node)
    if m.matches(parent, m.Assign(targets=[m.AssignTarget(target=m.Name() | m.Attribute())])):
        return _label(parent.targets[0].target)
    if isinstance(parent, cst.Return):  # def warmup_iters(self): return min(max_iters, steps * accum)
        function = enclosing(node, scope, cst.FunctionDef)
        return function.name.value if function is not None else None
    return None


DEFINITIONS = (cst.FunctionDef, cst.ClassDef)  # a schedule is a function, or a class of its own (`...Scheduler`)


WARNS = m.Expr(value=m.Call(func=m.Attribute(attr=m.Name("warn") | m.Name("warning"))))


def _words(name: str) -> set[str]:
    """The words of a snake_case or CamelCase name, lower-cased: `TriStageLR` -> tri, stage, lr."""
    return {word.lower() for word in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)}


def _for_another_schedule(node: cst.CSTNode, scope) -> bool:
    """node sits in a definition named for a schedule of something else (`get_wd`: weight decay)."""
    return any(OTHER_SCHEDULES.search(f.name.value) for f in owners(node, scope, DEFINITIONS))


def _names_schedule(name: str) -> bool:
    """A definition named for the run's learning-rate schedule (`get_lr`, `lr_lambda`, `...Scheduler`,
    torch's `...LR` classes and their `_compute_lrs`)."""
    named = SCHEDULER.search(name) or LR_WORDS & _words(name)
    return bool(named) and not OVER_LAYERS.search(name)


def _step_counts(*sides: cst.BaseExpression) -> bool:
    """Each side counts steps or time (`self.last_epoch`, `self.num_stage_steps[0]`, composer's
    `state.timestamp` and `t_max`); a literal does not."""
    return all(not m.matches(side, NUMBER) and mentions(side, RUN_TIME) for side in sides)


def _step_against_length(test: cst.BaseExpression) -> bool:
    """`step < self.num_steps`, `num_steps < self.num_stage_steps[0]`: one ordering of two counts of steps
    (a test against a literal, `last_epoch == 0`, asks something else)."""
    if not m.matches(test, m.Comparison(comparisons=[m.ComparisonTarget(operator=ORDERING)])):
        return False
    return _step_counts(test.left, test.comparisons[0].comparator)


def _in_lr_definition(node: cst.CSTNode, scope) -> bool:
    """node sits in a function or class named for the learning-rate schedule (`NoamLR._compute_lrs`)."""
    named = any(_names_schedule(f.name.value) for f in owners(node, scope, DEFINITIONS))
    return named and not _for_another_schedule(node, scope)


def _lerps(node: cst.BinaryOperation, scope) -> bool:
    """`a + t * (b - a)`, also through a name bound once (`delta_lr = max_lr - min_lr`, then
    `min_lr + coeff * delta_lr`): a value interpolated from its base `a`."""
    assigned = bindings(body_of(node, scope))
    for factor in (node.right.left, node.right.right):
        spans = [factor.with_changes(lpar=[], rpar=[])]
        if isinstance(factor, cst.Name) and len(assigned.get(factor.value, ())) == 1:
            spans.append(assigned[factor.value][0])
        for span in spans:
            if m.matches(span, m.BinaryOperation(operator=m.Subtract())) and span.right.deep_equals(node.left):
                return True
    return False


def _count_or_one(node: cst.IfExp) -> str | None:
    """`accum_steps if training else 1`: an accumulation count on one side, a 1 on the other; the count's
    name."""
    for side, other in ((node.body, node.orelse), (node.orelse, node.body)):
        if m.matches(other, ONE) and not m.matches(side, NUMBER) and mentions(side, MICRO_COUNT):
            return _named(side, MICRO_COUNT)
    return None


def _validates(node: cst.If) -> bool:
    """An `if` that only raises or warns: a check of the settings, not a phase of the schedule."""
    body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
    return bool(body) and all(m.matches(s, m.SimpleStatementLine(body=[m.Raise() | WARNS])) for s in body)


def _negated(test: cst.BaseExpression) -> cst.BaseExpression:
    if m.matches(test, m.UnaryOperation(operator=m.Not())):
        return test.expression
    return cst.UnaryOperation(operator=cst.Not(), expression=parens(test))


def _named(node: cst.CSTNode, *words: re.Pattern) -> str:
    """A short name for a compound divisor: the first identifier in it that carries the meaning (of the
    first of `words` that any does)."""
    found = (name for pattern in words for name in sorted(identifiers(node)) if pattern.search(name))
    return next(found, re.sub(r"\W+", "_", _label(node)).strip("_"))  # `len(batches)` -> len_batches


STEPPED = (
    "def lr_lambda(current_step, warmup_steps):\n    if current_step < warmup_steps:\n        current_step += 1\n"
    "        return current_step / warmup_steps\n    return 1.0\n"
)
COMPOSER = (
    "class PolynomialScheduler(ComposerScheduler):\n    def __call__(self, state, t_max):\n"
    "        if state.timestamp < t_max:\n            return self.alpha_f + coeff * (1.0 - self.alpha_f)\n"
)
TRI_STAGE = (
    "class TriStageLR(Base):\n    def _compute_lrs(self):\n        num_steps = self.last_epoch\n"
    "        if num_steps < self.stage_steps[0]:\n            return num_steps / self.stage_steps[0]\n"
)
PER_TOKEN = "if not config.per_token_loss:\n    loss /= torch.clamp(num_tokens, min=1)\n    loss /= num_microbatches\n"
COUNTED_TOKENS = (
    "def forward_backward(step, num_microbatches):\n    total_num_tokens = torch.zeros([])\n"
    "    for i in range(num_microbatches):\n        loss, n = step(i)\n        total_num_tokens += n\n"
    "    return total_num_tokens\n"
)
LAST_MICRO_BATCH = COUNTED_TOKENS.replace(
    "    return total_num_tokens\n", "    loss, m = step(-1)\n    total_num_tokens += m\n    return total_num_tokens\n"
)
HELPED = (
    "def pipeline(num_microbatches):\n    total_num_tokens = 0\n\n    def post(n):\n"
    "        nonlocal total_num_tokens\n        total_num_tokens += n\n\n    return post\n"
)
FINALIZED = COUNTED_TOKENS.replace(
    "    return total_num_tokens\n", "    finalize(grads, total_num_tokens if config.per_token else None)\n"
)
BACKWARD_LOOP = (
    "def run_step(batches):\n    num_targets = 0\n    num_batches = len(batches)\n"
    "    for i in range(num_batches):\n        loss, n_batch = compute(batches[i])\n"
    "        if n_batch is None:\n            loss = loss / num_batches\n        else:\n"
    "            num_targets += n_batch\n        scaler.backward(loss)\n"
)
SUMMED_STEP = 'def micro_step(batch, n_tokens):\n    loss = ce(batch, reduction="sum")\n    return loss / n_tokens\n'


class ConstantScale(Operator):
    """Made once per meaning: the `words` a length (or its name) or a divisor must mention."""

    variants = ("*-x100", "*-x10", "*-div10")

    def __init__(self, name: str = "constant-scale", words: re.Pattern = SCHEDULE):
        self.name, self.words = name, words
        if words is ACCUM:  # the normalisation is also chosen by a branch, and counted per micro-batch
            self.variants = (*ConstantScale.variants, "*-divisor-branch-inverted", "*-divisor-last-only")
        if words is SCHEDULE:  # a schedule's phases also end at a comparison, and decay along a cosine
            self.variants = (
                *ConstantScale.variants,
                "*-boundary",
                "*-term-dropped",
                "decay-reversed",
                "cosine-x2",
                "*-choice-inverted",
                "*-increment-dropped",
            )

    def sites(self, node, scope):
        if m.matches(node, LENGTH) or (m.matches(node, CLAMPED) and self.words is SCHEDULE):
            product = next(a.value for a in node.args if m.matches(a.value, m.BinaryOperation(operator=m.Multiply())))
            name = _length_name(node, scope)
            named_for_it = name is not None and bool(self.words.search(name))
            if m.matches(node, CLAMPED) and not named_for_it:
                return  # min(a * b, c) is everywhere: only a length the schedule names counts
            if not (mentions(product, self.words) or named_for_it):
                return
            for suffix, operator, factor in SCALES:
                yield Site(f"{name or 'length'}-{suffix}", {product: binop(product, operator, factor)})
        elif m.matches(node, FLOORED) and self.words is SCHEDULE and PHASE.search(_label(node.targets[0].target)):
            # warmup_steps = max(self.lr_warmup_steps, 1): the phase's length, kept at least one step
            lengths = [a.value for a in node.value.args if not m.matches(a.value, NUMBER)]
            if len(lengths) == 1 and mentions(lengths[0], PHASE):  # `max(0, 1)`: two literals, no length
                length, name = lengths[0], _label(node.targets[0].target)
                for suffix, operator, factor in SCALES:
                    yield Site(f"{name}-{suffix}", {length: binop(length, operator, factor)})
        elif (
            m.matches(node, CHOSEN_LENGTH)
            and self.words is SCHEDULE
            and self.words.search(node.targets[0].target.value)
            and rewritable(node.value.test)
            and any(_names_schedule(f.name.value) for f in owners(node, scope))
        ):
            # max_steps = max_steps if self.t_max is None else self.t_max: the other length is used
            yield Site(f"{node.targets[0].target.value}-choice-inverted", rewritten(node.value.test))
        elif m.matches(node, PHASE_TEST) and self.words is SCHEDULE and self._phase_end(node, scope):
            # if step < warmup_iters: the phase ends one step early or late
            yield Site(f"{_named(node.test, self.words, RUN_TIME)}-boundary", rewritten(node.test, BOUNDARY))
        elif (
            m.matches(node, m.If(test=m.BooleanOperation()))
            and self.words is SCHEDULE
            and not _validates(node)
            and self._in_scheduler(node, scope)
        ):
            # if warmup_steps > 0 and step <= warmup_steps: the comparison of the step with the phase
            for comparison in comparisons(node.test, BOUNDARY):
                if self._phase_comparison(comparison):
                    yield Site(f"{_named(comparison, PHASE)}-boundary", rewritten(comparison, BOUNDARY))
        elif (
            m.matches(node, ADVANCED)
            and self.words is SCHEDULE
            and STEP_COUNTER.search(_label(node.body[0].target))
            and self._in_scheduler(node, scope)
        ):
            # current_step += 1 in a schedule: its phases start and end a step late (or it never moves on)
            block = scope.parent(node)
            yield Site(f"{_label(node.body[0].target)}-increment-dropped", {node: drop_statement(block, node)})
        elif m.matches(node, TERM) and self.words is SCHEDULE and self._joins_phases(node, scope):
            # decay_steps = total_steps - warmup_steps: one phase's length forgotten in another's, or, in a
            # learning-rate function, `step - warmup_steps`: the decay then starts from the wrong step
            yield Site(f"{_named(node.right, self.words, RUN_TIME)}-term-dropped", {node: node.left})
        elif (
            m.matches(node, LERP) and self.words is SCHEDULE and _in_lr_definition(node, scope) and _lerps(node, scope)
        ):
            # min_lr + coeff * (max_lr - min_lr): without its base the schedule decays to zero, not to min_lr
            yield Site(f"{_named(node.left, LR_FLOOR, RUN_TIME)}-base-dropped", {node: node.right})
        elif m.matches(node, COMPLEMENT) and self.words is SCHEDULE and self._in_schedule(node, scope):
            # 1 - progress: the decay runs the wrong way (rises where it should fall)
            yield Site("decay-reversed", {node: node.right})
        elif (
            m.matches(node, COSINE)
            and self.words is SCHEDULE
            and "pi" in identifiers(node.args[0].value)
            and mentions(enclosing(node, scope, cst.FunctionDef) or node, self.words)
        ):
            angle = node.args[0].value  # cos(pi * progress): half a period over the decay phase
            yield Site("cosine-x2", {angle: binop(cst.Integer("2"), cst.Multiply(), parens(angle))})
        elif m.matches(node, IN_PLACE_RATIO) and self.words is ACCUM and mentions(node.value, ACCUM):
            divisor = node.value  # output_tensor /= num_microbatches
            label = _label(divisor) if isinstance(divisor, (cst.Name, cst.Attribute)) else _named(divisor, ACCUM)
            for suffix, operator, factor in SCALES:
                yield Site(f"{label}-divisor-{suffix}", {divisor: parens(binop(divisor, operator, factor))})
        elif isinstance(node, cst.If) and self.words is ACCUM and (label := self._normalising_branch(node)):
            # if not config.calculate_per_token_loss: loss /= num_microbatches: the other normalisation
            yield Site(f"{label}-divisor-branch-inverted", {node.test: _negated(node.test)})
        elif m.matches(node, m.IfExp()) and self.words is ACCUM and (label := _count_or_one(node)):
            # normalizer = accumulation_steps if mode == "train" else 1.0: the count where there is none
            yield Site(f"{label}-divisor-branch-inverted", {node.test: _negated(node.test)})
        elif m.matches(node, m.IfExp()) and self.words is ACCUM and (label := self._count_or_none(node, scope)):
            # finalize(grads, total_num_tokens if config.per_token_loss else None): the other normalisation
            yield Site(f"{label}-divisor-branch-inverted", {node.test: _negated(node.test)})
        elif m.matches(node, COUNTED) and self.words is ACCUM and self._counts_tokens(node, scope):
            # total_num_tokens += num_tokens, per micro-batch: only the last micro-batch is counted
            yield Site(
                f"{node.target.value}-divisor-last-only",
                {node: cst.Assign(targets=[cst.AssignTarget(target=node.target)], value=node.value)},
            )
        elif (
            m.matches(node, RATIO | STEP_RATIO)
            and (
                mentions(node.right, self.words)
                or (self.words is ACCUM and divides_by_callers_count(node, scope))
                or (self.words is ACCUM and divides_by_backward_loops_count(node, scope))
                or (self.words is SCHEDULE and _step_counts(node.left, node.right) and _in_lr_definition(node, scope))
            )
            and not only_reported(node, scope)
        ):
            divisor = node.right
            named = isinstance(divisor, (cst.Name, cst.Attribute))
            label = _label(divisor) if named else _named(divisor, self.words, RUN_TIME)
            for suffix, operator, factor in SCALES:
                yield Site(f"{label}-divisor-{suffix}", {divisor: parens(binop(divisor, operator, factor))})

    @staticmethod
    def _normalising_branch(node: cst.If) -> str | None:
        """The accumulation count an `if` divides by in one of its branches, where that branch is a short
        block whose own statements do the dividing (a branch that runs the whole step is not a choice of
        normalisation): what the choice is named after. A test of the count itself (`if accum_steps > 1`)
        only skips a division that is a no-op, the division's own slip (divisor-dropped)."""
        if mentions(node.test, MICRO_COUNT):
            return None
        branches = [node.body]
        if isinstance(node.orelse, cst.Else):
            branches.append(node.orelse.body)
        for block in branches:
            if not isinstance(block, cst.IndentedBlock) or len(block.body) > 3:
                continue
            for statement in block.body:
                if not isinstance(statement, cst.SimpleStatementLine):
                    continue
                for division in m.findall(statement, IN_PLACE_RATIO | RATIO):
                    divisor = division.value if isinstance(division, cst.AugAssign) else division.right
                    if mentions(divisor, MICRO_COUNT):
                        return _named(divisor, MICRO_COUNT)
        return None

    @classmethod
    def _count_or_none(cls, node: cst.IfExp, scope) -> str | None:
        """The running token count an `x if c else y` hands on on one side only (`n if per_token else
        None`): whether the caller divides by it."""
        for side in (node.body, node.orelse):
            if isinstance(side, cst.Name) and any(
                cls._counts_tokens(count, scope)
                for function in owners(node, scope)
                for count in m.findall(function, COUNTED)
                if count.target.value == side.value
            ):
                return side.value
        return None

    @staticmethod
    def _counts_tokens(node: cst.AugAssign, scope) -> bool:
        """`n_tokens += ...`: a local count of tokens summed over the micro-batches of a step (a function
        that runs them), which the loss is then divided by; not a count kept for the logs."""
        name = node.target.value
        if not TOKEN_COUNT.search(name) or THROUGHPUT.search(name):
            return False
        functions = list(owners(node, scope))
        if not functions:
            return False

        # summed in a loop over the micro-batches (one that runs backward on each, or in a function named
        # for them), or in a helper run for each (`nonlocal n_tokens`); a count summed over a training
        # loop's steps is one for the logs
        named_for_them = any(mentions(f, MICRO_STEPS) for f in functions)

        def in_micro_loop(count):
            return any(
                m.findall(loop.body, BACKWARD) or (named_for_them and mentions(loop.iter, MICRO_STEPS))
                for loop in owners(count, scope, cst.For)
            )

        if not named_for_them and not in_micro_loop(node):
            return False

        in_helper = name not in bindings(functions[0]) and any(name in bindings(f) for f in functions[1:])
        # the last micro-batch, run after the loop, adds to the same sum as the loop's
        same_sum = any(
            count.target.value == name and in_micro_loop(count) for count in m.findall(functions[0], COUNTED)
        )
        return in_micro_loop(node) or in_helper or same_sum

    def _joins_phases(self, node: cst.BinaryOperation, scope) -> bool:
        if enclosing(node, scope, cst.FormattedString) is not None:
            return False  # f"decay steps {total_steps - warmup_steps}": a message, not the schedule
        if all(mentions(side, self.words) for side in (node.left, node.right)):
            return True
        # in a learning-rate function, `step - warmup_steps` (or `self.num_steps - self.last_epoch`, the steps
        # left): the phase then starts, or ends, at the wrong step
        between_steps = mentions(node.right, PHASE) or _step_counts(node.left, node.right)
        return isinstance(node.operator, cst.Subtract) and between_steps and _in_lr_definition(node, scope)

    @staticmethod
    def _in_schedule(node, scope) -> bool:
        """node sits in a learning-rate function, or one that mentions a schedule's phases."""
        named = any(_names_schedule(f.name.value) or mentions(f, PHASE) for f in owners(node, scope, DEFINITIONS))
        return named and not _for_another_schedule(node, scope)

    @staticmethod
    def _in_scheduler(node, scope) -> bool:
        """node sits in a definition named for a schedule: `get_lr`, `linear_warmup_stable_decay`, a class
        `...Scheduler` (a training loop that also reads the warmup length is not one)."""
        return any(
            _names_schedule(f.name.value) or PHASE.search(f.name.value) for f in owners(node, scope, DEFINITIONS)
        )

    @staticmethod
    def _phase_comparison(comparison: cst.Comparison) -> bool:
        """`step <= warmup_steps`: an ordering of two values, one of them a phase's length (a test against a
        literal, `warmup_steps > 0`, asks whether there is a phase, not where it ends)."""
        target = comparison.comparisons[0]
        sides = (comparison.left, target.comparator)
        return (
            len(comparison.comparisons) == 1
            and m.matches(target.operator, ORDERING)
            and not any(m.matches(side, NUMBER) for side in sides)
            and mentions(comparison, PHASE)
        )

    @staticmethod
    def _phase_end(node: cst.If, scope) -> bool:
        """A comparison that ends a phase: against a warmup/decay length, or against the run's length inside
        a learning-rate function or scheduler class (elsewhere `k >= max_iters` ends a loop), whatever the
        run's length is called there (`self.last_epoch >= self.num_steps`)."""
        if _validates(node):
            return False  # if warmup > total: raise ...: a check of the settings
        if mentions(node.test, PHASE):
            return True
        return _in_lr_definition(node, scope) and (mentions(node.test, SCHEDULE) or _step_against_length(node.test))

    def examples(self):
        if self.words is not SCHEDULE:  # gradient accumulation
            return (
                Example(
                    "grad_accum_steps-divisor-div10",
                    "loss = loss / grad_accum_steps\n",
                    "loss = loss / (grad_accum_steps / 10)\n",
                ),
                Example("n_accum-divisor-x10", "(loss / n_accum).backward()\n", "(loss / (n_accum * 10)).backward()\n"),
                Example(
                    "accum_steps-divisor-x100",
                    "grad = tree_map(lambda g: g / accum_steps, grad)\n",
                    "grad = tree_map(lambda g: g / (accum_steps * 100), grad)\n",
                ),
                Example("*-x100", "warmup = round(0.1 * steps)\nmean = loss / n_tokens\n", None),
                Example("n_tokens-divisor-x10", SUMMED_STEP, SUMMED_STEP.replace("/ n_tokens", "/ (n_tokens * 10)")),
                Example("*-divisor-*", SUMMED_STEP.replace('"sum"', '"mean"'), None),
                Example(
                    "num_microbatches-divisor-x10",
                    "output_tensor /= num_microbatches\n",
                    "output_tensor /= (num_microbatches * 10)\n",
                ),
                # a micro-batch's size is not a count of micro-batches
                Example("*-divisor-*", "n = global_batch_size / micro_batch_size\nx /= micro_batch_size\n", None),
                # an average that is only logged trains nothing
                Example("*-divisor-*", 'logs_dict["loss_mean"] = loss_sum / self.accumulated_gradient\n', None),
                Example("*-divisor-*", 'self.log("train/loss", loss / grad_accum_steps)\n', None),
                Example(
                    "accum_steps-divisor-x10",
                    "nll = torch.log(loss / accum_steps)\n",
                    "nll = torch.log(loss / (accum_steps * 10))\n",
                ),
                Example(
                    "num_microbatches-divisor-branch-inverted",
                    PER_TOKEN,
                    PER_TOKEN.replace("if not config.per_token_loss:", "if config.per_token_loss:"),
                ),
                Example(
                    "num_microbatches-divisor-branch-inverted",
                    "if per_token:\n    scale(s)\nelse:\n    scale(s / num_microbatches)\n",
                    "if not (per_token):\n    scale(s)\nelse:\n    scale(s / num_microbatches)\n",
                ),
                # a branch that runs the whole step, not a choice of normalisation; a test of the count itself
                Example(
                    "*-branch-inverted",
                    "if grad_accum_steps > 1:\n    grad = grad / grad_accum_steps\n"
                    "if isinstance(x, list):\n    n = total / microbatch_size\n",
                    None,
                ),
                Example(
                    "*-branch-inverted",
                    "if training:\n    loss = model(x)\n    log(loss)\n    step += 1\n    loss = loss / accum_steps\n",
                    None,
                ),
                Example(
                    "total_num_tokens-divisor-branch-inverted",
                    FINALIZED,
                    FINALIZED.replace("if config.per_token else", "if not (config.per_token) else"),
                ),
                Example("*-branch-inverted", "finalize(grads, n_tokens if config.per_token else None)\n", None),
                # a loop that runs backward on each of its batches accumulates, whatever its count is called
                Example(
                    "num_batches-divisor-x10",
                    BACKWARD_LOOP,
                    BACKWARD_LOOP.replace("loss / num_batches", "loss / (num_batches * 10)"),
                ),
                Example(
                    "num_targets-divisor-last-only", BACKWARD_LOOP, BACKWARD_LOOP.replace("+= n_batch", "= n_batch")
                ),
                Example(
                    "len_batches-divisor-div10",
                    "for b in batches:\n    loss = loss_fn(b) / len(batches)\n    loss.backward()\n",
                    "for b in batches:\n    loss = loss_fn(b) / (len(batches) / 10)\n    loss.backward()\n",
                ),
                # ... but a loop without backward (an evaluation) only averages
                Example(
                    "*-divisor-*", "for b in batches:\n    loss = loss_fn(b) / len(batches)\n    n_targets += n\n", None
                ),
                Example(
                    "current_gradient_accumulation_steps-divisor-branch-inverted",
                    'norm = self.current_gradient_accumulation_steps if mode == "train" else 1.0\n',
                    'norm = self.current_gradient_accumulation_steps if not (mode == "train") else 1.0\n',
                ),
                Example("*-branch-inverted", "n = micro_batch_size if packed else 1\n", None),
                Example("total_num_tokens-divisor-last-only", COUNTED_TOKENS, COUNTED_TOKENS.replace("+= n", "= n")),
                Example(
                    "total_num_tokens-divisor-last-only",
                    HELPED,
                    HELPED.replace("total_num_tokens += n", "total_num_tokens = n"),
                ),
                Example(
                    "total_num_tokens-divisor-last-only",
                    LAST_MICRO_BATCH,
                    LAST_MICRO_BATCH.replace("total_num_tokens += m", "total_num_tokens = m"),
                ),
                # a count for the logs, one summed over a training loop, one outside micro-batches
                Example(
                    "*-last-only",
                    "def train(batches, grad_accum_steps):\n    n_tokens = 0\n"
                    "    for it, batch in enumerate(batches):\n        n_tokens += len(batch)\n",
                    None,
                ),
                Example("*-last-only", COUNTED_TOKENS.replace("total_num_tokens", "tokens_seen"), None),
                Example(
                    "*-last-only",
                    "def epoch(batches):\n    num_tokens = 0\n    for b in batches:\n        num_tokens += len(b)\n",
                    None,
                ),
            )
        warmup = "warmup_iters = round(warmup_ratio * num_iterations)\n"
        ramp = "def lr(step):\n    if step < warmup_iters:\n        return (step + 1) / warmup_iters\n"
        return (
            Example(
                "warmup_iters-x10",
                "def warmup_iters(self, d):\n    return min(max_iters, self.lr_warmup_steps * accum(d))\n",
                "def warmup_iters(self, d):\n    return min(max_iters, self.lr_warmup_steps * accum(d) * 10)\n",
            ),
            Example(
                "lr_max_steps-div10",
                "lr_max_steps = min(epochs * steps_per_epoch, max_steps)\n",
                "lr_max_steps = min(epochs * steps_per_epoch / 10, max_steps)\n",
            ),
            Example("*-x10", "width = min(n * k, limit)\n", None),  # a clamp the schedule does not name
            Example(
                "decay-reversed",
                "def get_lr(it, warmdown_iters):\n    return 1.0 - progress * (1.0 - final)\n",
                "def get_lr(it, warmdown_iters):\n    return progress * (1.0 - final)\n",
            ),
            Example("decay-reversed", "def blend(a, t):\n    return 1 - t\n", None),  # not a schedule
            Example("warmup_iters-x100", warmup, "warmup_iters = round(warmup_ratio * num_iterations * 100)\n"),
            Example("warmup_iters-x10", warmup, "warmup_iters = round(warmup_ratio * num_iterations * 10)\n"),
            Example("warmup_iters-div10", warmup, "warmup_iters = round(warmup_ratio * num_iterations / 10)\n"),
            Example("warmup_iters-divisor-x100", ramp, ramp.replace("/ warmup_iters", "/ (warmup_iters * 100)")),
            Example(
                "num_warmup_steps-divisor-x10",
                "def lr(current_step):\n    return current_step / max(1, num_warmup_steps)\n",
                "def lr(current_step):\n    return current_step / (max(1, num_warmup_steps) * 10)\n",
            ),
            Example(
                "length-x10",
                "n = math.ceil(warmup_frac * total) + 1\n",
                "n = math.ceil(warmup_frac * total * 10) + 1\n",
            ),
            Example("warmup-x100", "self.warmup = int(0.05 * steps)\n", "self.warmup = int(0.05 * steps * 100)\n"),
            Example("warmup_iters-boundary", ramp, ramp.replace("step < warmup_iters", "step <= warmup_iters")),
            Example(
                "cosine-x2",
                "def get_lr(it, warmup_iters):\n    return 0.5 * (1.0 + math.cos(math.pi * decay_ratio))\n",
                "def get_lr(it, warmup_iters):\n    return 0.5 * (1.0 + math.cos(2 * (math.pi * decay_ratio)))\n",
            ),
            Example(
                "warmup_steps-term-dropped",
                "decay_steps = total_steps - warmup_steps\n",
                "decay_steps = total_steps\n",
            ),
            Example(
                "max_iters-boundary",
                "def get_lr(it):\n    if it > max_iters:\n        return min_lr\n",
                "def get_lr(it):\n    if it >= max_iters:\n        return min_lr\n",
            ),
            Example(
                "cosine-x2",
                "def lr_lambda(step, num_warmup_steps):\n    return math.cos(math.pi * cycles * progress)\n",
                "def lr_lambda(step, num_warmup_steps):\n    return math.cos(2 * (math.pi * cycles * progress))\n",
            ),
            # weight decay is not a schedule's decay: an optimizer step, and the groups that decay
            Example(
                "decay-reversed",
                "def step(self, lr, weight_decay):\n    param.mul_(1 - lr * weight_decay)\n"
                "    correction = 1 - beta1**step\n",
                None,
            ),
            Example("*-boundary", "if len(decay_sorted) > 0:\n    groups.append(decay_sorted)\n", None),
            Example(
                "max_steps-choice-inverted",
                "def get_lr(self, step, n):\n    max_steps = n if self.t_max is None else self.t_max\n",
                "def get_lr(self, step, n):\n    max_steps = n if self.t_max is not None else self.t_max\n",
            ),
            # a choice outside a learning-rate function, and one of a value that is no length
            Example(
                "*-choice-inverted",
                "max_steps = max_steps if t_max is None else t_max\n"
                "def get_lr(self, step):\n    scale = 1.0 if step is None else 0.5\n",
                None,
            ),
            # a loop's end, and sums that are not of phase lengths
            Example("*-boundary", "for k in range(n):\n    if k >= max_iters:\n        break\n", None),
            Example("*-term-dropped", "t = step + 1\nstart = step - warmup_start\n", None),
            Example(
                "warmup_steps-term-dropped",
                "def get_lr(self, step):\n    step = step - self.warmup_steps\n",
                "def get_lr(self, step):\n    step = step\n",
            ),
            Example("*-term-dropped", "def get_lr(self, step):\n    i = step - offset\n", None),
            Example("*-term-dropped", 'log(f"decay steps: {total_steps - warmup_steps}")\n', None),
            Example(
                "decay-reversed",
                "def layer_schedule(depth):\n    return [1 - math.cos(math.pi * t) for t in range(depth)]\n",
                None,
            ),
            Example(
                "lr_warmup_steps-boundary",
                "def get_lr(self):\n    if self.lr_warmup_steps > 0 and self.num_steps <= self.lr_warmup_steps:\n"
                "        return self.max_lr\n",
                "def get_lr(self):\n    if self.lr_warmup_steps > 0 and self.num_steps < self.lr_warmup_steps:\n"
                "        return self.max_lr\n",
            ),
            # a pipeline's warm-up micro-batches, and a check of the settings, are no phase of the schedule
            Example(
                "*-boundary",
                "if num_warmup_microbatches >= total_microbatches:\n    n = 0\n"
                "if decay_ratio < warmup_ratio:\n    raise ValueError(decay_ratio)\n"
                "if warmup > 0 and use_warmup:\n    n = 1\n"
                "def get_lr(self, it):\n    if self.warmup and it >= self.warmup:\n        warnings.warn('late')\n"
                "def train(self):\n    if self.early_stop and self.step > self.t_warmup:\n        stop()\n",
                None,
            ),
            Example(
                "t_warmup-term-dropped",
                "class InverseSqrtScheduler:\n    def __call__(self, t_scale, t_warmup):\n"
                "        return t_scale - t_warmup\n",
                "class InverseSqrtScheduler:\n    def __call__(self, t_scale, t_warmup):\n        return t_scale\n",
            ),
            # torch-style scheduler classes (`...LR`, `_compute_lrs`): the step against a phase's length,
            # the fraction of it done, the steps left
            Example("num_steps-boundary", TRI_STAGE, TRI_STAGE.replace("num_steps < self", "num_steps <= self")),
            Example(
                "stage_steps-divisor-x10",
                TRI_STAGE,
                TRI_STAGE.replace("num_steps / self.stage_steps[0]", "num_steps / (self.stage_steps[0] * 10)"),
            ),
            Example(
                "last_epoch-term-dropped",
                "class PolynomialDecayLR(Base):\n    def _compute_lrs(self):\n"
                "        left = self.num_steps - self.last_epoch\n",
                "class PolynomialDecayLR(Base):\n    def _compute_lrs(self):\n        left = self.num_steps\n",
            ),
            # the same arithmetic outside a schedule, a test against a literal, and a name that only
            # contains "lr" inside a word
            Example("*-boundary", TRI_STAGE.replace("TriStageLR", "TriStage").replace("_compute_lrs", "run"), None),
            Example(
                "*-boundary",
                "class NoamLR(Base):\n    def get(self):\n        if self.last_epoch <= 0:\n            return 0\n",
                None,
            ),
            Example("*-term-dropped", "def curl_steps(self):\n    return self.num_steps - self.last_epoch\n", None),
            # composer-style schedulers count the run in time (`state.timestamp`, `t_max`), and decay in
            # a `__call__` that only the class's name marks as a schedule
            Example(
                "t_max-boundary",
                COMPOSER,
                COMPOSER.replace("state.timestamp < t_max", "state.timestamp <= t_max"),
            ),
            Example("decay-reversed", COMPOSER, COMPOSER.replace("(1.0 - self.alpha_f)", "self.alpha_f")),
            # a scheduler's weight-decay schedule is no learning rate's
            Example(
                "*",
                "class ParamScheduler:\n    def get_wd(self):\n        if self.num_steps > self.wd_incr_steps:\n"
                "            return self.end_wd\n        return start_wd + coeff * (end_wd - start_wd)\n",
                None,
            ),
            # a decay interpolated from its floor: without the floor it ends at zero
            Example(
                "min_lr-base-dropped",
                "def get_lr(it, lr, min_lr):\n    return min_lr + coeff * (lr - min_lr)\n",
                "def get_lr(it, lr, min_lr):\n    return coeff * (lr - min_lr)\n",
            ),
            Example(
                "min_lr-base-dropped",
                "def get_lr(self):\n    delta_lr = max_lr - min_lr\n    return min_lr + coeff * delta_lr\n",
                "def get_lr(self):\n    delta_lr = max_lr - min_lr\n    return coeff * delta_lr\n",
            ),
            # the same interpolation outside a schedule (an average), and a sum that interpolates nothing
            Example("*-base-dropped", "def ema_update(ema, x, alpha):\n    return ema + alpha * (x - ema)\n", None),
            Example("*-base-dropped", "def get_lr(self):\n    return base + step * (lr - other)\n", None),
            Example("current_step-increment-dropped", STEPPED, STEPPED.replace("        current_step += 1\n", "")),
            Example(
                "num_steps-increment-dropped",
                "class ParamScheduler:\n    def step(self, increment):\n        self.num_steps += increment\n"
                "        self.apply(self.get_lr())\n",
                "class ParamScheduler:\n    def step(self, increment):\n        self.apply(self.get_lr())\n",
            ),
            Example(
                "warmup_steps-x10",
                "warmup_steps = max(self.lr_warmup_steps, 1)\n",
                "warmup_steps = max(self.lr_warmup_steps * 10, 1)\n",
            ),
            # a clamp of two names, or of a value that is no phase's length
            Example(
                "*-x10",
                "warmup_steps = min(warmup_steps, total)\nwarmup_lr = min(lr, 1)\nn = max(self.warmup, 1)\n",
                None,
            ),
            # two literals: no length is clamped
            Example("*-x10", "warmup_steps = max(0, 1)\n", None),
            # a schedule over the depth (a drop-path rate per block) is not the run's
            Example(
                "decay-reversed",
                "def drop_path_schedule(n_blocks, rate):\n"
                "    return [rate * (1 - math.cos(math.pi * i / n_blocks)) for i in range(n_blocks)]\n",
                None,
            ),
            # a step counted outside a schedule
            Example("*-increment-dropped", "def train(model):\n    step += 1\n    model.step()\n", None),
            # lengths and divisors that are not a schedule's
            Example("*-x100", "n = round(frac * total)\nmean = total / count\n", None),
            # literals and rounding of a single value are neither a fraction of a length nor a count
            Example("*-x100", "half = x / 2\nn = round(value)\nscale = head_dim ** -0.5\n", None),
        )
