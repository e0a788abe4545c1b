"""The lifecycle wing of a live run: what acts at a bar boundary, each a `Stage`.

Shadow challengers (a strategy's, a portfolio file's strategies'), their promotion (the
gate, the canary, the watch after it), the model swap, the hot reload and the live
parity monitor. `tradeloom.live.lifecycle.stages` builds a run's ordered list; the
runner calls them and names none (docs/concepts/layout.md: what this room may import).
"""
