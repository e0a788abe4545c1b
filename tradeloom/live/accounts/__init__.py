"""A live run's account: each symbol's market (one exchange, or a router over several
venues and their health), the `Market` protocol a restart recovers through, and opening
them from `live_account` (docs/concepts/layout.md: what this room may import).
"""
