"""The bars a paper or live run warmed up on, for parity's replay to play first.

A paper or live run steps its features, regimes and risk state through its history
before its first live bar, with no probability (no signal, no order):
`tradeloom.live.tick.session.LiveSession.warm_up`. Its replay does the same only if it plays
those bars first: a regime over 48 bars, a trailing stop's ATR or a volatility target
starts empty on the first live bar otherwise, and the two part for no journaled
reason. The journal keeps each market's warm-up as a ``warm_up`` row (its bar count,
first and last time, SHA-256), not the bars: `history` loads them again from the run's
data source, as a restart does (`tradeloom.live.recovery.restart`), and checks them against
those rows. A history that cannot be loaded (an exchange's cache that lacks it: parity
reads a ``ccxt`` source's cache only, never the exchange), or that is not the one the
run warmed up on, is a note, and the replay starts at the first live bar.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tradeloom.errors import UserError

__all__ = ["history"]

_OHLCV = ["open", "high", "low", "close", "volume"]
_SECRET_KEYS = ("api_key", "secret", "password")
"""A data source's account keys: its bars are public market data."""


def history(
    document: Mapping[str, Any], source: str, warm_ups: Sequence[Any], symbols: Sequence[str]
) -> tuple[pd.DataFrame | None, str]:
    """Return the bars the run warmed up on and '' (or None and why not).

    Args:
        document: The strategy document the run started under.
        source: Its file as the run named it (relative paths resolve beside it).
        warm_ups: The journal's ``warm_up`` rows (one per market: `tradeloom.journal.Row`).
        symbols: The markets the run played, as its ``live_bar`` rows name them.

    Returns:
        ``timestamp``, ``symbol`` and OHLCV, every market's bars up to its warm-up's
        last, in time order; or None and one line saying why they are not replayed.
    """
    if not warm_ups:
        return None, ""
    warm = {str(w.symbol): w.values for w in warm_ups}
    last = max(pd.Timestamp(w["last"]) for w in warm.values())
    try:
        universe = _load(document, source, last)
    except UserError as exc:
        return None, f"its data source cannot give them here: {exc}"
    except Exception as exc:  # an exchange's cache, a plugin's source: any failure is theirs
        return None, f"its data source cannot give them here: {type(exc).__name__}: {exc}"
    if len(symbols) == 1 and len(warm) == 1:
        warm = {symbols[0]: next(iter(warm.values()))}  # one market, whatever it was named
    loaded = {b.symbol: b for b in universe.bars}
    if len(loaded) == 1 and len(symbols) == 1:
        loaded = {symbols[0]: next(iter(loaded.values()))}
    frames = []
    for symbol in symbols:
        w, bars = warm.get(symbol), loaded.get(symbol)
        if w is None or bars is None:
            return None, f"the journal's warm-up or the data source has no {symbol}"
        head = _head(bars, pd.Timestamp(w["last"]))
        if len(head) != w["bars"] or _sha256(head) != w["sha256"]:
            return None, (
                f"its data source's bars of {symbol} up to {pd.Timestamp(w['last']).isoformat()} "
                "are not the ones the run warmed up on (their count or SHA-256 differs)"
            )
        frame = head.frame[_OHLCV].reset_index(names="timestamp")
        frames.append(frame.assign(symbol=symbol))
    found = pd.concat(frames, ignore_index=True).sort_values("timestamp", kind="stable")
    return found[["timestamp", "symbol", *_OHLCV]].reset_index(drop=True), ""


def _load(document: Mapping[str, Any], source: str, last: pd.Timestamp) -> Any:
    """The run's data source's bars (a `tradeloom.domain.Universe`), built alone from the
    document's data section: an exchange's read from its cache only, up to ``last``."""
    from tradeloom.plugins.component import BuildContext
    from tradeloom.schemas import load_strategy
    from tradeloom.schemas.building import build_component
    from tradeloom.schemas.yaml_loader import parse_yaml
    from tradeloom.time.timeframes import parse_timeframe

    copied: dict[str, Any] = json.loads(json.dumps(dict(document)))
    data = copied.get("data") or {}
    for key in _SECRET_KEYS:
        data.pop(key, None)
    if data.get("kind") == "ccxt":  # never the exchange: what the run cached of it
        step = pd.Timedelta(seconds=parse_timeframe(str(data.get("timeframe"))))
        end = last + step
        if data.get("end") is not None:
            given = pd.Timestamp(data["end"])
            end = min(end, given.tz_localize("UTC") if given.tz is None else given)
        data |= {"offline": True, "end": end.isoformat()}
    path = Path(source or "strategy.yaml").absolute()
    config, _ = load_strategy(path, (), document=parse_yaml(json.dumps(copied), str(path)))
    ctx = BuildContext(strategy_name=config.name, strategy_dir=path.parent, seed=config.seed)
    built, problems = build_component(config.data, ctx, config.locate)
    if built is None:
        raise UserError("; ".join(map(str, problems)) or "it was not built")
    return built.load_universe()  # type: ignore[attr-defined]


def _head(bars: Any, last: pd.Timestamp) -> Any:
    from tradeloom.domain import Bars

    frame = bars.frame.loc[bars.frame.index <= last]
    return Bars(
        frame, bars.symbol, bars.timeframe, bars.timeframe_seconds, documents=bars.documents
    )


def _sha256(bars: Any) -> str:
    from tradeloom.live.tick.history import history_sha256

    return history_sha256(bars)
