"""The symbolic view: the graph that produced a tensor, as a text tree or Graphviz DOT."""

import ops
from engine.autograd import topological_order


def _label(t):
    op = t._op.name if t._op else ("param" if t.requires_grad else "const")
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


def render_tree(root, formulas=True, max_nodes=500):
    """The graph behind `root` as an indented text tree, one line per op:

        #0 sum () float32            d(sum a) = ...
        └─ #1 mul (4, 8) float32     d(a*b) = b da + a db
           ├─ #2 param (4, 8) float32
           └─ ...

    A node reached a second time (a diamond) is printed as `#n (see above)`. Iterative, so
    deep graphs do not hit the recursion limit; past `max_nodes` lines it stops with a note.
    """
    numbers = _number(root)
    lines, seen = [], set()
    stack = [(root, "", "", True)]
    while stack:
        if len(lines) >= max_nodes:
            lines.append(f"... ({len(numbers) - len(seen)} more nodes not shown)")
            break
        node, lead, branch, is_root = stack.pop()
        n = numbers[id(node)]
        text = f"{lead}{branch}#{n} "
        if id(node) in seen:
            lines.append(text + f"{node._op.name if node._op else 'leaf'} (see above)")
            continue
        seen.add(id(node))
        line = text + _label(node)
        if formulas and _formula(node):
            line = f"{line:<48} {_formula(node)}"
        lines.append(line)
        child_lead = lead + ("" if is_root else ("   " if branch == "└─ " else "│  "))
        parents = node._prev
        for i in reversed(range(len(parents))):
            last = i == len(parents) - 1
            stack.append((parents[i], child_lead, "└─ " if last else "├─ ", False))
    return "\n".join(lines)


def to_dot(root):
    """The graph behind `root` as Graphviz DOT text (`dot -Tpng` renders it)."""
    numbers = _number(root)
    nodes = {}  # every node, ops and leaves, keyed by id, in numbering order
    for node in topological_order(root) if root._prev else [root]:
        nodes[id(node)] = node
        for p in node._prev:
            nodes.setdefault(id(p), p)
    lines = ["digraph engine {", "  rankdir=BT;", '  node [fontname="monospace"];']
    for node in sorted(nodes.values(), key=lambda t: numbers[id(t)]):
        label = _label(node) + (f"\\n{_formula(node)}" if _formula(node) else "")
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

