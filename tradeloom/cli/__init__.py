"""The ``tradeloom`` command: argument parsing and the commands that only read (status)."""
