"""``equity.csv`` of a paper or live run, appended bar by bar instead of rewritten.

A live run's equity curve only grows: a bar's row, once written, does not change. So
each refresh appends the rows of the bars since the last one (one ``write`` of the
formatted lines) instead of rewriting a file that grows with the run. The whole file
is written again, atomically (`tradeloom.reporting.outputs.write_frame`), when there
is no file yet from this writer (a start or a restart), when the columns changed, when
an earlier row is not the one written (a fill booked late moved it), and after an
append that failed (a full disk may have left part of a line).

A reader that opens the file during an append may see the new rows in part; the rows
written before are never touched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.reporting.outputs import DATE_FORMAT, write_frame

__all__ = ["EquityFile"]


class EquityFile:
    """Keep ``run_dir/name`` equal to the frames handed to `write`, appending where it can.

    Args:
        run_dir: The run directory.
        name: The file's name.
    """

    def __init__(self, run_dir: Path, name: str = "equity.csv") -> None:
        self.run_dir = run_dir
        self.name = name
        self._columns: list[str] | None = None
        self._values: npt.NDArray[np.float64] | None = None
        """The numeric cells written so far (NaN where a cell is not a number)."""
        self._times: npt.NDArray[np.int64] | None = None
        self.appends = 0
        self.rewrites = 0

    def write(self, frame: pd.DataFrame) -> None:
        """Make the file hold ``frame`` (its first column the bars' UTC timestamps).

        Raises:
            OSError: The file could not be written (the next call rewrites it whole).
        """
        # copies: the caller's frame may share memory with what it changes later
        times = np.array(frame.iloc[:, 0].to_numpy("datetime64[ns]").view(np.int64))
        values = np.array(frame.iloc[:, 1:].to_numpy(np.float64, na_value=np.nan))
        columns = list(frame.columns)
        if self._appendable(columns, times, values):
            assert self._values is not None
            new = frame.iloc[len(self._values) :]
            if len(new):
                text = new.to_csv(None, index=False, header=False, date_format=DATE_FORMAT)
                self._forget()  # until the append is complete
                with (self.run_dir / self.name).open("a", encoding="utf-8") as file:
                    file.write(text)
                self.appends += 1
        else:
            self._forget()
            write_frame(self.run_dir, self.name, frame)
            self.rewrites += 1
        self._columns, self._times, self._values = columns, times, values

    def _appendable(
        self, columns: list[str], times: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
    ) -> bool:
        old = self._values
        if old is None or self._times is None or columns != self._columns or len(old) > len(values):
            return False
        n = len(old)
        if not (self.run_dir / self.name).is_file():
            return False
        return bool(
            np.array_equal(self._times, times[:n])
            and np.array_equal(old, values[:n], equal_nan=True)
        )

    def _forget(self) -> None:
        self._columns = self._times = self._values = None
