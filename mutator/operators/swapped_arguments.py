"""swapped-arguments: two neighbouring things that take the same place are swapped.

Setting up optimizers is a run of look-alike lines: `matrix_params = list(self.transformer.h.parameters())`,
`embedding_params = list(self.transformer.wte.parameters())`, then `AdamW(adam_groups, ...)` and
`Muon(matrix_params, ...)`. Swapping what two of them receive still trains: Muon then orthogonalizes
the embedding while AdamW steps the blocks, or the embedding and the head trade learning rates. Only a
look at which parameters sit in which group, at which rate, sees it.

Sites, by shape, where the things swapped are optimizers or parameters (their calls or names say
`AdamW`, `Muon`, `SGD`, `optim`, `param`):
- the first positional arguments of two neighbouring assignments of look-alike calls (`a = f(x, ...)`,
  `b = g(y, ...)`: as many positional arguments, the first ones of the same kind; statements between them
  that assign no name either argument reads are allowed). Variant `args-a-b`.
- two neighbouring bare names in a list or tuple that is a value, not an assignment target
  (`optimizers = [adamw, muon]`). Variant `items-adamw-muon`. Lists of literals or calls are left alone:
  `betas=(0.9, 0.95)` is a different slip.
- the `params` of two neighbouring parameter groups (`[dict(params=head, lr=a), dict(params=emb, lr=b)]`,
  or `{"params": ...}` dicts): each group's parameters then train at the other's rate. Variant `groups-a-b`.
- the routing of parameters into groups, in a loop over a model's parameters (`for pn, p in
  m.named_parameters()`) that puts the same thing into two or more collections (`decay.add(fpn)`,
  `no_decay.add(fpn)`): one call sends it to the other collection (variant `routed-a-b`), or a condition
  that routes (or skips with `continue`) is inverted (variant `route-inverted`): biases then decay,
  or frozen parameters are stepped.
- the `params` of two parameter groups appended one after the other (`groups.append({"params": decay, ...})`
  in one branch, `groups.append({"params": no_decay, ...})` in the next): variant `groups-a-b`, as above.
- the zero weight decay of a no-decay group (`{"params": ..., "weight_decay": 0.0}`, or
  `group["weight_decay"] = 0.0`, or an override made for a group, `GroupOverride(wd_mult=0.0)`) dropped:
  its norms and biases then decay at the default rate. Variant `zero-decay-dropped`.
- a group's own setting ignored where it is read (`param_group.get("max_lr", self.max_lr)` -> the
  default): every group then runs at the same rate. Variant `group-setting-ignored`.
- the overrides of a group dropped (`group_params.update(param_group_config)`, `optim_cfg.update(...)` of
  a parameter's optimizer settings): the group trains at the defaults. Variant `group-override-dropped`.
- a group's rate, decay or parameters set on it dropped (`group["weight_decay"] = cfg.weight_decay`,
  outside the loop over an optimizer's `param_groups` that applies a schedule). Variant
  `group-setting-dropped`.
- the filter that picks a group's parameters inverted (`[n for n in names if filter_fn(n)]` in a function
  that builds parameter groups), and, in a loop over a model's parameters that files each into a group
  by key (`params_map[key].append(param)`), a condition that skips a parameter or collects what decides
  its group. Variant `route-inverted`.
- in a function that adds two or more groups (`params.append(group)`, `params.insert(0, {"params": rest})`),
  one of them left out: its parameters are never stepped. Variant `group-dropped`.
- the settings of a group that is rebuilt (`{k: v for k, v in group.items() if k != "params"}`, when its
  parameters are sharded or renamed) dropped: the new group trains at the optimizer's defaults. Variant
  `group-settings-dropped`.
- the `**` merges of a group literal swapped (`{"params": p, **defaults, **overrides}`): the defaults then
  win over the group's own settings. Variant `overrides-swapped`.
"""

import itertools
import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, drop_statement, parens
from mutator.operators.meaning import OPTIMIZERS, bindings, body_of, code, mentions, owners

PARAMETERS = re.compile(r"(?i)param")
OPTIMIZER_CLASSES = re.compile(r"(?i)adam|muon|sgd|lion|optim|(^|_)opt($|_)")

FIRST_POSITIONAL = m.Arg(keyword=None, star="")
CALL_ASSIGNMENT = m.SimpleStatementLine(
    body=[m.Assign(targets=[m.AssignTarget(target=m.Name())], value=m.Call(args=[FIRST_POSITIONAL, m.ZeroOrMore()]))]
)
NAMES_ONLY = m.List(elements=[m.AtLeastN(m.Element(value=m.Name()), n=2)]) | m.Tuple(
    elements=[m.AtLeastN(m.Element(value=m.Name()), n=2)]
)
TARGET_PARENTS = (cst.AssignTarget, cst.For, cst.CompFor, cst.AugAssign, cst.AnnAssign, cst.WithItem)


# a group's settings, every key but its parameters: `{k: v for k, v in group.items() if k != "params"}`
SETTINGS_COPIED = m.DictComp(
    for_in=m.CompFor(
        iter=m.Call(func=m.Attribute(attr=m.Name("items"))),
        ifs=[
            m.CompIf(
                test=m.Comparison(
                    comparisons=[
                        m.ComparisonTarget(
                            operator=m.NotEqual() | m.NotIn(), comparator=m.SimpleString(m.MatchRegex(r".*params.*"))
                        )
                    ]
                )
            )
        ],
    )
)
GATHERS_PARAMETERS = m.Call(func=m.Attribute(attr=m.Name("parameters") | m.Name("named_parameters")))
ROUTE = m.Call(func=m.Attribute(value=m.Name(), attr=m.Name("add") | m.Name("append")), args=[m.Arg(keyword=None)])


# what a group sets for its parameters: a rate, a decay, a multiplier of either, its parameters
GROUP_SETTING = re.compile(r"(?i)(^|_)(lr|wd|weight_decay|decay|momentum|betas?|params)($|_)|_mult$|^mult")
GROUP = re.compile(r"(?i)group")  # a parameter group, or the config made for one
GROUP_CONFIG = re.compile(r"(?i)group|optim")  # ... or a parameter's optimizer settings (`optim_cfg`)
DEFAULTED = m.Call(
    func=m.Attribute(value=m.Name() | m.Subscript(), attr=m.Name("get")),
    args=[m.Arg(keyword=None, value=m.SimpleString()), m.Arg(keyword=None)],
)
UPDATED = m.SimpleStatementLine(
    body=[m.Expr(value=m.Call(func=m.Attribute(value=m.Name(), attr=m.Name("update")), args=[m.Arg(keyword=None)]))]
)
SET_ON_GROUP = m.SimpleStatementLine(
    body=[m.Assign(targets=[m.AssignTarget(target=m.Subscript(value=m.Name(), slice=[m.SubscriptElement()]))])]
)
OVERRIDES = re.compile(r"(?i)overrides")  # a mapping of the overrides made for groups of parameters
ADDS_GROUP = m.SimpleStatementLine(
    body=[
        m.Expr(
            value=m.Call(func=m.Attribute(attr=m.Name("append")), args=[m.Arg(keyword=None)])
            | m.Call(func=m.Attribute(attr=m.Name("insert")), args=[m.Arg(keyword=None), m.Arg(keyword=None)])
        )
    ]
)
OVERRIDE_CALL = m.Call(func=m.Name(m.MatchRegex(r"(?i).*(group|override).*")))
FILTERED = m.ListComp(for_in=m.CompFor(ifs=[m.CompIf()]))


def _string_key(node: cst.CSTNode) -> str | None:
    return (
        node.evaluated_value if isinstance(node, cst.SimpleString) and isinstance(node.evaluated_value, str) else None
    )


def _builds_groups(function: cst.CSTNode | None) -> bool:
    """A function that makes parameter groups: it writes a group literal (`{"params": ...}`)."""
    if function is None:
        return False
    literals = m.findall(function, m.Dict() | m.Call(func=m.Name("dict")))
    return any(_group_params(literal) is not None for literal in literals)


def _schedule_loop(node: cst.CSTNode, scope) -> bool:
    """Whether `node` sits in a loop over an optimizer's groups (`for g in opt.param_groups`): where a
    schedule sets every group's rate each step, not where the groups are made."""
    return any(m.findall(loop.iter, m.Attribute(attr=m.Name("param_groups"))) for loop in owners(node, scope, cst.For))


def _keyed_routes(loop: cst.For) -> list[cst.Call]:
    """`params_map[key].append(param)`: the loop's parameter filed into a collection chosen by a key."""
    targets = {name.value for name in m.findall(loop.target, m.Name())}
    filed = m.findall(
        loop.body,
        m.Call(
            func=m.Attribute(value=m.Subscript(), attr=m.Name("append") | m.Name("add")), args=[m.Arg(value=m.Name())]
        ),
    )
    return [call for call in filed if call.args[0].value.value in targets]


def _parameter_loop(node: cst.CSTNode, scope) -> cst.For | None:
    """The innermost loop around `node` over a model's parameters (`for n, p in m.named_parameters()`)."""
    return next((loop for loop in owners(node, scope, cst.For) if m.findall(loop.iter, GATHERS_PARAMETERS)), None)


def _routes(loop: cst.For) -> list[cst.Call]:
    """The calls in `loop` that put a thing into one of several collections: `decay.add(fpn)` beside
    `no_decay.add(fpn)` (the same argument, the same method, two or more receivers)."""
    calls = m.findall(loop.body, ROUTE)
    key = {call: (code(call.func.attr), code(call.args[0].value)) for call in calls}
    receivers: dict[tuple, set[str]] = {}
    for call in calls:
        receivers.setdefault(key[call], set()).add(call.func.value.value)
    return [call for call in calls if len(receivers[key[call]]) > 1]


def _negated(test: cst.BaseExpression) -> cst.BaseExpression:
    if m.matches(test, m.UnaryOperation(operator=m.Not())):
        return test.expression
    return cst.UnaryOperation(operator=cst.Not(), expression=parens(test))


def _reads(node: cst.CSTNode) -> set[str]:
    return {name.value for name in m.findall(node, m.Name())}


def _assigns(statement: cst.CSTNode) -> set[str]:
    targets = m.findall(statement, m.AssignTarget() | m.AugAssign() | m.AnnAssign())
    return {name.value for target in targets for name in m.findall(target.target, m.Name())}


def _first_argument(statement: cst.SimpleStatementLine) -> cst.BaseExpression:
    return statement.body[0].value.args[0].value


def _look_alike(first: cst.SimpleStatementLine, second: cst.SimpleStatementLine) -> bool:
    """Calls that take the same number of positional arguments, the first of the same kind (two names,
    two calls, ...): what a slip can exchange. `loss(logits, y)` beside `len(x)` is not that."""

    def positional(statement):
        return sum(arg.keyword is None and arg.star == "" for arg in statement.body[0].value.args)

    same_kind = type(_first_argument(first)) is type(_first_argument(second))
    return same_kind and positional(first) == positional(second)


def _optimizer_call(statement: cst.SimpleStatementLine) -> bool:
    """An optimizer built, or a parameter list gathered: `AdamW(groups, ...)`, `list(m.parameters())`."""
    call = statement.body[0].value
    first = call.args[0].value
    gathers = m.findall(first, m.Call(func=m.Attribute(attr=m.Name("parameters") | m.Name("named_parameters"))))
    named = isinstance(first, (cst.Name, cst.Attribute)) and mentions(first, OPTIMIZERS)
    return mentions(call.func, OPTIMIZER_CLASSES) or bool(gathers) or named


def _group_params(expr: cst.BaseExpression) -> cst.BaseExpression | None:
    """The parameters of a param-group literal: `dict(params=p, lr=...)` or `{"params": p, ...}`."""
    if m.matches(expr, m.Call(func=m.Name("dict"))):
        return next((a.value for a in expr.args if m.matches(a, m.Arg(keyword=m.Name("params")))), None)
    if isinstance(expr, cst.Dict):
        for element in expr.elements:
            if m.matches(element, m.DictElement(key=m.SimpleString())) and element.key.evaluated_value == "params":
                return element.value
    return None


APPENDED_GROUP = m.Call(
    func=m.Attribute(attr=m.Name("append")), args=[m.Arg(value=m.Dict() | m.Call(func=m.Name("dict")))]
)
ZERO = m.Float("0.0") | m.Integer("0") | m.Float("0.")
ZERO_DECAY = m.DictElement(key=m.SimpleString(m.MatchRegex("^.weight_decay.$")), value=ZERO) | m.Arg(
    keyword=m.Name("weight_decay"), value=ZERO
)
SET_ZERO_DECAY = m.SimpleStatementLine(
    body=[
        m.Assign(
            targets=[
                m.AssignTarget(
                    target=m.Subscript(
                        slice=[
                            m.SubscriptElement(slice=m.Index(value=m.SimpleString(m.MatchRegex("^.weight_decay.$"))))
                        ]
                    )
                )
            ],
            value=ZERO,
        )
    ]
)


def _without(container: cst.Dict | cst.Call, element) -> dict:
    """Edits that delete `element` from a dict literal or a call; the one before takes over its comma."""
    elements = list(container.elements if isinstance(container, cst.Dict) else container.args)
    i = elements.index(element)
    edits = {element: cst.RemovalSentinel.REMOVE}
    if i == len(elements) - 1 and i > 0:
        edits[elements[i - 1]] = elements[i - 1].with_changes(comma=element.comma)
    return edits


def _label(expr: cst.BaseExpression) -> str:
    if isinstance(expr, cst.ListComp) and isinstance(expr.for_in.iter, cst.Name):  # [p[n] for n in decay_sorted]
        return expr.for_in.iter.value
    text = cst.Module(body=[]).code_for_node(expr)
    return text if len(text) <= 24 and text.replace("_", "").replace(".", "").isalnum() else "group"


def _target(statement: cst.SimpleStatementLine) -> str:
    return statement.body[0].targets[0].target.value


ROUTING = (
    "def groups(model):\n"
    "    decay, no_decay = set(), set()\n"
    "    for mn, m in model.named_modules():\n"
    "        for pn, p in m.named_parameters():\n"
    "            if not p.requires_grad:\n"
    "                continue\n"
    '            fpn = f"{mn}.{pn}"\n'
    '            if pn.endswith("weight") and m.decays:\n'
    "                decay.add(fpn)\n"
    "            else:\n"
    "                no_decay.add(fpn)\n"
    "    return decay, no_decay\n"
)


APPENDED = (
    "def groups(params, decay_sorted, no_decay_sorted, defaults):\n"
    "    groups = []\n"
    "    if decay_sorted:\n"
    '        groups.append({"params": [params[n] for n in decay_sorted], **defaults})\n'
    "    if no_decay_sorted:\n"
    '        groups.append({"params": [params[n] for n in no_decay_sorted], "weight_decay": 0.0})\n'
    "    return groups\n"
)


CONFIGURED = (
    "def groups(param_dict, configs):\n"
    "    params = []\n"
    "    for cfg in configs:\n"
    "        names = [n for n in param_dict.keys() if cfg.filter(n)]\n"
    '        group = {"params": [param_dict.pop(n) for n in names]}\n'
    "        group.update(cfg.options)\n"
    "        params.append(group)\n"
    "    return params\n"
)


LR_OVERRIDE = (
    "def overrides(config, key):\n"
    "    config_overrides = {}\n"
    '    decoupled: ParamGroupOverride = {"max_lr": config.lr}\n'
    '    decoupled["min_lr"] = config.min_lr\n'
    "    config_overrides[key] = decoupled\n"
    "    return config_overrides\n"
)


WITH_REST = CONFIGURED.replace(
    "    return params\n", '    params.insert(0, {"params": param_dict.values()})\n    return params\n'
)


KEYED = (
    "def groups(model, overrides):\n"
    "    params_map = {}\n"
    "    for name, param in model.named_parameters():\n"
    "        if not param.requires_grad:\n"
    "            continue\n"
    "        found = []\n"
    "        for key, override in overrides.items():\n"
    "            if key.matches(param, name):\n"
    "                found.append(override)\n"
    "        key = tuple(found)\n"
    "        params_map.setdefault(key, [])\n"
    "        params_map[key].append(param)\n"
    "    return params_map\n"
)


class SwappedArguments(Operator):
    name = "swapped-arguments"
    variants = (
        "args-*",
        "items-*",
        "groups-*",
        "routed-*",
        "route-inverted",
        "zero-decay-dropped",
        "group-setting-ignored",
        "group-override-dropped",
        "group-setting-dropped",
        "overrides-swapped",
        "group-dropped",
    )

    def sites(self, node, scope):
        if isinstance(node, (cst.Module, cst.IndentedBlock)):
            yield from self._neighbouring_calls(node.body)
            for statement in node.body:
                if m.matches(statement, SET_ZERO_DECAY):  # no_decay_group["weight_decay"] = 0.0
                    yield Site("zero-decay-dropped", {statement: drop_statement(node, statement)})
                elif self._sets_group(statement, scope):  # group["weight_decay"] = cfg.weight_decay
                    yield Site("group-setting-dropped", {statement: drop_statement(node, statement)})
                elif m.matches(statement, UPDATED) and self._updates_group(statement, scope):
                    yield Site("group-override-dropped", {statement: drop_statement(node, statement)})
        elif isinstance(node, cst.FunctionDef):
            appended = [_group_params(call.args[0].value) for call in m.findall(node.body, APPENDED_GROUP)]
            groups = [params for params in appended if params is not None]
            for first, second in itertools.pairwise(groups):
                if not first.deep_equals(second):
                    yield Site(f"groups-{_label(first)}-{_label(second)}", {first: second, second: first})
            added = self._added_groups(node)
            if len(added) > 1:  # one group of several left out: its parameters are never stepped
                for statement in added:
                    yield Site("group-dropped", {statement: drop_statement(scope.parent(statement), statement)})
        elif m.matches(node, m.Dict() | m.Call(func=m.Name("dict"))) and _group_params(node) is not None:
            elements = node.elements if isinstance(node, cst.Dict) else node.args
            spreads = [
                e for e in elements if isinstance(e, (cst.StarredDictElement,)) or m.matches(e, m.Arg(star="**"))
            ]
            for first, second in itertools.pairwise(spreads):  # {"params": p, **defaults, **overrides}
                yield Site("overrides-swapped", {first.value: second.value, second.value: first.value})
            for element in elements:
                if m.matches(element, ZERO_DECAY):
                    yield Site("zero-decay-dropped", _without(node, element))
        elif m.matches(node, NAMES_ONLY) and not isinstance(scope.parent(node), TARGET_PARENTS):
            for first, second in itertools.pairwise(node.elements):
                if (
                    first.value.value != second.value.value
                    and mentions(first.value, OPTIMIZERS)
                    and mentions(second.value, OPTIMIZERS)
                ):
                    variant = f"items-{first.value.value}-{second.value.value}"
                    yield Site(variant, {first.value: second.value, second.value: first.value})
        elif m.matches(node, ROUTE) and (loop := _parameter_loop(node, scope)) and node in (routes := _routes(loop)):
            receiver, method = node.func.value.value, node.func.attr.value
            others = {call.func.value.value for call in routes if call.func.attr.value == method} - {receiver}
            for other in sorted(others):  # decay.add(fpn) -> no_decay.add(fpn)
                yield Site(f"routed-{receiver}-{other}", {node.func.value: cst.Name(other)})
        elif isinstance(node, cst.If) and (loop := _parameter_loop(node, scope)) and (routes := _routes(loop)):
            routed_here = {id(call) for call in m.findall(node.body, ROUTE)} & {id(call) for call in routes}
            if routed_here or m.findall(node.body, m.Continue()):  # which group, or none (a frozen parameter)
                yield Site("route-inverted", {node.test: _negated(node.test)})
        elif m.matches(node, DEFAULTED) and self._group_setting_read(node, scope):
            yield Site("group-setting-ignored", {node: node.args[1].value.with_changes(lpar=[], rpar=[])})
        elif m.matches(node, OVERRIDE_CALL) and _group_params(node) is None:
            for arg in node.args:  # ParamGroupOverride(wd_mult=0.0)
                if m.matches(arg, m.Arg(keyword=m.Name(m.MatchRegex(r"(?i)^(weight_decay|wd)(_mult)?$")), value=ZERO)):
                    yield Site("zero-decay-dropped", _without(node, arg))
        elif m.matches(node, FILTERED) and self._picks_group(node, scope):
            condition = node.for_in.ifs[0]
            yield Site("route-inverted", {condition.test: _negated(condition.test)})
        elif isinstance(node, cst.If) and (loop := _parameter_loop(node, scope)) and _keyed_routes(loop):
            body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
            simple = [small for line in body if isinstance(line, cst.SimpleStatementLine) for small in line.body]
            collects = any(m.matches(small, m.Expr(value=ROUTE) | m.Continue()) for small in simple)
            if collects:  # if not param.requires_grad: continue / if key.matches(p): overrides.append(o)
                yield Site("route-inverted", {node.test: _negated(node.test)})
        elif m.matches(node, SETTINGS_COPIED) and mentions(node.for_in.iter.func.value, GROUP):
            # {k: v for k, v in group.items() if k != "params"}: a group rebuilt (sharded, renamed) keeps
            # its own settings; without them it trains at the optimizer's defaults
            yield Site("group-settings-dropped", {node: cst.Dict(elements=[])})
        elif isinstance(node, (cst.List, cst.Tuple)):
            groups = [_group_params(e.value) for e in node.elements]
            for first, second in itertools.pairwise(groups):
                if first is not None and second is not None and not first.deep_equals(second):
                    variant = f"groups-{_label(first)}-{_label(second)}"
                    yield Site(variant, {first: second, second: first})

    @staticmethod
    def _added_groups(function: cst.FunctionDef) -> list[cst.SimpleStatementLine]:
        """The statements that add a group to the optimizer's groups: `groups.append({"params": ...})`,
        `params.insert(0, {"params": rest})`, or `.append(group)` of a group made in the function."""
        assigned = bindings(function)

        def a_group(expr):
            values = assigned.get(expr.value, ()) if isinstance(expr, cst.Name) else (expr,)
            return any((p := _group_params(v)) is not None and not mentions(p, GROUP) for v in values)

        found = []
        for statement in m.findall(function.body, ADDS_GROUP):
            call = statement.body[0].value
            if a_group(call.args[-1].value):
                found.append(statement)
        return found

    @staticmethod
    def _group_setting_read(call: cst.Call, scope) -> bool:
        """`param_group.get("max_lr", self.max_lr)`: a group's own rate or decay, with a default (the
        receiver is named a group, or is one of an optimizer's `param_groups`)."""
        key = _string_key(call.args[0].value)
        if key is None or not GROUP_SETTING.search(key):
            return False
        receiver = call.func.value
        if mentions(receiver, GROUP):
            return True
        values = bindings(body_of(call, scope)).get(receiver.value, ()) if isinstance(receiver, cst.Name) else ()
        return any(m.findall(value, m.Attribute(attr=m.Name("param_groups"))) for value in values)

    @staticmethod
    def _sets_group(statement: cst.SimpleStatementLine, scope) -> bool:
        """`group["weight_decay"] = wd`, `lr_override["min_lr"] = m` (a dict declared a group's), or
        `config_overrides[key] = override`: a group's setting, or an override registered for a group."""
        if m.matches(statement, SET_ZERO_DECAY) or not m.matches(statement, SET_ON_GROUP):
            return False
        target = statement.body[0].targets[0].target
        receiver = target.value.value
        if OVERRIDES.search(receiver):
            return not _schedule_loop(statement, scope)
        key = _string_key(target.slice[0].slice.value) if m.matches(target.slice[0].slice, m.Index()) else None
        function = next(owners(statement, scope), None)
        declared = function is not None and any(
            m.matches(a.target, m.Name(receiver)) and mentions(a.annotation, GROUP)
            for a in m.findall(function, m.AnnAssign())
        )
        return (
            key is not None
            and bool(GROUP_SETTING.search(key))
            and (bool(GROUP.search(receiver)) or declared)
            and not _schedule_loop(statement, scope)
        )

    @staticmethod
    def _updates_group(statement: cst.SimpleStatementLine, scope) -> bool:
        """`group_params.update(config)`: the receiver is a group made here, or named for a group's or a
        parameter's optimizer settings."""
        receiver = statement.body[0].value.func.value.value
        function = next(owners(statement, scope), None)
        # a group made here (not an optimizer's keyword arguments, `{"params": param_groups, "lr": ...}`)
        made_here = function is not None and any(
            (params := _group_params(value)) is not None and not mentions(params, GROUP)
            for value in bindings(function).get(receiver, ())
        )
        return (made_here or bool(GROUP_CONFIG.search(receiver))) and not _schedule_loop(statement, scope)

    @staticmethod
    def _picks_group(comprehension: cst.ListComp, scope) -> bool:
        """`[n for n in param_dict.keys() if filter_fn(n)]`: one filter, over parameters or their names, in a
        function that builds parameter groups."""
        return (
            len(comprehension.for_in.ifs) == 1
            and comprehension.for_in.inner_for_in is None
            and (
                mentions(comprehension.for_in.iter, PARAMETERS)
                or bool(m.findall(comprehension.for_in.iter, GATHERS_PARAMETERS))
            )
            and _builds_groups(next(owners(comprehension, scope), None))
        )

    def _neighbouring_calls(self, body):
        calls = [i for i, statement in enumerate(body) if m.matches(statement, CALL_ASSIGNMENT)]
        for i, j in itertools.pairwise(calls):
            if not (_optimizer_call(body[i]) and _optimizer_call(body[j])):
                continue
            a, b = _first_argument(body[i]), _first_argument(body[j])
            assigned_between = set().union(*(_assigns(statement) for statement in body[i:j]))
            if a.deep_equals(b) or not _look_alike(body[i], body[j]) or (_reads(a) | _reads(b)) & assigned_between:
                continue  # moving an argument must not read a name before (or after) it is set
            yield Site(f"args-{_target(body[i])}-{_target(body[j])}", {a: b, b: a})

    def examples(self):
        groups = (
            "def setup(self):\n"
            "    matrix_params = list(self.transformer.h.parameters())\n"
            "    embedding_params = list(self.transformer.wte.parameters())\n"
            "    adam_groups = [dict(params=embedding_params, lr=embedding_lr)]\n"
            "    adamw = AdamW(adam_groups, betas=(0.8, 0.95))\n"
            "    muon = Muon(matrix_params, lr=matrix_lr)\n"
            "    return [adamw, muon]\n"
        )
        return (
            Example(
                "group-settings-dropped",
                'new = {**{k: v for k, v in group.items() if k != "params"}, "params": sharded}\n',
                'new = {**{}, "params": sharded}\n',
            ),
            # a dict that is no parameter group's, filtered the same way
            Example("group-settings-dropped", 'kw = {k: v for k, v in config.items() if k != "params"}\n', None),
            Example(
                "args-adamw-muon",
                groups,
                groups.replace("AdamW(adam_groups,", "AdamW(matrix_params,").replace(
                    "Muon(matrix_params,", "Muon(adam_groups,"
                ),
            ),
            Example(
                "args-matrix_params-embedding_params",
                groups,
                groups.replace("list(self.transformer.h.", "list(self.transformer.@.")
                .replace("list(self.transformer.wte.", "list(self.transformer.h.")
                .replace("list(self.transformer.@.", "list(self.transformer.wte."),
            ),
            Example("items-adamw-muon", groups, groups.replace("[adamw, muon]", "[muon, adamw]")),
            Example(
                "groups-decay-no_decay",
                'groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]\n',
                'groups = [{"params": no_decay, "weight_decay": wd}, {"params": decay, "weight_decay": 0.0}]\n',
            ),
            Example(
                "routed-decay-no_decay",
                ROUTING,
                ROUTING.replace("            decay.add(fpn)", "            no_decay.add(fpn)"),
            ),
            Example("routed-no_decay-decay", ROUTING, ROUTING.replace("no_decay.add(fpn)", "decay.add(fpn)")),
            Example("route-inverted", ROUTING, ROUTING.replace("if not p.requires_grad:", "if p.requires_grad:")),
            Example(
                "route-inverted",
                ROUTING,
                ROUTING.replace('if pn.endswith("weight") and', 'if not (pn.endswith("weight") and').replace(
                    "m.decays:", "m.decays):"
                ),
            ),
            Example(
                "groups-decay_sorted-no_decay_sorted",
                APPENDED,
                APPENDED.replace("for n in decay_sorted]", "for n in @]")
                .replace("for n in no_decay_sorted]", "for n in decay_sorted]")
                .replace("for n in @]", "for n in no_decay_sorted]"),
            ),
            Example("zero-decay-dropped", APPENDED, APPENDED.replace(', "weight_decay": 0.0}', "}")),
            Example(
                "zero-decay-dropped",
                'no_decay_group = dict(old)\nno_decay_group["weight_decay"] = 0.0\n'
                "groups = [decay_group, no_decay_group]\n",
                "no_decay_group = dict(old)\ngroups = [decay_group, no_decay_group]\n",
            ),
            Example(
                "group-setting-ignored",
                'def get_lr(self, param_group):\n    max_lr = param_group.get("max_lr", self.max_lr)\n',
                "def get_lr(self, param_group):\n    max_lr = self.max_lr\n",
            ),
            Example(
                "group-setting-ignored",
                "for g in opt.param_groups:\n    g['weight_decay'] = wd * g.get('wd_mult', 1.0)\n",
                "for g in opt.param_groups:\n    g['weight_decay'] = wd * 1.0\n",
            ),
            # settings that are not a group's, and a group's setting that is no rate
            Example("group-setting-ignored", 'b1 = optim_args.get("beta1", 0.9)\nn = group.get("name", "")\n', None),
            Example(
                "zero-decay-dropped",
                "overrides[key] = ParamGroupOverride(wd_mult=0.0)\n",
                "overrides[key] = ParamGroupOverride()\n",
            ),
            Example("zero-decay-dropped", "norm = GroupNorm(32, dim, eps=0.0)\n", None),
            Example(
                "group-override-dropped", CONFIGURED, CONFIGURED.replace("        group.update(cfg.options)\n", "")
            ),
            Example(
                "group-dropped",
                WITH_REST,
                WITH_REST.replace("        params.append(group)\n", ""),
            ),
            # the only group: leaving it out leaves the optimizer nothing to step, which fails at once
            Example("group-dropped", CONFIGURED, None),
            Example(
                "route-inverted",
                CONFIGURED,
                CONFIGURED.replace("if cfg.filter(n)]", "if not (cfg.filter(n))]"),
            ),
            Example(
                "group-override-dropped",
                'def init(module, scale):\n    optim_cfg = getattr(module.weight, "_optim", {})\n'
                '    optim_cfg.update({"lr_multiplier": scale})\n    setattr(module.weight, "_optim", optim_cfg)\n',
                'def init(module, scale):\n    optim_cfg = getattr(module.weight, "_optim", {})\n'
                '    setattr(module.weight, "_optim", optim_cfg)\n',
            ),
            # a dict that is no group's, a schedule's step over the groups, a filter outside group building
            Example(
                "*",
                "def load(config, extra):\n    config.update(extra)\n"
                'def build(param_groups, extra):\n    kwargs = {"params": param_groups, "lr": 1e-3}\n'
                "    kwargs.update(extra)\n"
                "def step(opt, new, lr):\n    for g in opt.param_groups:\n        g.update(new)\n"
                '        g["lr"] = g["initial_lr"] * lr\n'
                "def trainable(model):\n    return [p for p in model.parameters() if p.requires_grad]\n",
                None,
            ),
            Example(
                "group-setting-dropped",
                'if group["weight_decay"] > 0.0:\n    group["weight_decay"] = cfg.weight_decay\n',
                'if group["weight_decay"] > 0.0:\n    pass\n',
            ),
            Example("group-setting-dropped", 'batch["labels"] = labels\ngroup["name"] = name\n', None),
            Example(
                "group-setting-dropped",
                LR_OVERRIDE,
                LR_OVERRIDE.replace('    decoupled["min_lr"] = config.min_lr\n', ""),
            ),
            Example(
                "group-setting-dropped",
                LR_OVERRIDE,
                LR_OVERRIDE.replace("    config_overrides[key] = decoupled\n", ""),
            ),
            Example(
                "overrides-swapped",
                'group = {"params": params, **default_config, **param_override}\n',
                'group = {"params": params, **param_override, **default_config}\n',
            ),
            Example("overrides-swapped", "merged = {**default_config, **param_override}\n", None),
            Example(
                "route-inverted",
                KEYED,
                KEYED.replace("if not param.requires_grad:", "if param.requires_grad:"),
            ),
            Example(
                "route-inverted",
                KEYED,
                KEYED.replace("if key.matches(param, name):", "if not (key.matches(param, name)):"),
            ),
            # one group appended, and a group that decays at a rate of its own
            Example(
                "*",
                'def groups(ps, wd):\n    out = []\n    out.append({"params": ps, "weight_decay": wd})\n'
                "    return out\n",
                None,
            ),
            # a loop over parameters that puts each into one list only, or counts them: nothing is routed
            Example(
                "route*",
                "for n, p in model.named_parameters():\n    if not p.requires_grad:\n        continue\n"
                "    if p.dim() < 2:\n        total += p.numel()\n    names.append(n)\n",
                None,
            ),
            # two collections filled in a loop that is not over parameters
            Example(
                "route*",
                "for line in lines:\n    if line.startswith('#'):\n        comments.append(line)\n"
                "    else:\n        code.append(line)\n",
                None,
            ),
            # an argument read before it is assigned; an unpacking target; literals; names of other things
            Example("args-embedding_params-adamw", groups, None),
            Example("items-*", "a, b = f(x)\nbetas = (0.9, 0.95)\npair = (a, b)\n", None),
            Example("args-*", "x = f(a, 1)\ny = g(b, 2)\n", None),
            Example("args-*", "a = param_name.replace(x, y)\nb = meta_sd.get(param_name, z)\n", None),
        )
