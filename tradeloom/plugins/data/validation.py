"""Check raw OHLCV rows and turn them into validated `Bars`, rejecting or repairing.

Every data source ends here. The checks run in a fixed order and a row is blamed on
the first problem it has, so the counts of the issues add up to the rows dropped:

1. ``missing_values``: NaN (or infinity) in open, high, low, close or volume.
2. ``non_positive_price``: a price <= 0.
3. ``out_of_range``: a price above `tradeloom.bounds.MAX_PRICE` (1e12) or a volume above
   `tradeloom.bounds.MAX_VOLUME` (1e18): a corrupt row, whose size would also swamp
   every sum and ratio computed over the bars.
4. ``high_below_low``: high < low.
5. ``open_close_outside_range``: open or close outside [low, high].
6. ``non_positive_volume``: volume <= 0.
7. ``duplicate_timestamp``: a timestamp seen in an earlier row (the first is kept).
8. ``unsorted``: a timestamp earlier than the row before it (repair sorts the rows).
9. ``gap``: bars missing between two consecutive bars, where the trading calendar
   (``data.calendar``, `tradeloom.time.calendars`) says the market was open: a weekend, a
   night or a holiday of a market that closes is not a gap.

Checks 1-6 look at one row each and are the data contract's definition of a sound bar
(`tradeloom.plugins.protocols_bars`, re-exported here): a live tick holds its bars to
them too.

Under ``reject`` any problem raises `DataValidationError`, one line per kind. Under
``repair`` rows with problems 1-7 are dropped, the rows are sorted, and each kind
is reported as a `DataIssue` in ``Bars.repaired``. Gaps cannot be repaired by
dropping rows: under ``repair`` they are kept and reported in ``Bars.gaps``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tradeloom.domain import OHLCV, Bars, DataIssue
from tradeloom.errors import DataError
from tradeloom.plugins.protocols_bars import row_problems, sound_bars, sound_columns, unsound_bars
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.time.calendars import CRYPTO, TradingCalendar
from tradeloom.time.timeframes import format_timestamp

__all__ = [
    "REPAIR",
    "DataValidationError",
    "ValidationPolicy",
    "find_columns",
    "row_problems",
    "rows_line",
    "sound_bars",
    "sound_columns",
    "unsound_bars",
    "validate_bars",
]

ValidationPolicy = Literal["reject", "repair"]
"""What to do with bad rows: ``reject`` raises, ``repair`` drops them and reports."""

_SHOWN_ROWS = 3
REPAIR = "set data.validation: repair"
"""The remedy every refusal of the ``reject`` policy names."""
_REPAIR = REPAIR


def rows_line(
    source: str,
    bad: np.ndarray,
    stamps: np.ndarray,
    rows: np.ndarray,
    row_label: str,
    what: str,
    fix: str,
) -> str:
    """Return the one line that refuses the rows of ``source`` where ``bad`` is set: how
    many, the first one's time, up to three of their row (or line) numbers, and ``fix``,
    the remedy (``{them}`` in it reads "it" or "them")."""
    positions = np.flatnonzero(bad)
    count = len(positions)
    shown = ", ".join(str(int(r)) for r in rows[positions[:_SHOWN_ROWS]])
    more = ", ..." if count > _SHOWN_ROWS else ""
    noun = row_label if count == 1 else row_label + "s"
    has = "row has" if count == 1 else "rows have"
    remedy = fix.format(them="it" if count == 1 else "them")
    first = format_timestamp(int(stamps[positions[0]]))
    return f"{source}: {count} {has} {what} (first at {first}, {noun} {shown}{more}); {remedy}"


def find_columns(raw: pd.DataFrame, wanted: Mapping[str, str], source: str) -> dict[str, Any]:
    """Return the column of ``raw`` each role of ``wanted`` names (``{role: name}``),
    matched in any case and ignoring spaces around names, by role.

    Raises:
        DataError: A column is missing: ``<source>: no column 'name' (role); found ...``.
    """
    by_name = {str(c).strip().lower(): c for c in raw.columns}
    found: dict[str, Any] = {}
    for role, name in wanted.items():
        column = by_name.get(name.strip().lower())
        if column is None:
            present = ", ".join(str(c) for c in raw.columns) or "none"
            raise DataError(f"{source}: no column '{name}' ({role}); found {present}")
        found[role] = column
    return found


class DataValidationError(DataError):
    """Market data with one or more kinds of problem, one line per kind.

    Args:
        lines: One message per problem, each naming the source.
        issues: The same problems as `DataIssue` values (empty for problems found
            before validation, such as an unparsable timestamp).
    """

    def __init__(self, lines: Sequence[str], issues: Sequence[DataIssue] = ()) -> None:
        self.problem_lines = list(lines)
        self.issues = tuple(issues)
        super().__init__("\n".join(self.problem_lines))

    def lines(self) -> list[str]:
        """Return one line per kind of problem."""
        return list(self.problem_lines)


@dataclass(frozen=True)
class _Finding:
    code: str
    positions: np.ndarray  # positions in the input frame, in file order
    description: str  # "3 rows have high < low"
    remedy: str  # "drop {them}": {them} becomes "it" for one row


def validate_bars(
    frame: pd.DataFrame,
    *,
    source: str,
    symbol: str,
    timeframe: str,
    timeframe_seconds: int,
    policy: ValidationPolicy,
    row_numbers: Sequence[int] | np.ndarray | None = None,
    row_label: str = "row",
    calendar: TradingCalendar = CRYPTO,
) -> Bars:
    """Check raw bars and return them validated, or raise naming every kind of problem.

    Args:
        frame: One row per bar in source order, indexed by UTC timestamps (a
            ``DatetimeIndex``, maybe unsorted or repeated), with float columns ``open
            high low close volume`` and any extra columns, which are kept as they are.
        source: The file or source, as named in messages (e.g. an absolute path).
        symbol: The market symbol for the `Bars`.
        timeframe: The timeframe as written (``1h``).
        timeframe_seconds: Its length in seconds; a longer step between bars is a gap.
        policy: ``reject`` or ``repair``.
        row_numbers: The number of each row as the user sees it in the source (the
            line number for CSV); defaults to 1, 2, 3...
        row_label: What a row number is called in messages: ``row`` or ``line``.
        calendar: When the market trades; bars are expected only then (default: always).

    Returns:
        The bars, sorted and unique, with issues repaired (and gaps) reported.

    Raises:
        DataValidationError: Under ``reject``, any problem; under ``repair``, no rows
            left after dropping the bad ones. Also for an empty frame.
    """
    if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
        raise TypeError("validate_bars needs a frame indexed by a tz-aware DatetimeIndex")
    missing = [c for c in OHLCV if c not in frame.columns]
    if missing:
        raise TypeError(f"validate_bars needs columns {', '.join(missing)}")
    n = len(frame)
    if n == 0:
        raise DataValidationError([f"data: {source}: no rows"])
    rows = np.arange(1, n + 1) if row_numbers is None else np.asarray(row_numbers, dtype=np.int64)
    if len(rows) != n:
        raise ValueError(f"row_numbers has {len(rows)} entries for {n} rows")

    utc = frame.index.tz_convert("UTC")
    stamps = (utc if utc.unit == "ns" else utc.as_unit("ns")).asi8  # read, never written
    values = {c: _floats(frame[c]) for c in OHLCV}
    steps = np.diff(stamps)
    # sorted and unique (most data): no row repeats or goes back, nothing to sort
    increasing = bool((steps > 0).all())
    keep = np.ones(n, dtype=bool)
    findings: list[_Finding] = []

    def blame(
        code: str, bad: np.ndarray, what: str, remedy: str = f"drop {{them}} or {_REPAIR}"
    ) -> None:
        bad = bad & keep
        if bad.any():
            positions = np.flatnonzero(bad)
            findings.append(_Finding(code, positions, _rows_have(len(positions), what), remedy))
            keep[bad] = False

    if not sound_columns(values):  # (most data is: no row to blame)
        for code, bad, what in row_problems(values):
            blame(code, bad, what)

    if not increasing:
        _order_problems(stamps, keep, blame, findings)

    step = int(timeframe_seconds) * 1_000_000_000
    if policy == "reject":
        # Gaps as they are in the source: bad values do not make a gap, missing bars do.
        order = np.arange(n) if increasing else np.unique(stamps, return_index=True)[1]
    else:
        kept = np.flatnonzero(keep)
        order = kept if increasing else kept[np.argsort(stamps[kept], kind="stable")]
    # a bar every step (most data): no bar between two bars, whatever the calendar
    whole = policy == "reject" or bool(keep.all())  # the gaps are over every row
    regular = increasing and whole and bool((steps == step).all())
    gap_finding, gap_issue = (
        (None, None)
        if regular
        else _gaps(stamps, rows, order, step, timeframe, row_label, calendar)
    )

    issues = [_issue(f, stamps, rows) for f in findings]
    if policy == "reject":
        lines = [_line(source, f, stamps, rows, row_label) for f in findings]
        if gap_finding is not None and gap_issue is not None:
            lines.append(f"data: {source}: {gap_finding}")
            issues.append(gap_issue)
        if lines:
            raise DataValidationError(lines, issues)

    taken: np.ndarray | slice = slice(None)  # sorted, nothing dropped: the rows as they are
    if not (increasing and keep.all()):
        kept = np.flatnonzero(keep)
        if len(kept) == 0:
            dropped = n
            raise DataValidationError(
                [
                    f"data: {source}: no rows left after dropping {dropped} bad "
                    f"{_plural(dropped, 'row')} under data.validation: repair"
                ],
                issues,
            )
        order = kept[np.argsort(stamps[kept], kind="stable")]
        # sorted with nothing dropped: each column copied once (by the frame) rather
        # than taken row by row first
        if len(order) < n or not (np.diff(order) == 1).all():
            taken = order
    index = pd.DatetimeIndex(stamps[taken], name="timestamp", dtype=_UTC, copy=True)
    clean = pd.DataFrame({c: values[c][taken] for c in OHLCV}, index=index)
    for column in frame.columns:
        if column not in OHLCV:
            clean[column] = np.array(frame[column].to_numpy()[taken])  # its own copy
    return Bars(
        frame=clean,
        symbol=symbol,
        timeframe=timeframe,
        timeframe_seconds=int(timeframe_seconds),
        repaired=tuple(issues),
        gaps=() if gap_issue is None else (gap_issue,),
        calendar=calendar,
    )


_UTC = "datetime64[ns, UTC]"
"""The validated bars' times: UTC nanoseconds (an index of them made as such, not
localized from naive ones, a second pass over them)."""


def _floats(column: pd.Series) -> np.ndarray:
    """Return a column as float64 values, NaN where none (a float64 column as it is)."""
    if column.dtype == np.float64:  # numpy's (not pandas' nullable Float64)
        return np.asarray(column.to_numpy())
    return np.asarray(column.to_numpy(dtype=np.float64, na_value=np.nan))


def _order_problems(
    stamps: np.ndarray,
    keep: np.ndarray,
    blame: Callable[..., None],
    findings: list[_Finding],
) -> None:
    """Blame the rows that repeat an earlier row's timestamp, then find those earlier
    than the row before them (``unsorted``: a remedy, not a drop)."""
    n = len(stamps)
    kept = np.flatnonzero(keep)
    repeated = np.zeros(n, dtype=bool)
    repeated[kept[pd.Index(stamps[kept]).duplicated(keep="first")]] = True
    blame(
        "duplicate_timestamp",
        repeated,
        "the timestamp of an earlier row",
        f"drop {{them}} or {_REPAIR} (keeps the first)",
    )

    kept = np.flatnonzero(keep)
    backwards = np.zeros(n, dtype=bool)
    backwards[kept[1:][np.diff(stamps[kept]) < 0]] = True
    if backwards.any():
        positions = np.flatnonzero(backwards)
        what = "a timestamp earlier than the row before them"
        if len(positions) == 1:
            what = "a timestamp earlier than the row before it"
        findings.append(
            _Finding(
                "unsorted",
                positions,
                _rows_have(len(positions), what),
                f"sort the rows by timestamp or {_REPAIR}",
            )
        )


def _gaps(
    stamps: np.ndarray,
    rows: np.ndarray,
    order: np.ndarray,
    step: int,
    timeframe: str,
    row_label: str,
    calendar: TradingCalendar,
) -> tuple[str | None, DataIssue | None]:
    if len(order) < 2:
        return None, None
    sorted_stamps = stamps[order]
    expected = calendar.missing(sorted_stamps, step)
    where = np.flatnonzero(expected > 0)
    if len(where) == 0:
        return None, None
    missing = int(expected[where].sum())
    first_missing = format_timestamp(_first_open(calendar, int(sorted_stamps[where[0]]), step))
    after = rows[order[where + 1]]
    count = len(where)
    shown = _row_list(after, f"before {row_label}")
    text = (
        f"{count} {_plural(count, 'gap')} in the {timeframe} bars, {missing} "
        f"{_plural(missing, 'bar')} missing (first at {first_missing}, {shown}); fill "
        f"{'it' if count == 1 else 'them'} or set data.validation: repair to keep "
        f"{'it' if count == 1 else 'them'}"
    )
    issue = DataIssue("gap", count, first_missing, tuple(int(r) for r in after))
    return text, issue


def _first_open(calendar: TradingCalendar, after: int, step: int) -> int:
    """Return the first bar time after ``after`` that the calendar expects."""
    slot = after + step
    while not calendar.expected(np.array([slot], dtype=np.int64), step)[0]:
        slot += step
    return slot


def _issue(finding: _Finding, stamps: np.ndarray, rows: np.ndarray) -> DataIssue:
    positions = finding.positions
    return DataIssue(
        code=finding.code,
        count=len(positions),
        first=format_timestamp(int(stamps[positions[0]])),
        rows=tuple(int(r) for r in rows[positions]),
    )


def _line(
    source: str, finding: _Finding, stamps: np.ndarray, rows: np.ndarray, row_label: str
) -> str:
    first = format_timestamp(int(stamps[finding.positions[0]]))
    shown = _row_list(rows[finding.positions], row_label)
    one = len(finding.positions) == 1
    where = f"at {first}" if one else f"first at {first}"
    remedy = finding.remedy.format(them="it" if one else "them")
    return f"data: {source}: {finding.description} ({where}, {shown}); {remedy}"


def _rows_have(count: int, what: str) -> str:
    return f"{count} {_plural(count, 'row')} {'has' if count == 1 else 'have'} {what}"


def _row_list(numbers: np.ndarray, label: str) -> str:
    head = ", ".join(str(int(r)) for r in numbers[:_SHOWN_ROWS])
    more = ", ..." if len(numbers) > _SHOWN_ROWS else ""
    words = label.rsplit(" ", 1)
    noun = words[-1] if len(numbers) == 1 else words[-1] + "s"
    prefix = f"{words[0]} " if len(words) == 2 else ""
    return f"{prefix}{noun} {head}{more}"


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"
