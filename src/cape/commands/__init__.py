"""Subcommands of the ``cape`` CLI, one module each (see :mod:`cape.cli`)."""
