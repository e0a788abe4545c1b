"""``python -m tradeloom.cli``: the ``tradeloom`` command."""

from tradeloom.cli.main import main

if __name__ == "__main__":
    main()
