"""The journal's events: one frozen dataclass per kind, in a module per family.

Every event carries the header of `Event`: the bar it belongs to, that bar's time
(UTC), the market symbol ('' where none) and the correlation id (the bar of the
decision it belongs to; logs print it as ``bar-N``). Each kind adds its own fields.

Where a value object of `tradeloom.domain` already holds a kind's fields (a fill,
an order, a signal...), the event *is* that object: ``FillEvent`` subclasses
`tradeloom.domain.Fill` and `Event`, so its fields are written once, in the domain,
and a consumer that wants a `Fill` can use the event as one. Such events take their
``bar`` and ``timestamp`` from the domain object.

A field's Python type chooses its column (`tradeloom.journal.schema`): ``int``,
``bool``, ``float``, ``str``, ``str | None``, ``pandas.Timestamp``, and anything
else (mappings, lists, a strategy document) as a JSON column. The header values
``bar = -1``, ``timestamp = NaT`` and ``correlation_id = -1`` mean "none".

The families, each a module: the run (`run`), the engine's decisions (`decisions`),
monitoring and models (`models`), what changes how a live run trades (`control`), a live
run's venue and its restart (`venues`), allocation (`allocation`), a model's lifecycle
(`lifecycle`), the documents a text feature could not score (`documents`), the commands
refused to a sender (`refusals`); the base, the
registry and who reads each kind: `base`. The families are imported here in the order
the journal's tables are made, so `KINDS` holds every kind (in one order) whichever of
them is imported first.
"""

from __future__ import annotations

from typing import Any

# isort: off
# the families in the order their tables are made: `KINDS` is that order
from tradeloom.journal.events import base, run, decisions, models, control, venues
from tradeloom.journal.events import allocation, lifecycle, documents, refusals
from tradeloom.journal.events.base import *  # noqa: F403
from tradeloom.journal.events.run import *  # noqa: F403
from tradeloom.journal.events.decisions import *  # noqa: F403
from tradeloom.journal.events.models import *  # noqa: F403
from tradeloom.journal.events.control import *  # noqa: F403
from tradeloom.journal.events.venues import *  # noqa: F403
from tradeloom.journal.events.allocation import *  # noqa: F403
from tradeloom.journal.events.lifecycle import *  # noqa: F403
from tradeloom.journal.events.documents import *  # noqa: F403
from tradeloom.journal.events.refusals import *  # noqa: F403

# isort: on

__all__ = [  # and ``NO_TIME``, read on first use (`__getattr__`)
    *base.__all__,
    *run.__all__,
    *decisions.__all__,
    *models.__all__,
    *control.__all__,
    *venues.__all__,
    *allocation.__all__,
    *lifecycle.__all__,
    *documents.__all__,
    *refusals.__all__,
]


def __getattr__(name: str) -> Any:
    # PEP 562: ``NO_TIME`` is pandas' NaT, read on first use (`tradeloom.journal.events.base`)
    if name == "NO_TIME":
        from tradeloom.journal.events import base

        return base.NO_TIME
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
