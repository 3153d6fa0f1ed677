"""growth-copy: a cache that grows into a new allocation carries its old contents over wrongly.

Growing a cache means allocating a larger tensor and copying what was stored into the same positions of
each layer, head and row. The slips, all silent until the cache has grown with something in it:
- copy-dropped: nothing copied (the new allocation starts empty, earlier positions lost);
- flat-copy: the old storage copied in flat order (what `resize_` does, nanochat #186): the first layer
  survives and every higher layer, head or row reads shifted data;
- copy-one-short: the copy stops one position early, losing the last stored position.

Sites, by meaning: a copy `new[S] = old[S]` (the same index on both sides) into a name the same function
allocated (`torch.zeros/empty/full(...)`, `x.new_zeros(...)`, `*_like(...)`) and then stores back over
`old` (`old = new`): the growth of a buffer kept elsewhere. copy-one-short needs a non-literal stop (`:t0`).
"""

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop, drop_statement, parens
from mutator.operators.meaning import code

ALLOCATES = m.Call(
    func=m.Attribute(attr=m.Name(m.MatchRegex(r"(zeros|empty|full|ones)(_like)?|new_(zeros|empty|full|ones)")))
    | m.Name(m.MatchRegex(r"(zeros|empty|full)(_like)?"))
)
COPY = m.SimpleStatementLine(
    body=[m.Assign(targets=[m.AssignTarget(target=m.Subscript(value=m.Name()))], value=m.Subscript())]
)


def _statements(block) -> list:
    return [s for s in block.body if isinstance(s, cst.SimpleStatementLine) and len(s.body) == 1]


def _allocated(block, name: str) -> bool:
    for line in _statements(block):
        small = line.body[0]
        if m.matches(small, m.Assign(targets=[m.AssignTarget(target=m.Name(name))])) and m.findall(
            small.value, ALLOCATES
        ):
            return True
    return False


def _stored_back(block, name: str, old: str) -> bool:
    return any(
        m.matches(line.body[0], m.Assign(targets=[m.AssignTarget()], value=m.Name(name)))
        and code(line.body[0].targets[0].target) == old
        for line in _statements(block)
    )


def _short(subscript: cst.Subscript) -> cst.Subscript | None:
    """`x[..., :t0, :]` -> `x[..., :t0 - 1, :]`: every stop that is not a literal, one earlier."""
    changed, elements = False, []
    for element in subscript.slice:
        piece = element.slice
        if isinstance(piece, cst.Slice) and piece.lower is None and piece.upper is not None:
            if not m.matches(piece.upper, m.Integer() | m.UnaryOperation(expression=m.Integer())):
                grouped = parens(piece.upper) if isinstance(piece.upper, cst.BinaryOperation) else piece.upper
                element = element.with_changes(slice=piece.with_changes(upper=binop(grouped, cst.Subtract(), 1)))
                changed = True
        elements.append(element)
    return subscript.with_changes(slice=elements) if changed else None


class GrowthCopy(Operator):
    name = "growth-copy"
    variants = ("copy-dropped", "flat-copy", "copy-one-short")

    def sites(self, node, scope):
        if not isinstance(node, cst.IndentedBlock):
            return
        for line in node.body:
            if not m.matches(line, COPY):
                continue
            assign = line.body[0]
            target, value = assign.targets[0].target, assign.value
            new, old = target.value.value, code(value.value)
            if code(target.slice[0]) != code(value.slice[0]) or len(target.slice) != len(value.slice):
                continue
            if [code(e) for e in target.slice] != [code(e) for e in value.slice]:
                continue
            if not _allocated(node, new) or not _stored_back(node, new, old):
                continue
            yield Site("copy-dropped", {line: drop_statement(node, line)})
            flat = cst.parse_statement(f"{new}.view(-1)[: {old}.numel()] = {old}.reshape(-1)\n")
            yield Site("flat-copy", {line: flat.with_changes(leading_lines=line.leading_lines)})
            short_target, short_value = _short(target), _short(value)
            if short_target is not None and short_value is not None:
                yield Site("copy-one-short", {target: short_target, value: short_value})

    def examples(self):
        grow = (
            "def insert(self, k, t0, t1):\n"
            "    if t1 > self.cache.size(4):\n"
            "        grown = torch.zeros(shape, dtype=self.cache.dtype)\n"
            "        grown[..., :t0, :] = self.cache[..., :t0, :]\n"
            "        self.cache = grown\n"
        )
        copy_line = "        grown[..., :t0, :] = self.cache[..., :t0, :]\n"
        return (
            Example("copy-dropped", grow, grow.replace(copy_line, "")),
            Example(
                "flat-copy",
                grow,
                grow.replace(copy_line, "        grown.view(-1)[: self.cache.numel()] = self.cache.reshape(-1)\n"),
            ),
            Example(
                "copy-one-short",
                grow,
                grow.replace(copy_line, "        grown[..., :t0 - 1, :] = self.cache[..., :t0 - 1, :]\n"),
            ),
            # a copy into a buffer that does not replace the old one is not growth
            Example("*", "def f(x):\n    out = torch.zeros(n)\n    out[:k] = x[:k]\n    return out\n", None),
        )
