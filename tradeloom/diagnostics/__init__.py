"""Proofs about a strategy: look-ahead checking (``tradeloom check-lookahead``)."""
