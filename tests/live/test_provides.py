"""`provides` answers as ``isinstance`` with a runtime-checkable protocol, remembered per class."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tradeloom.live.tick.provides import provides
from tradeloom.plugins.protocols import LiveAnomalyGate, LiveModel
from tradeloom.plugins.protocols_symbols import ModelOverSymbols


@runtime_checkable
class _Scores(Protocol):
    def score(self, row: float) -> float: ...


class _Scorer:
    def score(self, row: float) -> float:
        return row


class _Plain:
    def __init__(self, own: bool = False) -> None:
        if own:
            self.score = lambda row: row  # an instance's own member


class _Slotted:
    __slots__ = ()

    def score(self, row: float) -> float:
        return row


def test_provides_answers_as_isinstance_for_classes_and_instances_own_members() -> None:
    cases = [_Scorer(), _Plain(), _Plain(own=True), _Plain(), _Slotted(), 3, None]
    for _ in range(2):  # asked again: the remembered answers are the same
        assert [provides(x, _Scores) for x in cases] == [isinstance(x, _Scores) for x in cases]
    assert [provides(x, _Scores) for x in cases] == [True, False, True, False, True, False, False]


def test_provides_tells_a_model_that_scores_anomalies_from_one_that_does_not() -> None:
    class Model:
        def predict_row(self, row: object) -> float:
            return 0.5

    class Gated(Model):
        def anomaly_score_row(self, row: object) -> float:
            return 0.0

    model, gated = Model(), Gated()
    assert (provides(model, LiveModel), provides(model, LiveAnomalyGate)) == (True, False)
    assert (provides(gated, LiveModel), provides(gated, LiveAnomalyGate)) == (True, True)


def test_an_adapter_of_the_single_market_form_answers_as_the_model_it_wraps() -> None:
    """Two adapters of one class wrap models that can do different things: the first
    answer is not remembered for the second (`ModelOverSymbols` forwards what it lacks)."""

    class Old:
        horizon = 1

        def fit_predict(self, bars: object, features: object) -> object:
            raise AssertionError("not asked")

    class OldLive(Old):
        def predict_row(self, row: object) -> float:
            return 0.5

    plain, live = ModelOverSymbols(Old()), ModelOverSymbols(OldLive())
    for _ in range(2):
        assert (provides(plain, LiveModel), provides(live, LiveModel)) == (False, True)
