"""Exceptions whose message is meant for the user."""


class CapeError(Exception):
    """An error the CLI prints as ``cape: error: MESSAGE`` without a traceback.

    Raise it (or a subclass) for bad input a user can fix: a missing store, a
    config value out of range, too few labelled samples. The message must name
    the file or setting and the problem.
    """
