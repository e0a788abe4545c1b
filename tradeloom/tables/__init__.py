"""Tables built without pandas' per-value work: rows grouped by key in one pass
(`grouping`), text columns (`text_columns`), and a run's events kept as objects or columns
for its outputs (`kept`)."""
