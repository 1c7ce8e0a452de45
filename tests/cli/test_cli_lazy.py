"""`attn` imports only the module of the subcommand that runs: `attn --help` imports no
subcommand (nor Numba), `attn info` and `attn COMMAND --help` none but their own."""

import json
import os
import subprocess
import sys

import pytest

import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Run main(argv) in a fresh interpreter; print the modules of the table it imported.
_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import cli
try:
    cli.main(json.loads(sys.argv[2]))
except SystemExit:
    pass
loaded = sorted(m for m in {f"commands.{m}" for _, m in cli.SUBCOMMANDS.values()}
                if m in sys.modules)
print(json.dumps({"commands": loaded, "numba": "numba" in sys.modules}), file=sys.stderr)
"""


def _imported(*argv):
    r = subprocess.run([sys.executable, "-c", _PROBE, ROOT, json.dumps(argv)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, check=False)
    return json.loads(r.stderr.strip().splitlines()[-1])


def test_help_imports_no_subcommand_and_not_numba():
    assert _imported("--help") == {"commands": [], "numba": False}
    assert _imported() == {"commands": [], "numba": False}  # the "choose a command" error


def test_info_imports_no_other_subcommand():
    assert _imported("info", "--json")["commands"] == ["commands.info"]


@pytest.mark.parametrize("name", list(cli.SUBCOMMANDS))
def test_a_subcommands_help_imports_only_its_module(name):
    assert _imported(name, "--help")["commands"] == [f"commands.{cli.SUBCOMMANDS[name][1]}"]


def test_every_entry_names_a_module_with_add_args_and_run():
    parser = cli.build_parser(complete=True)
    choices = next(a for a in parser._actions if a.dest == "command").choices
    for name, (help_text, module) in cli.SUBCOMMANDS.items():
        sub = choices[name]
        assert help_text and sub.description == help_text
        assert os.path.isfile(os.path.join(ROOT, "commands", f"{module}.py")), name
        assert sub.get_default("run").__module__ == f"commands.{module}", name
