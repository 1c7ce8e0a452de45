"""Rich tables for the kernel benchmark results made by benchmarks/kernels.py."""

import shutil

from rich.console import Console
from rich.table import Table


def console():
    """A console at least 200 columns wide, so the table does not wrap when piped."""
    return Console(width=max(shutil.get_terminal_size((200, 40)).columns, 200))


def fmt_time(seconds):
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def _verdict(row):
    if row["status"] != "ok":
        return "[yellow]n/a[/]"
    if row.get("outputs_match") is False:
        return "[bold red]MISMATCH[/]"
    if row["met"] is None:
        return "-"
    return "[green]met[/]" if row["met"] else "[bold red]missed[/]"


def kernel_table(rows, env):
    table = Table(title="Kernels: ours (numba cpu form) vs numpy reference"
                  + (" vs torch CPU eager" if env.get("torch") else ""),
                  caption="ratio = numpy/ours, torch/ours: > 1 means ours is faster; "
                          "times are medians; 1st call includes JIT compile or cache load")
    for name in ("kernel", "shape", "note", "ours", "numpy", "ratio", "ours rate"):
        table.add_column(name, justify="left" if name in ("kernel", "shape", "note")
                         else "right", no_wrap=name != "note")
    if env.get("torch"):
        table.add_column("torch", justify="right")
        table.add_column("torch/ours", justify="right")
    for name in ("1st call", "target", "met"):
        table.add_column(name, justify="right")
    for row in rows:
        if row["status"] == "not registered":
            cells = ["[yellow]not registered yet: skipped[/]", "", "", ""]
        elif row["status"] != "ok":
            cells = ["[yellow]no cpu form yet[/]", fmt_time(row["numpy_s"]), "-", "-"]
        else:
            cells = [fmt_time(row["ours_s"]), fmt_time(row["numpy_s"]), _ratio(row["ratio"]),
                     f"{row['throughput']:.1f} {row['unit']}"]
        if env.get("torch"):
            cells += [fmt_time(row["torch_s"]), _ratio(row["torch_ratio"])]
        cells += [fmt_time(row["first_call_s"]), f">= {row['target_ratio']}x", _verdict(row)]
        table.add_row(row["kernel"], row["shape"], row["note"], *cells)
    return table


def compile_table(rows):
    table = Table(title="JIT compile time (fresh processes; cold = empty NUMBA_CACHE_DIR, "
                        "warm = second process, same folder)",
                  caption="first call on small float32 inputs; target: warm-cache process "
                          "start to first kernel result")
    for name in ("kernel", "method", "cold 1st call", "warm 1st call", "import ops cold/warm",
                 "warm start->first result", "warm start->all results", "target", "met"):
        table.add_column(name, justify="left" if name in ("kernel", "method") else "right")
    for row in rows:
        kernel = row["kernel"] + (" [yellow](no cpu form yet)[/]"
                                  if row["status"] != "ok" else "")
        table.add_row(kernel, row["method"], fmt_time(row["cold_s"]), fmt_time(row["warm_s"]),
                      f"{fmt_time(row['import_cold_s'])} / {fmt_time(row['import_warm_s'])}",
                      fmt_time(row["warm_start_to_first_result_s"]),
                      fmt_time(row["warm_start_to_all_results_s"]),
                      f"<= {row['target_start_s']:.0f} s", _verdict(row))
    return table


def print_tables(out, rows, env):
    """Print the kernel table, the compile table (if measured) and the environment."""
    kernels = [r for r in rows if r["table"] == "kernels"]
    compiles = [r for r in rows if r["table"] == "compile"]
    if kernels:
        out.print(kernel_table(kernels, env))
    if compiles:
        out.print(compile_table(compiles))
    out.print(", ".join(f"{k}={v}" for k, v in env.items()), style="dim")
    load, cores = env.get("load_average_1min"), env.get("cpu_count") or 1
    if load is not None and load > 0.5 * cores:
        out.print(f"[bold yellow]warning:[/] load average {load:.1f} on {cores} cores: other "
                  "processes were running, so these timings are unreliable (torch's and "
                  "numba's thread hand-offs suffer most); rerun on a quiet machine.")


def markdown_table(rows, env):
    """The kernel rows as a GitHub markdown table (for the README)."""
    torch = bool(env.get("torch"))
    head = ["kernel", "shape", "ours", "numpy", "numpy/ours", "ours rate"]
    head += ["torch", "torch/ours"] if torch else []
    head += ["target", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r["table"] != "kernels" or r["status"] != "ok":
            continue
        met = "-" if r["met"] is None else ("yes" if r["met"] else "**no**")
        shape = f"{r['shape']} {r['note']}".strip()
        cells = [r["kernel"], shape, fmt_time(r["ours_s"]), fmt_time(r["numpy_s"]),
                 _ratio(r["ratio"]), f"{r['throughput']:.1f} {r['unit']}"]
        cells += [fmt_time(r["torch_s"]), _ratio(r["torch_ratio"])] if torch else []
        cells += [f">= {r['target_ratio']}x", met]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
