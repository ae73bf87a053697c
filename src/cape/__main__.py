"""``python -m cape`` — the same as the ``cape`` command (and what torchrun runs)."""

from cape.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
