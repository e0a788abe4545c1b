"""Market time: trading calendars (when a market is open, a year's bars) and timeframes
(``1m``, ``4h``, ``1d``, annualization, timestamps in messages)."""
