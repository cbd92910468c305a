"""Errors that repcheck reports to the user.

`RepcheckError` means "your input is wrong" (a bad sentence, a missing file, a model that
cannot be loaded): the CLI prints its message on one line and exits with code 2. Anything
else that escapes is a bug in repcheck and exits with code 1.
"""


class RepcheckError(Exception):
    """A problem with the user's input or environment, explained in one line."""
