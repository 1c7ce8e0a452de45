"""The `attn` subcommands, one module each (commands/<name>.py exposes add_args(parser) and
run(args) -> exit status), and the helper modules they share; cli.py holds the table that
names them and imports a module only when its subcommand runs or shows its --help."""


class CliError(Exception):
    """A problem with what the user asked for: printed as one line, exit status 2."""


class CommandFailed(Exception):
    """The command ran and what it checked failed (a tutorial cell, an exercise): printed
    as one line, exit status 1."""
