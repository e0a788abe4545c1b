"""What a paper or live run's journal says, read back for a restart.

`read_state` groups the rows a restart needs: how the run started (mode, run
key, capital), the bars it processed with the model's verdicts, what the venue
delivered at each bar, the intents sent and every trade counted, the last
trading state change, and the last model training.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.domain import Cancellation, Fill, Order
from tradeloom.runner.journal import JournalRow, read_journal
from tradeloom.runner.live.session import BarInput
from tradeloom.runner.trading_state import StateChange, TradingState

__all__ = ["ENGINE_TYPES", "JournalState", "LiveBar", "read_state"]

ENGINE_TYPES = frozenset(
    {
        "signal",
        "risk_decision",
        "order",
        "fill",
        "order_cancelled",
        "halt",
        "regime_changed",
        "health",
        "health_action",
    }
)
"""Rows the engine writes: a replay of the journal's bars must write the same."""


@dataclass(frozen=True)
class LiveBar:
    """One bar the run processed live: its prices, the model's verdict, the wall time."""

    index: int
    time: pd.Timestamp
    values: np.ndarray
    verdict: BarInput
    wall_time: pd.Timestamp


@dataclass
class JournalState:
    """The rows of a journal a restart needs, grouped.

    Attributes:
        started: The payload of the first ``run`` row (``mode``, ``run_key``...).
        warm_up: The payload of the ``warm_up`` row (history bars and their hash).
        bars: The bars processed live, in order.
        engine_rows: Rows of `ENGINE_TYPES`, in order: ``(bar, ts, type, payload)``.
        delivered: ``(bar, phase)`` -> ``(refused, events)``: what the guarded live
            venue reported at that phase: its refusals first, then the venue's events.
        events: Bar -> the engine's fills and cancellations at that bar, in order.
        sent: Client id -> its ``order_sent`` payload.
        order_states: Client id -> the last state journaled.
        venue_fills: Client id -> its ``venue_fill`` payloads, in order.
        engine_fills: Client id -> how many ``fill`` rows the engine journaled.
        trading_state: The last trading state change (None: ACTIVE throughout).
        kill_switch: The kill switch's halts, resumes and later cancels (None): ``(bar,
            change)``, in order; the bar is the last one processed when it happened.
        training: The last live model training: ``(predicts_from, reason)``.
        orders: Client id -> the engine's order, as journaled.
        reloaded_at: The last bar after which an edited strategy file was swapped in
            (None: never): the bars up to it were decided under older settings.
        document: The strategy document the run last traded under (its start's, or
            its last hot reload's); None in a journal that does not record it.
        requests: Control request files already acted on (their names).
        last_seq: The journal's last sequence number.
    """

    started: dict[str, Any] = field(default_factory=dict)
    warm_up: dict[str, Any] = field(default_factory=dict)
    bars: list[LiveBar] = field(default_factory=list)
    engine_rows: list[tuple[int | None, str | None, str, str]] = field(default_factory=list)
    delivered: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict)
    events: dict[int, list[Fill | Cancellation]] = field(default_factory=lambda: defaultdict(list))
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    order_states: dict[str, str] = field(default_factory=dict)
    venue_fills: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    engine_fills: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    trading_state: StateChange | None = None
    kill_switch: list[tuple[int, StateChange | None]] = field(default_factory=list)
    training: tuple[int, str] | None = None
    orders: dict[str, Order] = field(default_factory=dict)
    reloaded_at: int | None = None
    document: dict[str, Any] | None = None
    last_seq: int = 0

    @property
    def max_trade_id(self) -> str | None:
        """The largest numeric trade id counted (the venue's poll goes on after it)."""
        ids = [
            int(f["trade_id"])
            for fills in self.venue_fills.values()
            for f in fills
            if str(f.get("trade_id", "")).isdigit()
        ]
        return str(max(ids)) if ids else None


def read_state(path: Path) -> JournalState:
    """Read the journal at ``path`` into a `JournalState`."""
    state = JournalState()
    for row in read_journal(path):
        _take(state, row)
    return state


def _take(state: JournalState, row: JournalRow) -> None:
    seq, bar, ts, kind, _, text = row
    state.last_seq = seq
    payload = json.loads(text)
    if kind in ENGINE_TYPES:
        state.engine_rows.append((bar, ts, kind, text))
    if kind == "run" and not state.started and payload.get("event") == "started":
        state.started = payload
        state.document = payload.get("document")
    elif kind == "warm_up":
        state.warm_up = payload
    elif kind == "live_bar":
        assert bar is not None and ts is not None
        state.bars.append(
            LiveBar(
                bar,
                pd.Timestamp(ts),
                np.array([_f(payload[k]) for k in ("open", "high", "low", "close", "volume")]),
                BarInput(
                    _f(payload["probability"]),
                    bool(payload["anomalous"]),
                    _f(payload["anomaly_score"]),
                ),
                pd.Timestamp(payload["wall_time"]),
            )
        )
    elif kind == "venue_delivered":
        assert bar is not None
        key = (bar, str(payload["phase"]))
        state.delivered[key] = (int(payload["refused"]), int(payload["events"]))
    elif kind == "fill":
        assert bar is not None
        state.events[bar].append(_fill(payload))
        state.engine_fills[payload["order_id"]] += 1
    elif kind == "order_cancelled":
        assert bar is not None
        state.events[bar].append(
            Cancellation(
                payload["order_id"],
                int(payload["bar"]),
                pd.Timestamp(payload["timestamp"]),
                _f(payload["remaining"]),
                payload["reason"],
            )
        )
    elif kind == "kill_cancel":
        state.kill_switch.append((-1 if bar is None else bar, None))
    elif kind == "order":
        state.orders[payload["id"]] = _order(payload)
    elif kind == "config_reloaded":
        state.reloaded_at = bar
        state.document = payload.get("document", state.document)
    elif kind == "order_sent":
        state.sent[payload["client_id"]] = payload
    elif kind == "order_state":
        state.order_states[payload["client_id"]] = payload["state"]
    elif kind == "venue_fill":
        state.venue_fills[payload["order_id"]].append(payload)
    elif kind == "trading_state":
        change = StateChange(
            TradingState(payload["previous"]),
            TradingState(payload["state"]),
            payload["code"],
            payload["message"],
            pd.Timestamp(payload["at"]),
        )
        state.trading_state = change
        if change.code in ("KILL_SWITCH", "RESUME"):
            state.kill_switch.append((-1 if bar is None else bar, change))
    elif kind == "model_trained" and not payload.get("skipped") and bar is not None:
        state.training = (int(payload["predict_start"]), str(payload.get("reason") or ""))


def _order(payload: dict[str, Any]) -> Order:
    fields = dict(payload)
    fields["timestamp"] = pd.Timestamp(fields["timestamp"])
    fields["stop_price"] = _f(fields.get("stop_price"))
    return Order(**fields)


def _fill(payload: dict[str, Any]) -> Fill:
    return Fill(
        payload["order_id"],
        int(payload["bar"]),
        pd.Timestamp(payload["timestamp"]),
        int(payload["side"]),
        _f(payload["quantity"]),
        _f(payload["price"]),
        _f(payload["fee"]),
        _f(payload["slippage"]),
    )


def _f(value: object) -> float:
    return float("nan") if value is None else float(value)  # type: ignore[arg-type]
