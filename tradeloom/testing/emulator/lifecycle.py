"""What the emulator's servers share: ``with`` starts one and stops it."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["Started"]


class Started:
    """Base of a thing that runs between `start` and `stop`; ``with`` does both."""

    def start(self) -> Self:
        """Start running; return self."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop running."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
