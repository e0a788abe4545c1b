"""A restart of a portfolio file's run takes its strategies' ``challengers:`` as a
strategy run alone's restart does (`tradeloom.live.lifecycle.challenger_roster`).

Each strategy's challenger journals its entry when it starts (``challenger_started``'s
``entry``): a restart refuses, in one line each, before anything is journaled, an entry
the run has that changed since (`changed_entries`: its book is one candidate's), or one
that takes the name of a challenger of that strategy the run removed (`reused_names`:
the journal's rows of that name are the old one's book). An entry that left the file
while the run was down is removed, journaled as ``challenger_removed`` (its book ends at
its last ``challenger_bar``), so its name is never started again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradeloom.journal import ChallengerRemoved, journal_path, read_frames
from tradeloom.live.lifecycle.challenger_roster import changed_entries, reused_names
from tradeloom.live.lifecycle.reload import CHALLENGERS

if TYPE_CHECKING:
    from pathlib import Path

    from tradeloom.engine.events import Recorder
    from tradeloom.errors import Problem
    from tradeloom.journal import JournalStore
    from tradeloom.schemas import StrategyConfig

__all__ = ["MemberRoster", "member_roster"]


@dataclass(frozen=True)
class MemberRoster:
    """The challengers of a portfolio file's strategies, by the run's journal.

    Attributes:
        entries: Per strategy, the entry of each challenger it started and did not
            remove, by its name in the strategy's file, in the order they started.
    """

    entries: dict[str, dict[str, dict[str, Any]]]

    def running(self, strategy: str) -> dict[str, Any]:
        """Return a document whose ``challengers:`` are ``strategy``'s challengers the run
        has (what a strategy run alone's last document is to its restart)."""
        return {CHALLENGERS: list(self.entries.get(strategy, {}).values())}

    def problems(self, run_dir: Path, configs: Sequence[StrategyConfig]) -> list[Problem]:
        """Return why a restart of the run with the strategies ``configs`` (the files now)
        is refused: a challenger's entry changed, or a removed one's name taken."""
        problems: list[Problem] = []
        for config in configs:
            running = self.running(config.name)
            problems += changed_entries(running, config)
            if config.challengers:
                problems += reused_names(run_dir, config, running, scope=config.name)
        return problems

    def remove_gone(
        self, config: StrategyConfig, journal: JournalStore, recorder: Recorder, bar: int
    ) -> bool:
        """Journal the removal, at clock bar ``bar``, of each challenger of ``config``'s
        strategy the run has whose entry left its file; return whether any was."""
        now = {c.name for c in config.challengers}
        gone = [name for name in self.entries.get(config.name, {}) if name not in now]
        for name in gone:
            challenger = f"{config.name}/{name}"
            journal.append(ChallengerRemoved(**recorder.at(bar), challenger=challenger))
        return bool(gone)


def member_roster(run_dir: Path) -> MemberRoster:
    """Read the run's ``challenger_started`` and ``challenger_removed`` rows."""
    kinds = ["challenger_started", "challenger_removed"]
    frames = read_frames(journal_path(run_dir), kinds)
    removed = {str(n) for n in frames["challenger_removed"]["challenger"]}
    entries: dict[str, dict[str, dict[str, Any]]] = {}
    for _, row in frames["challenger_started"].iterrows():
        scoped, strategy = str(row["challenger"]), str(row["strategy"])
        if scoped not in removed:
            name = scoped[len(strategy) + 1 :]
            entries.setdefault(strategy, {})[name] = row["entry"]
    return MemberRoster(entries)
