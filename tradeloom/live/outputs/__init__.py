"""What a paper or live run tells outside: its files kept current (``metrics.json``,
``equity.csv``, the report), the line printed per bar, the Prometheus metrics and the
alerts (docs/concepts/layout.md: what this room may import).
"""
