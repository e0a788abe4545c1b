"""The run folders a console serves, read-only, through tradeloom's own readers.

A run's id is ``<root>/<path>``: the index of the served root (``RUNS_DIR``, in the
order given) and the run folder's path below it (``0/btc_rf-paper-simulated``,
``1/grid-20240101/variant-003``); in a URL each of its folders is escaped
(`tradeloom.files.addresses.url_path`: ``0/paper1#x`` is ``0/paper1%23x``). `RunIndex.resolve`
takes nothing else: an empty, absolute or dotted part (``..``, ``.``, a hidden name),
a NUL (or, where it separates folders, a backslash), a folder whose real path
(symlinks followed) leaves its root, or one without a journal is refused with
`UnknownRun`, as is anything that is not a run the scan found.

Whatever a page is told passes `RunIndex.shown`: the server's paths become run ids.

What a run is doing comes from `tradeloom.engine.status.RunFollower`, the reader behind
``tradeloom status``, one per run, kept: a run whose journal grows is read for its new
rows only (a journal replaced or cut is read again from its first row, and the run's
answer says so in ``notice``). Each run's answer is kept until its journal (or its
``live.pid``) changes, or for `STALE_AFTER` seconds (the ages it reports move with the
clock).
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tradeloom.engine.status import RunFollower, RunReading
from tradeloom.engine.status_text import canary_line, watch_line
from tradeloom.errors import UserError
from tradeloom.files.reading import UnreadableFile, read_json, read_yaml
from tradeloom.journal.events import kinds_read_by
from tradeloom.reporting.monitor_labels import split_column
from tradeloom.reporting.outputs import json_safe
from tradeloom.reporting.refusals import RefusalTable, exits_warning
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.redaction import redact

if TYPE_CHECKING:
    from tradeloom.live.lifecycle.promotion_stage import PromotionChoices

__all__ = ["SECRET_KEY", "RunIndex", "RunRef", "UnknownRun", "mask_secrets"]

MAX_ID = 4096
"""The longest run id taken (a path's length on Linux, PATH_MAX)."""
STALE_AFTER = 2.0
"""Seconds a run's answer is kept while its files do not change."""
SCAN_DEPTH = 3
"""How deep below a root run folders are looked for (a sweep's variants are two down)."""
CURVE_POINTS = 1500
"""At most this many points of an equity curve go to a page (every n-th, the last kept)."""
RECENT = 20
"""How many of the last fills, rejections and health changes a run page shows."""
MONITORS_SHOWN = 400
"""At most this many monitors (of every symbol) on a run page."""
FIGURES_SHOWN = 40
"""At most this many figures of one monitor (a drift monitor's PSI per feature)."""

_JOURNALS = ("journal.sqlite", "journal.json")
_WATCHED = ("journal.sqlite", "journal.sqlite-wal", "journal.json", "live.pid", "metrics.json")
"""A run's files whose change is a change of what its page shows (metrics.json: its
monitors' figures, rewritten after each bar's journal commit)."""
_PATH_END = r"(?=/|$|[\s'\":;,)\]])"
"""Where a path named in a message ends: at a folder's separator, or what follows it."""
_log = logger("tradeloom.console")
SECRET_KEY = re.compile(
    r"(api_?key|secret|password|passphrase|token|private_?key|credential|auth)", re.I
)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/:@\s]*:)[^@/\s]+@", re.I)


class UnknownRun(LookupError):
    """A run id that is not a run folder under a served root."""


@dataclass(frozen=True)
class RunRef:
    """A run folder the console serves.

    Attributes:
        id: ``<root>/<path>``.
        root: The served root's index.
        path: The run folder (its real path, inside its root).
        named: False for a folder whose path is not UTF-8, which no URL can name: its
            id shows the bytes as ``\\xff``, its row says so, and nothing reads it.
    """

    id: str
    root: int
    path: Path
    named: bool = True


@dataclass
class _Cached:
    signature: tuple[Any, ...]
    at: float
    reading: RunReading
    summary: dict[str, Any] | None = None


_PROMOTION_KINDS = kinds_read_by("lifecycle")
"""The journal's kinds `promotion_choices` reads (a run's lifecycle: the strategy in force,
the swaps, the canaries, the challengers dropped): a run's choices change only with a row
of one."""


class RunIndex:
    """Find, resolve and read the runs below ``roots``.

    Args:
        roots: The folders served (``RUNS_DIR...``).
    """

    def __init__(self, roots: list[Path]) -> None:
        self.roots = [root.resolve() for root in roots]
        self._cache: dict[Path, _Cached] = {}
        self._followers: dict[Path, RunFollower] = {}
        self._notices: dict[Path, str] = {}
        self._promotions: dict[Path, tuple[tuple[Any, ...], PromotionChoices]] = {}
        self._failures: set[tuple[Path, str]] = set()
        self._lock = threading.Lock()

    # --- ids ------------------------------------------------------------------------

    def scan(self) -> list[RunRef]:
        """Return every run folder below the roots, by id."""
        found: list[RunRef] = []
        for index, root in enumerate(self.roots):
            self._walk(index, root, root, 0, found)
        there = {ref.path for ref in found}
        with self._lock:  # what was kept of runs removed since goes with them
            for kept in (self._cache, self._followers, self._notices, self._promotions):
                for path in [p for p in kept if p not in there]:
                    del kept[path]
        return sorted(found, key=lambda ref: ref.id)

    def _walk(self, index: int, root: Path, folder: Path, depth: int, found: list[RunRef]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            path = Path(entry.path)
            if entry.is_symlink() and not _inside(path.resolve(), root):
                continue
            if any(os.path.lexists(path / name) for name in _JOURNALS):
                rel = path.relative_to(root).as_posix()
                shown = os.fsencode(rel).decode("utf-8", "backslashreplace")
                found.append(RunRef(f"{index}/{shown}", index, path.resolve(), shown == rel))
            elif depth + 1 < SCAN_DEPTH:
                self._walk(index, root, path, depth + 1, found)

    def resolve(self, run_id: str) -> RunRef:
        """Return the run of ``run_id``.

        Raises:
            UnknownRun: Not ``<root>/<path>`` of a run folder under a served root.
        """
        if len(run_id) > MAX_ID or "\x00" in run_id or (os.altsep and os.altsep in run_id):
            raise UnknownRun(run_id)
        head, _, rest = run_id.partition("/")
        if not head.isdigit() or not rest or rest.startswith("/"):
            raise UnknownRun(run_id)
        index = int(head)
        if index >= len(self.roots):
            raise UnknownRun(run_id)
        parts = rest.split("/")
        if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
            raise UnknownRun(run_id)
        root = self.roots[index]
        real = (root / Path(*parts)).resolve()
        if not _inside(real, root) or real == root or not real.is_dir():
            raise UnknownRun(run_id)
        if not any(os.path.lexists(real / name) for name in _JOURNALS):
            raise UnknownRun(run_id)
        return RunRef(f"{index}/{'/'.join(parts)}", index, real)

    # --- what a page may be told -------------------------------------------------------

    def shown(self, text: str, *refs: RunRef) -> str:
        """Return ``text`` as a page or an answer may show it: secrets redacted, each of
        ``refs``' folder named by its run id, and any other path below a served root by
        ``<root>/<path>`` (the server's paths are not the browser's business)."""
        text = redact(text)
        for ref in refs:
            text = text.replace(str(ref.path), ref.id)
        # the longest first: a root inside another is replaced by its own index; a root
        # is a whole path (/srv/runs in /srv/runs2 is not)
        for index, root in sorted(enumerate(self.roots), key=lambda r: -len(str(r[1]))):
            text = re.sub(re.escape(str(root)) + _PATH_END, str(index), text)
        return text

    def failure(self, exc: BaseException, ref: RunRef) -> str:
        """Return why ``ref`` could not be read, as `shown`; an unexpected error is
        logged whole and named by its type alone (its text may hold any path)."""
        if isinstance(exc, UserError | sqlite3.Error | OSError):
            return self.shown(_os_text(exc), ref)
        seen = (ref.path, f"{type(exc).__name__}: {exc}")
        if seen not in self._failures:  # once, not at every poll of the runs page
            self._failures.add(seen)
            _log.error("console_read_failed", run=ref.id, exc_info=exc)
        return (
            f"{ref.id} cannot be read just now ({type(exc).__name__}; the console's log "
            "has the details)"
        )

    # --- reading ----------------------------------------------------------------------

    def read(self, ref: RunRef) -> RunReading:
        """Return the run as `RunFollower` reads it, kept while its files do not change (and,
        while a process runs it, for `STALE_AFTER` seconds: its ages move)."""
        return self._entry(ref).reading

    def _entry(self, ref: RunRef) -> _Cached:
        signature = _signature(ref.path)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(ref.path)
        if cached is not None and cached.signature == signature:
            running = cached.reading.status.process == "running"
            if not running or now - cached.at < STALE_AFTER:
                return cached
        with self._lock:
            follower = self._followers.setdefault(ref.path, RunFollower(ref.path))
        reading = follower.read()
        if reading.restarted is not None:
            notice = self.shown(reading.restarted, ref)
            _log.warning("console_journal_restarted", run=ref.id, why=notice)
            now = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
            self._notices[ref.path] = f"{now}: {notice}"
        # the files as the read left them: the last reader of a stopped run's journal
        # checkpoints its write-ahead log (a change of the files, not of the run); a run
        # written meanwhile is read again when it next writes (or, running, in seconds)
        entry = _Cached(_signature(ref.path), now, reading)
        with self._lock:
            self._cache[ref.path] = entry
        return entry

    def signature(self, ref: RunRef) -> tuple[Any, ...]:
        """Return what changes when the run's journal or process changes (cheap: stats)."""
        return _signature(ref.path)

    def summary(self, ref: RunRef) -> dict[str, Any]:
        """Return the runs page's row of one run (an unreadable run: its error)."""
        if not ref.named:
            return {
                "id": ref.id,
                "name": ref.id.rsplit("/", 1)[-1],
                "error": "the folder's name is not UTF-8, and no URL can name it: rename it "
                "to see it here (tradeloom's commands read it as it is)",
            }
        try:
            entry = self._entry(ref)
        except Exception as exc:  # a damaged journal is a row that says so, not a 500
            return {"id": ref.id, "name": ref.path.name, "error": self.failure(exc, ref)}
        if entry.summary is None:
            entry.summary = self._summary(ref, entry.reading)
        return entry.summary

    def _summary(self, ref: RunRef, reading: RunReading) -> dict[str, Any]:
        status, curve = reading.status, reading.curve
        drawdown, max_drawdown = _drawdowns(curve)
        summary: dict[str, Any] = mask_secrets(
            json_safe(
                {
                    "id": ref.id,
                    "name": ref.path.name,
                    "strategy": status.strategy,
                    "mode": status.mode,
                    "process": status.process,
                    "state": status.state,
                    "state_code": status.state_code,
                    "equity": status.equity,
                    "pnl": None
                    if status.equity is None or status.capital is None
                    else status.equity - status.capital,
                    "total_return": status.total_return,
                    "drawdown": drawdown,
                    "max_drawdown": max_drawdown,
                    "health": status.health,
                    "health_worst": status.health_worst,
                    "last_bar": status.last_bar,
                    "last_bar_time": status.last_bar_time,
                    "last_bar_age_seconds": status.last_bar_age_seconds,
                    "stale": status.stale,
                    "staleness": status.staleness,
                    "error": None,
                }
            )
        )
        return summary

    def detail(self, ref: RunRef) -> dict[str, Any]:
        """Return a run page's data: its status, curve, drawdown and recent events."""
        reading = self.read(ref)
        status, curve, frames = reading.status, reading.curve, reading.frames
        shown = _downsample(curve)
        equity = shown["equity"].to_numpy(np.float64)
        peak = np.maximum.accumulate(equity) if len(equity) else equity
        with np.errstate(invalid="ignore", divide="ignore"):
            drawdown = np.where(peak > 0, 1.0 - equity / peak, 0.0)
        drawdown_now, max_drawdown = _drawdowns(curve)
        shown_status = status.to_json()
        shown_status["run_dir"] = ref.id  # the server's paths are not the browser's business
        data = {
            "id": ref.id,
            "name": ref.path.name,
            "status": shown_status,
            "drawdown": drawdown_now,
            "max_drawdown": max_drawdown,
            "orders": _recent(frames["order"], ("id", "side", "quantity", "reason", "kind")),
            "fills": _recent(frames["fill"], ("side", "quantity", "price", "fee", "order_id")),
            "rejections": _recent(frames["rejection"], ("code", "message")),
            "health_changes": _recent(frames["health"], ("monitor", "status", "previous", "value")),
            "monitoring": _monitoring(ref.path, status.monitors),
            "cancellations": _recent(frames["order_cancelled"], ("order_id", "reason")),
            **_refusals(status.refusals),
            "report": (ref.path / "report.html").is_file(),
            "mode": status.mode,
            "controllable": status.mode in ("paper", "live"),
            "promotion": self._promotion(ref, reading),
            "notice": self._notices.get(ref.path),
        }
        answer: dict[str, Any] = mask_secrets(json_safe(data))
        # times and numbers, up to CURVE_POINTS of each: no secret to look for in them
        answer["curve"] = {
            "time": [_iso(t) for t in shown["timestamp"]],
            "equity": _finite(equity),
            "drawdown": _finite(drawdown),
        }
        return answer

    def _promotion(self, ref: RunRef, reading: RunReading) -> dict[str, Any] | None:
        """The run page's promote and rollback buttons, where the API's check of the
        journal would take the request now (`promotion_choices`, read again only when a
        row it reads was added: `_PROMOTION_KINDS`), and the model in force (None: not a
        paper or live run with challengers)."""
        status, frames = reading.status, reading.frames
        if status.mode not in ("paper", "live") or not status.books:
            return None
        key = tuple(len(frames[kind]) for kind in _PROMOTION_KINDS)
        with self._lock:
            kept = self._promotions.get(ref.path)
        if kept is None or kept[0] != key or reading.restarted is not None:
            from tradeloom.live.lifecycle.promotion_stage import promotion_choices

            kept = (key, promotion_choices(ref.path))
            with self._lock:
                self._promotions[ref.path] = kept
        choices = kept[1]
        return {
            "promote": list(choices.promote),
            "rollback": choices.rollback,
            "in_force": self.shown(choices.in_force, ref),
            "canary": None if status.canary is None else canary_line(status.canary),
            "watch": None if status.watch is None else watch_line(status.watch),
        }

    def settings(self, ref: RunRef) -> tuple[dict[str, Any] | None, Path]:
        """Return the run's resolved strategy file (None: none readable) and its path."""
        path = ref.path / "strategy.yaml"
        if path.is_symlink():  # a run writes its own file; a link may point anywhere
            return None, path
        try:
            document = read_yaml(path, "a run's strategy file")
        except (UnreadableFile, OSError):
            return None, path
        return (document if isinstance(document, dict) else None), path


def _refusals(nested: dict[str, dict[str, dict[str, int]]]) -> dict[str, Any]:
    """The run's refusals as rows (`tradeloom.reporting.refusals`, status's table) and the
    warning of its exits refused (None: none was)."""
    table = RefusalTable.from_nested(nested)
    return {"refusals": table.as_rows(), "exits_refused": exits_warning(table)}


def _monitoring(folder: Path, statuses: dict[str, str]) -> list[dict[str, Any]]:
    """Each monitor of each symbol: its health (the journal's last change, else the run's
    ``metrics.json``) and its figures now (``metrics.json``'s ``monitoring``: the rolling
    AUC, each feature's PSI...), which a paper or live run rewrites after every bar."""
    block: dict[str, Any] = {}
    path = folder / "metrics.json"
    if path.is_file() and not path.is_symlink():
        try:
            document = read_json(path, "a run's metrics")
        except (UnreadableFile, OSError):  # mid-rewrite or damaged: the journal's alone
            document = None
        found = document.get("monitoring") if isinstance(document, dict) else None
        block = found if isinstance(found, dict) else {}
    rows = []
    for label in sorted(set(block) | set(statuses))[:MONITORS_SHOWN]:
        found = block.get(label)
        summary: dict[str, Any] = found if isinstance(found, dict) else {}
        name, symbol, _ = split_column(f"{label}.")
        status = statuses.get(label, summary.get("status"))
        figures: dict[str, float | int | None] = {}
        for key, value in summary.items():
            inner = value.items() if isinstance(value, dict) else [("", value)]
            for sub, number in inner:  # numbers, and None where one is not known yet
                if number is None or (
                    isinstance(number, int | float) and not isinstance(number, bool)
                ):
                    figures[f"{key}.{sub}" if sub else key] = number
        rows.append(
            {
                "label": label,
                "monitor": name,
                "symbol": symbol,
                "status": status if isinstance(status, str) else None,
                "figures": dict(list(figures.items())[:FIGURES_SHOWN]),
            }
        )
    return rows


def mask_secrets(value: Any) -> Any:
    """Return ``value`` with every secret-looking field and URL password replaced by ``***``,
    and every registered secret redacted (`tradeloom.runtime.redaction.redact`)."""
    if isinstance(value, dict):
        return {
            k: ("***" if isinstance(k, str) and SECRET_KEY.search(k) and v else mask_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    if isinstance(value, str):
        return redact(_URL_PASSWORD.sub(r"\g<head>***@", value))
    return value


def _os_text(exc: BaseException) -> str:
    """An OSError's text names its file by the path it was given (which `shown` maps)."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _signature(folder: Path) -> tuple[Any, ...]:
    parts: list[Any] = []
    for name in (
        "journal.sqlite",
        "journal.sqlite-wal",
        "journal.json",
        "live.pid",
        "metrics.json",
    ):
        try:
            st = os.stat(folder / name)
        except OSError:
            parts.append(None)
            continue
        parts.append((st.st_mtime_ns, st.st_size))
    return tuple(parts)


def _drawdowns(curve: pd.DataFrame) -> tuple[float | None, float | None]:
    if not len(curve):
        return None, None
    equity = curve["equity"].to_numpy(np.float64)
    peak = np.maximum.accumulate(equity)
    with np.errstate(invalid="ignore", divide="ignore"):
        drawdown = np.where(peak > 0, 1.0 - equity / peak, 0.0)
    now, worst = float(drawdown[-1]), float(np.nanmax(drawdown))
    return (now if math.isfinite(now) else None), (worst if math.isfinite(worst) else None)


def _downsample(curve: pd.DataFrame) -> pd.DataFrame:
    if len(curve) <= CURVE_POINTS:
        return curve
    step = math.ceil(len(curve) / CURVE_POINTS)
    keep = list(range(0, len(curve), step))
    if keep[-1] != len(curve) - 1:
        keep.append(len(curve) - 1)
    return curve.iloc[keep]


def _finite(values: np.ndarray) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values.tolist()]


def _recent(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = frame.tail(RECENT).iloc[::-1]
    # column by column: a frame's to_dict builds a record type at each call (slow)
    values = {c: rows[c].tolist() if c in rows else [None] * len(rows) for c in columns}
    bars, times, symbols = rows["bar"].tolist(), rows["timestamp"].tolist(), rows["symbol"].tolist()
    out = []
    for i in range(len(rows)):
        item = {"bar": int(bars[i]), "time": _iso(times[i]), "symbol": symbols[i]}
        item.update({c: values[c][i] for c in columns})
        out.append(item)
    return out


def _iso(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if pd.isna(stamp):
        return None
    return str(stamp.isoformat())
