"""`attn info --ops`: every kernel of the registry, where each of its forms lives, which engine
code calls it, and which test files exercise it; read from the code, so it cannot go stale.

The forms come from `ops.registry` and `inspect` (file:line of the registered function). The
optional devices' modules are imported only when that costs nothing optional: ops.strict when
array-api-strict is installed, ops.cuda only when asked (--cuda) and a GPU or the simulator is
there; otherwise their register("name", "impl", fn) calls are read from the source with `ast`.
The callers are the engine classes (or functions) whose code calls ops.kernel("name", ...) or
ops.kernel_for("name", ...); the tests are the files of tests/ naming the kernel or a caller.
"""

import ast
import glob
import importlib.util
import inspect
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_KERNEL_CALLS = ("kernel", "kernel_for")


def _rel(path):
    return os.path.relpath(os.path.realpath(path), ROOT)


def _where(name, file, line):
    return {"name": name, "file": _rel(file), "line": line}


# ---- the forms: from the registry, or from the source of a device not imported -------------

def _def_line(file, line, name):
    """The line of `def name` / `class name` at or after `line` (which may be a decorator)."""
    with open(file, encoding="utf-8") as f:
        lines = f.read().splitlines()
    pattern = re.compile(rf"\s*(async\s+)?(def|class)\s+{re.escape(name)}\b")
    for i in range(line - 1, len(lines)):
        if pattern.match(lines[i]):
            return i + 1
    return line


def _located(fn):
    """{name, file, line} of a registered function (a Numba dispatcher's Python function);
    of a function made by a factory, the factory (as the source reading names it)."""
    fn = inspect.unwrap(getattr(fn, "py_func", fn))
    if not (inspect.isfunction(fn) or inspect.isclass(fn)):
        fn = type(fn)
    file = inspect.getsourcefile(fn)
    if "<locals>" in fn.__qualname__:
        return _resolve(file, fn.__qualname__.split(".<locals>")[0])
    name = fn.__qualname__.split(".")[-1]
    return _where(fn.__qualname__, file, _def_line(file, inspect.getsourcelines(fn)[1], name))


def _module_file(module):
    return os.path.join(ROOT, *module.split(".")) + ".py"


def _top_defs(tree):
    """{name: line} of a module's top-level defs and classes, and {name: module} it imports."""
    defs, imported = {}, {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defs[node.name] = node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.update({a.asname or a.name: node.module for a in node.names})
    return defs, imported


def _resolve(file, name, depth=0):
    """{name, file, line} of the top-level def `name` of `file`, following `from x import`."""
    with open(file, encoding="utf-8") as f:
        defs, imported = _top_defs(ast.parse(f.read()))
    if name in defs:
        return _where(name, file, defs[name])
    source = _module_file(imported.get(name, ""))
    if name in imported and depth < 4 and os.path.isfile(source):
        return _resolve(source, name, depth + 1)
    return None


def registrations_in_source(files):
    """{(kernel, impl): {name, file, line}} of the register("kernel", "impl", fn) calls at
    the top level of `files`; fn is a function's name or a call of a factory (its def)."""
    found = {}
    for file in files:
        with open(file, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            call = node.value if isinstance(node, ast.Expr) else None
            if not (isinstance(call, ast.Call) and _called(call) == "register"
                    and len(call.args) == 3 and all(isinstance(a, ast.Constant)
                                                    for a in call.args[:2])):
                continue
            fn = call.args[2].func if isinstance(call.args[2], ast.Call) else call.args[2]
            if isinstance(fn, ast.Name):
                found[(call.args[0].value, call.args[1].value)] = _resolve(file, fn.id)
    return found


def _called(call):
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _cuda_ready():
    from commands.info import cuda_status
    return cuda_status(probe=True).get("available", False)


def forms(cuda=False):
    """{(kernel, impl): {name, file, line}} of every registered form of every kernel."""
    import ops
    from ops import registry
    read = {}
    if importlib.util.find_spec("array_api_strict") is not None:
        import ops.strict  # (its register(...) calls)
    else:
        read.update(registrations_in_source([_module_file("ops.strict")]))
    if cuda and _cuda_ready():
        import ops.cuda.device  # (its register(...) calls)
    else:
        read.update(registrations_in_source(sorted(glob.glob(os.path.join(ROOT, "ops", "cuda",
                                                                          "*.py")))))
    found = {(name, impl): _located(registry.lookup(name, (impl,), impl))
             for name in ops.names() for impl in ops.implementations(name)}
    return {**{k: v for k, v in read.items() if v is not None}, **found}


# ---- the callers in engine/, the tests -----------------------------------------------------

def callers():
    """{kernel: [{name, file, line}]}: the innermost class (else function) of engine/ around
    each ops.kernel("kernel", ...) / ops.kernel_for("kernel", ...) call."""
    found = {}
    for file in sorted(glob.glob(os.path.join(ROOT, "engine", "**", "*.py"), recursive=True)):
        with open(file, encoding="utf-8") as f:
            _calls(ast.parse(f.read()), file, [], found)
    return found


def _calls(node, file, scopes, found):
    for child in ast.iter_child_nodes(node):
        inner = scopes
        if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            inner = [*scopes, child]
        if (isinstance(child, ast.Call) and _called(child) in _KERNEL_CALLS and child.args
                and isinstance(child.args[0], ast.Constant) and scopes):
            classes = [s for s in scopes if isinstance(s, ast.ClassDef)]
            owner = (classes or scopes)[-1]
            entry = _where(owner.name, file, owner.lineno)
            if entry not in found.setdefault(child.args[0].value, []):
                found[child.args[0].value].append(entry)
        _calls(child, file, inner, found)


def test_files(kernel, names):
    """The files of tests/ naming the kernel or one of `names` (whole words)."""
    words = re.compile(r"\b(" + "|".join(re.escape(w) for w in [kernel, *names]) + r")\b")
    found = []
    for file in sorted(glob.glob(os.path.join(ROOT, "tests", "**", "*.py"), recursive=True)):
        with open(file, encoding="utf-8") as f:
            if words.search(f.read()):
                found.append(_rel(file))
    return found


def op_table(cuda=False):
    """One entry per kernel: {kernel, callers, forms: {impl: {name, file, line} or None},
    tests}, sorted by kernel name."""
    from ops.registry import IMPLEMENTATIONS
    every, calling = forms(cuda), callers()
    kernels = sorted({name for name, _ in every} | set(calling))
    return [{"kernel": k, "callers": calling.get(k, []),
             "forms": {impl: every.get((k, impl)) for impl in IMPLEMENTATIONS},
             "tests": test_files(k, [c["name"] for c in calling.get(k, [])])}
            for k in kernels]


def print_table(table):
    from rich.console import Console
    from rich.table import Table
    out = Table("kernel", "", title="kernels: their engine callers, forms "
                "and tests", caption="missing: no form of that kind is registered (the device then "
                "runs the reference form: ops/devices.py)")
    out.add_column("name", overflow="fold")
    out.add_column("where", overflow="fold")
    for entry in table:
        rows = [("called by", c) for c in entry["callers"]] or [("called by", None)]
        rows += list(entry["forms"].items())
        for i, (what, at) in enumerate(rows):
            if at:
                cells = (at["name"], f"{at['file']}:{at['line']}")
            elif what in ("called by", "reference"):
                cells = ("[red]missing[/]", "")
            else:  # every device falls back to the reference form
                cells = ("[yellow]missing[/]", "the reference runs")
            out.add_row(entry["kernel"] if i == 0 else "", what, *cells)
        tests = entry["tests"]
        out.add_row("", "tests", f"{len(tests)} files", ", ".join(
            t.removeprefix("tests/") for t in tests) or "[red]none[/]", end_section=True)
    Console(highlight=False).print(out)
