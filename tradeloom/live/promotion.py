"""Promote a challenger whose gate passed: its model becomes the champion's by a swap.

The challenger's ``model`` section (a saved model: ``tradeloom validate`` refuses a gate
on one that trains in the run) goes through the path every swap takes
(`tradeloom.live.model_swap`): built against the strategy in force and checked, its file
kept in ``RUN_DIR/swapped/``, swapped into the session and journaled as
``model_swapped`` by ``gate`` (request ``challenger:NAME``, the reason naming the gate's
figures), in the commit of the gate's ``promote`` row. Its shadow then stops. A swap
refused there (the file changed or went missing since the run started) is journaled
(``model_swap_refused``) and the challenger dropped (``challenger_failed``): the champion
trades on.

A restart runs the model of the journal's last ``model_swapped`` row and does not start
the promoted challenger again (`tradeloom.live.challengers`): the journal's rows are the
truth, so a kill -9 at any moment promotes once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tradeloom.live.challengers import ShadowBooks, drop, promotion_request
from tradeloom.live.model_swap import (
    SwapRefused,
    build_swap,
    in_force_sha256,
    journal_refusal,
    journal_swap,
    keep_file,
)

if TYPE_CHECKING:
    from tradeloom.engine.events import Recorder
    from tradeloom.live.services import RunFiles
    from tradeloom.live.session import LiveSession
    from tradeloom.plugins.manager import Plugins

__all__ = ["promote_passed"]


def promote_passed(
    books: ShadowBooks,
    files: RunFiles,
    plugins: Plugins,
    session: LiveSession,
    recorder: Recorder,
) -> None:
    """Promote the first challenger of ``books`` whose gate passed (one per bar: the
    others' gates read the new champion from the next bar), then stop its shadow."""
    names = books.promotable()
    if not names:
        return
    name = names[0]
    section = _model_section(files.config.document, name)
    swap = build_swap(files.config, plugins, session, section)
    if not isinstance(swap, SwapRefused) and swap.sha256 == in_force_sha256(session):
        swap = SwapRefused(swap.source, ("model: it is the model in force already",))
    kept = swap if isinstance(swap, SwapRefused) else keep_file(files.run_dir, swap)
    asked = {"by": "gate", "reason": f"challenger {name} passed its gate"}
    request = promotion_request(name)
    bar = len(session.history) - 1
    if isinstance(kept, SwapRefused):
        journal_refusal(recorder, bar, kept, request=request, **asked)
        drop(books.journal, name, RuntimeError(kept.describe()), bar=bar)
    else:
        assert not isinstance(swap, SwapRefused)
        journal_swap(recorder, session, swap, kept, request=request, **asked)
    books.retire(name)
    books.journal.flush()


def _model_section(document: Mapping[str, Any], name: str) -> dict[str, Any]:
    entry = next(e for e in document.get("challengers") or () if e.get("name") == name)
    return {k: v for k, v in dict(entry["model"]).items() if k != "kind"}
