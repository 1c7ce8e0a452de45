"""The symbolic view: the graph that produced a tensor, as a text tree or Graphviz DOT.

Leaves are named when a `names` dict ({id(tensor): name}) says who they are: the inputs of an
expression (`x`, `w`) or a model's parameters (`transformer.wte.weight`, from
`names_of(model)`); otherwise `param` (requires grad) or `const`.
"""

import re

import ops
from engine.autograd import topological_order

_INDEX = re.compile(r"\.(\d+)\.")  # the block number in a parameter name: h.3.attn -> 3


def names_of(module, **inputs):
    """{id(tensor): name} for a module's parameters and any named input tensors."""
    named = {id(p): name for name, p in module.named_parameters()} if module else {}
    return {**named, **{id(t): name for name, t in inputs.items()}}


def _label(t, names=None):
    if t._op:
        op = t._op.name
    else:
        op = (names or {}).get(id(t)) or ("param" if t.requires_grad else "const")
    return f"{op} {tuple(t.shape)} {ops.device_of(t.data).dtype_name(t.dtype)}"


def _formula(t):
    return t._op.formula if t._op else ""


def _number(root):
    """Node numbers, root first, in a fixed order (parents in argument order)."""
    numbers = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in numbers:
            continue
        numbers[id(node)] = len(numbers)
        stack.extend(reversed(node._prev))
    return numbers


def render_tree(root, formulas=True, max_nodes=500, names=None, fold=True):
    """The graph behind `root` as an indented text tree, one line per op:

        #0 sum () float32            d(sum a) = ...
        └─ #1 mul (4, 8) float32     d(a*b) = b da + a db
           ├─ #2 w (4, 8) float32
           └─ ...

    A node reached a second time (a diamond) is printed as `#n (see above)`. With `fold`, a
    subtree that repeats one printed before, op for op, with only the block number of its
    parameters changed (`transformer.h.1.*` for `transformer.h.0.*`), is one line naming the
    first: a stack of blocks prints one block. Iterative, so deep graphs do not hit the
    recursion limit; past `max_nodes` lines it stops with a note.
    """
    numbers = _number(root)
    lines, seen, shapes = [], set(), {}
    stack = [(root, "", "", True)]
    while stack:
        if len(lines) >= max_nodes:
            lines.append(f"... ({len(numbers) - len(seen)} more nodes not shown)")
            break
        node, lead, branch, is_root = stack.pop()
        text = f"{lead}{branch}#{numbers[id(node)]} "
        if id(node) in seen:
            lines.append(text + f"{node._op.name if node._op else 'leaf'} (see above)")
            continue
        if fold and node._prev:
            folded = _fold(node, seen, shapes, names, numbers)
            if folded:
                lines.append(text + _label(node, names) + f"  {folded}")
                continue
        seen.add(id(node))
        line = text + _label(node, names)
        if formulas and _formula(node):
            line = f"{line:<48} {_formula(node)}"
        lines.append(line)
        child_lead = lead + ("" if is_root else ("   " if branch == "└─ " else "│  "))
        parents = node._prev
        for i in reversed(range(len(parents))):
            last = i == len(parents) - 1
            stack.append((parents[i], child_lead, "└─ " if last else "├─ ", False))
    return "\n".join(lines)


def _fold(node, seen, shapes, names, numbers):
    """When the unprinted part of `node`'s subtree repeats an earlier one with only block
    numbers changed: mark it seen and return the note; else remember it and return None."""
    members, blocks, signature = _shape_of(node, seen, names)
    if len(members) < 4 or not _holds_parameters(signature):
        return None  # only subtrees that hold parameters, and more than a line or two
    first = shapes.get(signature)
    if first is None:
        shapes[signature] = (numbers[id(node)], blocks)
        return None
    seen.update(members)
    was, now = ", ".join(sorted(first[1])), ", ".join(sorted(blocks))
    how = f"with {now} in place of {was}" if was != now else "the same parameters again"
    return f"── {len(members)} nodes folded: the same ops as #{first[0]}, {how}"


def _holds_parameters(signature):
    """Whether a subtree reads a parameter (new in it, or printed before): only those fold."""
    return any(part[-1] for part in signature)


def _shape_of(node, seen, names):
    """(ids of the unprinted subtree, its block prefixes like 'transformer.h.1', its
    signature: ops, shapes and parameter names with block numbers blanked, each part ending
    in whether it is a parameter, a leaf that requires grad)."""
    members, blocks, parts, stack = set(), set(), [], [node]
    while stack:
        t = stack.pop()
        name = (names or {}).get(id(t), "")
        leaf = _INDEX.sub(".#.", name) or ("param" if t.requires_grad else "const")
        is_param = not t._prev and t.requires_grad
        if id(t) in seen or id(t) in members:
            parts.append(("ref", t._op.name if t._op else leaf, tuple(t.shape), is_param))
            continue
        members.add(id(t))
        match = _INDEX.search(name)
        if match:
            blocks.add(name[:match.end() - 1])
        parts.append((t._op.name if t._op else leaf, tuple(t.shape), len(t._prev), is_param))
        stack.extend(reversed(t._prev))
    return members, blocks, tuple(parts)


def to_dot(root, names=None):
    """The graph behind `root` as Graphviz DOT text (`dot -Tpng` renders it)."""
    numbers = _number(root)
    nodes = {}  # every node, ops and leaves, keyed by id, in numbering order
    for node in topological_order(root) if root._prev else [root]:
        nodes[id(node)] = node
        for p in node._prev:
            nodes.setdefault(id(p), p)
    lines = ["digraph engine {", "  rankdir=BT;", '  node [fontname="monospace"];']
    for node in sorted(nodes.values(), key=lambda t: numbers[id(t)]):
        label = _label(node, names) + (f"\\n{_formula(node)}" if _formula(node) else "")
        shape = "box" if node._prev else "ellipse"
        lines.append(f'  n{numbers[id(node)]} [label="{_escape(label)}", shape={shape}];')
    for node in nodes.values():
        for p in node._prev:  # an op using one input twice (x * x) gets two edges
            lines.append(f"  n{numbers[id(p)]} -> n{numbers[id(node)]};")
    lines.append("}")
    return "\n".join(lines)


def _escape(text):
    return text.replace('"', '\\"')


def count_ops(root):
    """How many op nodes of each kind produced `root`: {"matmul": 6, ...}."""
    counts = {}
    for node in topological_order(root) if root._prev else []:  # a leaf has no ops
        counts[node._op.name] = counts.get(node._op.name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

