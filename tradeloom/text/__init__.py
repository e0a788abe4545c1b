"""Words as features: timestamped documents and the scorers that turn each into numbers.

`documents` holds the documents a strategy reads (news, posts, filings), each with the
time it becomes visible; `scoring` is the protocol every scorer (a lexicon, a local
embedding model, an LLM behind an endpoint) implements. The feature plugins that
aggregate scores per bar over the documents visible at each bar's decision time are in
`tradeloom.plugins.features`; nothing here knows bars.
"""
