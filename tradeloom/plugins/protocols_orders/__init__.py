"""The execution contract of an order: what a venue and the live runtime say of one.

Part of the plugin contract, as `tradeloom.plugins.protocols` is: the deterministic client
order id (`client_ids`), the states of an order at an exchange and their moves
(`order_state`), the events a venue reports of it (`order_events`: a venue's order, a
trade's fill, a refused fill), the order types and terms a venue is asked for
(`order_terms`), and the ``orders:`` keys every execution kind shares (`order_params`).
The built-in venues (`tradeloom.plugins.execution`) and the live runtime
(`tradeloom.live`) both speak them; neither owns them.
"""
