"""What the benchmark scripts share at the end: print a rich table at least 120 columns wide,
and write the rows as JSON when asked."""

import json


def show(table, rows, json_path=None):
    from rich.console import Console
    Console(width=max(Console().width, 120)).print(table)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(rows, f, indent=2)
