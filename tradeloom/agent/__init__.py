"""The agent's door: tradeloom as an MCP server for research, with live actions behind a human.

``tradeloom mcp serve WORKSPACE`` serves the project's own commands to an agent over
stdio or streamable HTTP (127.0.0.1): plugins, schema, validate, backtest, sweep,
check-lookahead, parity, status and a run's tables, inside one declared folder
(`workspace.Workspace`). Every call is journaled in a hash-chained audit log
(`audit.AuditLog`); starting paper waits for validate, check-lookahead and a declared gate
(`gate.Gate`); live actions are tools only when the operator gives a token, and then each
files a request a named human approves (`approvals.Approvals`, ``tradeloom mcp approve``).
"""
