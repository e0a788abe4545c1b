"""The JSON Schemas of the console API's answers, the components of its OpenAPI document.

Written beside the code that builds the answers (`tradeloom.console.runs`); the tests
check real run folders' answers against them.
"""

from __future__ import annotations

from typing import Any

from tradeloom.engine.reasons import REASON_LIMIT

__all__ = ["COMPONENTS"]

_NUM = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}
_STR = {"type": ["string", "null"]}
_BOOL = {"type": ["boolean", "null"]}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


_EVENT = _object(
    {"bar": {"type": "integer"}, "time": _STR, "symbol": {"type": "string"}},
)

COMPONENTS: dict[str, Any] = {
    "RunSummary": _object(
        {
            "id": {"type": "string", "description": "<root>/<folder>"},
            "name": {"type": "string"},
            "strategy": {"type": "string"},
            "mode": {"type": "string", "enum": ["backtest", "paper", "live"]},
            "process": {"type": "string"},
            "state": {"type": "string", "enum": ["ACTIVE", "REDUCING", "HALTED"]},
            "state_code": {"type": "string"},
            "equity": _NUM,
            "pnl": _NUM,
            "total_return": _NUM,
            "drawdown": _NUM,
            "max_drawdown": _NUM,
            "health": _STR,
            "health_worst": {"type": "array", "items": {"type": "string"}},
            "last_bar": _INT,
            "last_bar_time": _STR,
            "last_bar_age_seconds": _NUM,
            "stale": _BOOL,
            "staleness": {"type": "string"},
            "error": {"type": "null"},
        }
    ),
    "RunError": _object(
        {"id": {"type": "string"}, "name": {"type": "string"}, "error": {"type": "string"}}
    ),
    "RunList": _object(
        {
            "runs": {
                "type": "array",
                "items": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/RunSummary"},
                        {"$ref": "#/components/schemas/RunError"},
                    ]
                },
            }
        }
    ),
    "Position": _object(
        {
            "symbol": {"type": "string"},
            "quantity": {"type": "number"},
            "cost": _NUM,
            "mark": _NUM,
            "unrealized": _NUM,
        }
    ),
    "OpenOrder": _object(
        {
            "id": {"type": "string"},
            "symbol": {"type": "string"},
            "bar": {"type": "integer"},
            "timestamp": _STR,
            "side": {"type": "string"},
            "quantity": {"type": "number"},
            "filled": {"type": "number"},
            "reason": {"type": "string"},
        }
    ),
    "AllocationWeight": _object(
        {"symbol": {"type": "string"}, "target": _NUM, "held": _NUM},
    ),
    "Allocation": _object(
        {
            "allocator": {"type": "string"},
            "bar": {"type": "integer"},
            "time": _STR,
            "status": {"type": "string"},
            "message": {"type": "string"},
            "rebalances": {"type": "integer"},
            "kept": {"type": "integer"},
            "held_at": {"type": "string", "enum": ["now", "rebalance"]},
            "weights": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/AllocationWeight"},
            },
            "others": {"type": "integer"},
            "others_target": _NUM,
            "others_held": _NUM,
            "weighs": {
                "type": "string",
                "enum": ["symbol", "strategy"],
                "description": "What the weights are of: a portfolio file's weigh its "
                "strategies (each weight's symbol is a strategy's name).",
            },
        }
    ),
    "Book": _object(
        {
            "name": {"type": "string", "description": "champion, or the challenger's name"},
            "equity": _NUM,
            "total_return": _NUM,
            "sharpe": _NUM,
            "fills": {"type": "integer"},
            "turnover": _NUM,
            "auc": _NUM,
            "gate": {**_STR, "description": "A gated challenger's last verdict and p-value."},
            "max_drawdown": _NUM,
            "ece": {**_NUM, "description": "The model's expected calibration error."},
            "first_bar": {**_INT, "description": "The first bar of the book."},
            "bars": {"type": "integer"},
        }
    ),
    "Status": {
        "type": "object",
        "description": "What 'tradeloom status --json' prints.",
        "properties": {
            "mode": {"type": "string"},
            "state": {"type": "string"},
            "equity": _NUM,
            "positions": {"type": "array", "items": {"$ref": "#/components/schemas/Position"}},
            "open_orders": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/OpenOrder"},
            },
            "monitors": {"type": "object", "additionalProperties": {"type": "string"}},
            "health": _STR,
            "errors": {"type": "array", "items": {"type": "object"}},
            "refusals": {
                "type": "object",
                "description": "Every refusal by stage (rejected, cut, cancelled), code and "
                "purpose: {stage: {code: {purpose: count}}}, as metrics.json's.",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": {"type": "integer"},
                    },
                },
            },
            "exits_refused": {
                "type": "object",
                "description": "The exits refused (each left its position open), by purpose.",
                "additionalProperties": {"type": "integer"},
            },
            "allocation": {
                "description": "The allocation layer's last rebalance and target against "
                "held weight per symbol (null: the run does not allocate).",
                "oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Allocation"}],
            },
            "books": {
                "type": "array",
                "description": "With challengers: the champion's book, then each "
                "challenger's shadow book, side by side (empty: none).",
                "items": {"$ref": "#/components/schemas/Book"},
            },
            "parity": {
                "description": "The live parity monitor's last check (live.parity): window, "
                "gaps, unexplained P&L, first divergence, verdict (ok, diverged, failed), "
                "message, checks (null: none yet).",
                "type": ["object", "null"],
            },
        },
        "required": ["mode", "state", "equity", "positions", "open_orders", "monitors", "errors"],
    },
    "RunDetail": _object(
        {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "status": {"$ref": "#/components/schemas/Status"},
            "drawdown": _NUM,
            "max_drawdown": _NUM,
            "curve": _object(
                {
                    "time": {"type": "array", "items": _STR},
                    "equity": {"type": "array", "items": {"type": ["number", "null"]}},
                    "drawdown": {"type": "array", "items": {"type": ["number", "null"]}},
                }
            ),
            "orders": {"type": "array", "items": _EVENT},
            "fills": {"type": "array", "items": _EVENT},
            "rejections": {"type": "array", "items": _EVENT},
            "health_changes": {"type": "array", "items": _EVENT},
            "cancellations": {"type": "array", "items": _EVENT},
            "refusals": {
                "type": "array",
                "description": "Every refusal of the run by stage (rejected, cut, "
                "cancelled), code and purpose (the order reason of what was refused); "
                "exit: it left open a position it was to close.",
                "items": _object(
                    {
                        "stage": {"type": "string", "enum": ["rejected", "cut", "cancelled"]},
                        "code": {"type": "string"},
                        "purpose": {"type": "string"},
                        "count": {"type": "integer"},
                        "exit": {"type": "boolean"},
                        "protective": {"type": "boolean"},
                    }
                ),
            },
            "exits_refused": {
                **_STR,
                "description": "The warning of the exits refused; null: none was.",
            },
            "report": {"type": "boolean"},
            "mode": {"type": "string"},
            "controllable": {"type": "boolean"},
            "promotion": {
                "description": "A paper or live run with challengers: the challengers a "
                "promote would be taken for now and whether a rollback would (as the "
                "actions' check of the journal judges them), the model in force, and the "
                "last canary's and the last watch's stage in words (null: no challengers).",
                "oneOf": [
                    {"type": "null"},
                    _object(
                        {
                            "promote": {"type": "array", "items": {"type": "string"}},
                            "rollback": {"type": "boolean"},
                            "in_force": {"type": "string"},
                            "canary": _STR,
                            "watch": _STR,
                        }
                    ),
                ],
            },
            "monitoring": {
                "type": "array",
                "description": "Each monitor of each symbol: its health and its figures now "
                "(the rolling AUC, each feature's PSI...).",
                "items": _object(
                    {
                        "label": {"type": "string"},
                        "monitor": {"type": "string"},
                        "symbol": {"type": "string", "description": "'' for one market"},
                        "status": _STR,
                        "figures": {"type": "object", "additionalProperties": _NUM},
                    }
                ),
            },
            "notice": {
                **_STR,
                "description": "Why the console read the run's journal again from its "
                "first row (it was replaced or cut while followed), and when; null: never.",
            },
        }
    ),
    "Compare": _object(
        {
            "runs": {"type": "array", "items": {"type": "string"}},
            "settings": {
                "type": "array",
                "items": _object(
                    {
                        "key": {"type": "string"},
                        "values": {"type": "array", "items": {"type": "string"}},
                    }
                ),
            },
            "curves": {
                "type": "array",
                "items": _object(
                    {
                        "id": {"type": "string"},
                        "time": {"type": "array", "items": _STR},
                        "equity": {"type": "array", "items": {"type": ["number", "null"]}},
                    }
                ),
            },
        }
    ),
    "Session": _object({"scope": {"type": "string", "enum": ["read", "write"]}, "csrf": _STR}),
    "ActionRequest": _object(
        {
            "model": {
                "type": "string",
                "description": "swap only: the run id (of this console) whose saved fold "
                "the run takes",
            },
            "fold": {
                "type": "integer",
                "minimum": 0,
                "description": "swap only: the fold to take (default: the latest)",
            },
            "challenger": {
                "type": "string",
                "description": "promote only: the challenger to promote (challengers[].name)",
            },
            "strategy": {
                "type": "string",
                "minLength": 1,
                "description": "swap only, a portfolio file's run: the strategy (its name) "
                "whose model to swap",
            },
            "reason": {
                "type": "string",
                "maxLength": REASON_LIMIT,
                "description": "one line without control characters (line breaks, tabs, "
                "escapes, format characters): refused with 400 otherwise",
            },
        },
        required=[],
    ),
    "ActionResult": _object(
        {
            "action": {
                "type": "string",
                "enum": ["kill", "resume", "flatten", "swap", "promote", "rollback"],
            },
            "run": {"type": "string"},
            "message": {"type": "string"},
            "running": {"type": "boolean"},
            "already": {
                "type": "boolean",
                "description": "The run was already as asked (a kill of a run the kill "
                "switch holds halted, a resume of an active run); the message says since "
                "when. The request is journaled all the same.",
            },
        }
    ),
    "AgentCall": _object(
        {
            "seq": {"type": "integer"},
            "at": {"type": "string", "description": "UTC, ISO 8601"},
            "who": {
                "type": "string",
                "description": "the client and its transport, or 'human NAME' for an approval",
            },
            "tool": {"type": "string"},
            "arguments_sha256": {"type": "string"},
            "ok": {"type": "boolean"},
            "seconds": {"type": "number"},
            "result": {
                "type": "string",
                "description": "the call's one-line result, cut to 300 characters",
            },
        }
    ),
    "AgentAudit": _object(
        {
            "workspace": {"type": "string"},
            "log": {"type": "string"},
            "chain": {"type": "string", "enum": ["intact"]},
            "total": {"type": "integer"},
            "page": {"type": "integer"},
            "pages": {"type": "integer"},
            "per_page": {"type": "integer"},
            "calls": {"type": "array", "items": {"$ref": "#/components/schemas/AgentCall"}},
        }
    ),
    "AgentRequest": _object(
        {
            "id": {"type": "string"},
            "action": {
                "type": "string",
                "enum": ["start_live", "swap", "promote", "rollback", "flatten"],
            },
            "target": {"type": "object"},
            "reason": {"type": "string"},
            "asked_by": {"type": "string"},
            "asked_at": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "approved"]},
            "approved_by": _STR,
            "done": _STR,
        }
    ),
    "AgentRequests": _object(
        {
            "workspace": {"type": "string"},
            "pending": {"type": "integer"},
            "requests": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/AgentRequest"},
            },
            "approve": {"type": "string", "description": "the command a named human runs"},
        }
    ),
}
