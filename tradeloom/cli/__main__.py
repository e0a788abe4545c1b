"""``python -m tradeloom.cli``: the ``tradeloom`` command."""

from tradeloom.cli.main import console

if __name__ == "__main__":
    console()
