"""Restart and reconciliation: the journal read back, replayed under the file in force at
each bar, what was sent adopted, pending orders handed over, the venue checked against
the journal (docs/concepts/layout.md: what this room may import).
"""
