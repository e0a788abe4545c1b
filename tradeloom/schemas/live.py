"""The ``live:`` section: how a paper or live run meets the market.

A backtest ignores it. Every key has a default, so a strategy that backtests also
runs with ``--mode paper`` (given a ``ccxt`` data source); ``--mode live`` trades
on the account of ``execution: {kind: ccxt}``, or, with ``kind: simulated``, on the
data source's exchange with its ``${ENV}`` keys.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from tradeloom.bounds import MAX_CASH
from tradeloom.schemas.alerts import AlertsParams
from tradeloom.schemas.events import EventsEntry

__all__ = ["LiveSection", "MetricsSection", "ParitySection", "check_crontab"]


def check_crontab(value: str) -> str:
    """Return ``value`` if APScheduler reads it as a five-field crontab expression (UTC).

    Raises:
        ValueError: It does not, with APScheduler's reason.
    """
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as exc:
        raise ValueError(
            f"expected a crontab expression such as '0 */6 * * *' (minute hour day month "
            f"weekday, UTC), was '{value}': {exc}"
        ) from None
    return value


class MetricsSection(BaseModel):
    """Keys of ``live.metrics``: where the run serves its Prometheus metrics."""

    model_config = ConfigDict(extra="forbid")

    port: int = Field(
        ge=0,
        le=65_535,
        strict=True,
        description="TCP port of http://HOST:PORT/metrics (0: any free port, logged).",
    )
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address to bind: 127.0.0.1 (this machine only) unless a Prometheus "
        "server elsewhere scrapes it (0.0.0.0: every interface).",
    )


class ParitySection(BaseModel):
    """Keys of ``live.parity``: the run's parity with its replay, checked while it trades."""

    model_config = ConfigDict(extra="forbid")

    every_bars: int = Field(
        ge=1,
        le=1_000_000,
        strict=True,
        description="Check parity after every this many bars played live, in a process "
        "of its own (a bar never waits for it).",
    )
    window_bars: int = Field(
        ge=1,
        le=1_000_000,
        strict=True,
        description="Report the last this many bars: the gap that arose in them, their "
        "unexplained P&L and their first divergence.",
    )
    max_unexplained: float = Field(
        default=0.0,
        ge=0,
        allow_inf_nan=False,
        description="Alert (event parity) and show DIVERGED in status when the window's "
        "unexplained P&L is larger than this, in the quote currency (beyond parity's "
        "rounding tolerance).",
    )
    on_breach: Literal["alert", "rollback", "halt", "flatten"] = Field(
        default="alert",
        description="What a diverged check does besides its alert: alert (nothing more); "
        "rollback (roll back a canary, or the watch after a promotion, in progress); halt "
        "(that, then the kill switch: cancel every open order and halt until tradeloom "
        "resume); flatten (that, then the kill switch's flatten: halt and close every "
        "position at the next bar, and again at each bar whose exit ended without closing "
        "it, until tradeloom resume). Asked once through the kill switch's mailbox, "
        "journaled as a control_request by parity: a restart does not ask it again.",
    )


class LiveSection(BaseModel):
    """Keys of ``live:``."""

    model_config = ConfigDict(extra="forbid")

    capital: float | None = Field(
        default=None,
        gt=0,
        le=MAX_CASH,
        allow_inf_nan=False,
        description="Quote amount the strategy trades with (live; at most 1e15). Default: the "
        "free quote balance when the run first starts. Paper runs use execution.initial_cash.",
    )
    limits: SkipJsonSchema[Any] = Field(
        default=None,
        description="Moved to risk.limits (the limits apply to backtests too).",
    )
    retrain_cron: str | None = Field(
        default=None,
        description="Also retrain the model at the first bar close after each time this "
        "crontab expression (UTC) fires, on every label known then; scheduled "
        "walk-forward folds train as in the backtest either way.",
    )
    close_delay_seconds: float = Field(
        default=2.0,
        ge=0,
        le=300,
        description="The bar-close job runs this long after each bar's close, giving the "
        "exchange time to publish the bar.",
    )
    poll_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="Between bar closes, look for closed bars (late ones, control requests, "
        "strategy file edits) this often.",
    )
    health_check_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the stale-data alarm and the venue's open orders are checked.",
    )
    stale_after_bars: float | None = Field(
        default=2.0,
        gt=0,
        description="Alarm when the next bar is this many bar lengths late (null: never).",
    )
    stream: Literal["auto", "websocket", "poll"] = Field(
        default="auto",
        description="auto: ccxt.pro websocket where the exchange has one, REST polling "
        "otherwise or while it is down; websocket: the same, an error if the exchange has "
        "none; poll: REST only.",
    )
    report_seconds: float = Field(
        default=60.0,
        ge=0,
        le=86_400,
        description="While the run trades, redraw report.html at most this often (seconds; "
        "0: after every bar); metrics.json, equity.csv and trades.csv are rewritten after "
        "every bar, and the report when the run stops.",
    )
    allocation_deadline_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="With allocation:, each rebalance is solved in a worker thread; past "
        "this many seconds the last weights hold, nothing is traded, and the journal's "
        "allocation_decided row says late (paper and live; a backtest waits for it).",
    )
    position_tolerance: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="At a restart, refuse to trade when the journal's position and the "
        "venue's differ by more than what the core counts as flat (one lot step, or what "
        "execution.min_notional buys at the mark, whichever is more) plus this fraction "
        "of the position (default 0; fees charged in the base asset are allowed for).",
    )

    metrics: MetricsSection | None = Field(
        default=None,
        description="Serve Prometheus metrics while the run trades (null: none); see the "
        "operating guide for the list.",
    )
    parity: ParitySection | None = Field(
        default=None,
        description="Check the run's parity with its replay as a backtest every few bars "
        "and alert on unexplained divergence, or act (on_breach) (null: never); see the "
        "going-live guide.",
    )
    alerts: AlertsParams | None = Field(
        default=None,
        description="Send alerts (webhook, Slack, Telegram) on halts, the kill switch, "
        "stale data and other events (null: none).",
    )
    events: list[EventsEntry] | None = Field(
        default=None,
        max_length=20,
        description="Publish every committed journal row to these brokers (NATS JetStream, "
        "Redis Streams, a plugin's), off the bar's path, resuming after the last "
        "acknowledged row (null: none); see the events guide.",
    )

    @field_validator("limits")
    @classmethod
    def _moved(cls, value: Any) -> None:
        if value is not None:
            raise ValueError(
                "the pre-trade limits moved to risk.limits, where backtests apply them too "
                "(a backtest refuses what its paper run refuses): move this section there"
            )
        return None

    @field_validator("retrain_cron")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        return None if value is None else check_crontab(value)
