"""The bodies of the `attn` subcommands beyond train/sample/bench, one module each; cli.py
holds the table that names them."""


class CliError(Exception):
    """A problem with what the user asked for: printed as one line, exit status 2."""
