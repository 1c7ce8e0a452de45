"""Every `attn` example the README and the --help epilogs show parses with today's flags (the
quick guard; CI also runs them all with scripts/run_examples.py)."""

import os
import shlex
import sys

import pytest

import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import run_examples

EXAMPLES = run_examples.examples()


def _argv(command):
    words = shlex.split(command, comments=True)
    while words and "=" in words[0] and words[0] != "attn":  # VAR=value prefixes
        words.pop(0)
    assert words[0] == "attn", command
    return words[1:]


def test_the_readme_and_every_epilog_have_examples():
    assert any(c.startswith("attn train") for c in EXAMPLES)
    commands = {_argv(c)[0] for c in EXAMPLES}
    assert commands == set(cli.SUBCOMMANDS)  # every subcommand shows at least one


@pytest.mark.parametrize("command", EXAMPLES)
def test_example_parses(command):
    parser = cli.build_parser()
    try:
        args = parser.parse_args(_argv(command))
    except SystemExit as e:  # the one-line argparse error is on stderr
        pytest.fail(f"{command!r} does not parse (exit {e.code})")
    assert args.command == _argv(command)[0]


def test_expected_status_reads_the_comment():
    assert run_examples.expected_status("attn tutorial 4 --check f.py   # exits 1 until") == 1
    assert run_examples.expected_status("attn train   # the tiny GPT") == 0
