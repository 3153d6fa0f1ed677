"""Errors that are the user's to fix: printed as one line, exit code 2, no traceback."""

import click


class UserError(click.ClickException):
    exit_code = 2
