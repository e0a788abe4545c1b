"""The ccxt order layer every live account sends through: an order checked, journaled
before it is sent, sent once, found again by its client id; the exchange's answers,
capabilities and errors; the stops resting at the exchange; `ExchangeVenue`, the engine's
`Venue` over one exchange. It imports nothing else of `tradeloom.live`
(docs/concepts/layout.md: what this room may import).
"""
