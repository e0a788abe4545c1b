"""A torch network as a scikit-learn classifier: a member of a declared ensemble beside trees.

``model: {kind: sklearn, estimator: {class: sklearn.ensemble.VotingClassifier, params:
{voting: soft, estimators: [{name: forest, class: ...RandomForestClassifier},
{name: net, class: tradeloom.plugins.model.torch_estimator.TorchClassifier, params:
{network: mlp, network_params: {hidden: 16}, epochs: 10}}]}}}`` trains, in each fold, a
forest and a network on the same rows, and averages their probabilities: the ``sklearn``
model's folds, labels, purging, calibration and registry, with a torch member.

A scikit-learn estimator sees one row per sample, in the order a fold gives them (not
necessarily consecutive bars), so its network reads that row alone (a window of one):
the windowed sequence models are the ``torch`` model's (`tradeloom.plugins.model.torch_model`).
It trains as that model's folds do (`fit_network`: the estimator's ``random_state``
seeds it, torch's deterministic algorithms on, the rows scaled by their own mean and
standard deviation, Adam on shuffled batches; ``validation`` keeps the last share of
the rows it is given to stop early on, unpurged: 0, the default, trains every epoch).

Saved with its ensemble in the fold's pickle, it holds no torch object: its state is the
network's architecture (a built-in network only) and its weights as numpy arrays, which
`__setstate__` loads into a network built again, so the model files' allow-list
(`tradeloom.plugins.model.safe_pickle`) admits the class and nothing of torch.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions

from tradeloom.plugins.model.torch_fold import TorchFold
from tradeloom.plugins.model.torch_networks import BUILT_IN, NetworkSpec, check_network
from tradeloom.plugins.model.torch_training import TrainingSettings, fit_network, standard_scaler
from tradeloom.runtime.lazy import numpy as np

__all__ = ["TorchClassifier"]


class TorchClassifier(ClassifierMixin, BaseEstimator):
    """A built-in torch network over one row of features, as a scikit-learn classifier.

    Args:
        network: A built-in network (``mlp`` by default; ``lstm``, ``gru``, ``tcn`` and
            ``transformer`` read a window of one row).
        network_params: The network's parameters (`torch_networks`' params models).
        epochs: Most passes over the rows.
        batch_size: Rows per gradient step.
        learning_rate: Adam's learning rate.
        weight_decay: Adam's L2 penalty.
        validation: Share of the rows, the last ones, kept to stop early on (0: none).
        patience: Epochs without a lower validation loss before training stops.
        max_grad_norm: Each step's gradient clipped to this norm (None: not clipped).
        random_state: Seeds the network's initialisation and the batches' order.

    Attributes:
        classes_: The classes seen by `fit`, in order.
        n_features_in_: Values per row.
    """

    needs_extras = ("torch",)
    """The optional libraries it fits with: checked when a strategy names it."""

    _parameter_constraints: dict[str, list[Any]] = {  # noqa: RUF012 - scikit-learn's convention
        "network": [StrOptions(set(BUILT_IN))],
        "network_params": [dict, None],
        "epochs": [Interval(Integral, 1, 10_000, closed="both")],
        "batch_size": [Interval(Integral, 1, 65_536, closed="both")],
        "learning_rate": [Interval(Real, 0.0, 1.0, closed="right")],
        "weight_decay": [Interval(Real, 0.0, 1.0, closed="both")],
        "validation": [Interval(Real, 0.0, 1.0, closed="left")],
        "patience": [Interval(Integral, 1, 10_000, closed="both")],
        "max_grad_norm": [Interval(Real, 0.0, None, closed="neither"), None],
        "random_state": [Integral, None],
    }

    def __init__(
        self,
        network: str = "mlp",
        network_params: dict[str, Any] | None = None,
        epochs: int = 20,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        validation: float = 0.0,
        patience: int = 3,
        max_grad_norm: float | None = 1.0,
        random_state: int | None = None,
    ) -> None:
        self.network = network
        self.network_params = network_params
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation = validation
        self.patience = patience
        self.max_grad_norm = max_grad_norm
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> TorchClassifier:
        """Train a new network on rows ``X`` and classes ``y``; return self.

        Raises:
            ValueError: The params are invalid, or ``y`` holds fewer than two classes.
        """
        self._validate_params()
        x = np.asarray(X, dtype=np.float64)
        self.classes_, index = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"TorchClassifier needs two classes at least, y holds {self.classes_}")
        self.n_features_in_ = x.shape[1]
        kind = "direction" if len(self.classes_) == 2 else "classes"
        outputs = 1 if kind == "direction" else len(self.classes_)
        spec = check_network(
            self.network,
            self.network_params or {},
            window=1,
            outputs=outputs,
            n_features=x.shape[1],
        )
        rows = np.arange(len(x))
        held = int(len(x) * self.validation)
        fit_rows, stop = (rows[:-held], rows[-held:]) if held else (rows, rows[:0])
        settings = TrainingSettings(
            self.epochs,
            self.batch_size,
            self.learning_rate,
            self.weight_decay,
            self.validation,
            self.patience,
            self.max_grad_norm,
        )
        self.fold_ = fit_network(
            spec,
            kind,
            x,
            fit_rows,
            index[fit_rows],
            (stop, index[stop]) if len(stop) else None,
            settings,
            seed=0 if self.random_state is None else int(self.random_state),
            scaler=standard_scaler(x[fit_rows]),
        )
        return self

    def predict_proba(self, X: Any) -> Any:
        """Return ``(n_rows, n_classes)``: each class's probability, classes as `classes_`."""
        fold: TorchFold = self.fold_
        x = np.asarray(X, dtype=np.float64)
        out = fold.outputs(fold.scaled(x)[:, None, :])
        if len(self.classes_) == 2:
            from scipy.special import expit

            up = np.asarray(expit(out[:, 0]), dtype=np.float64)
            return np.column_stack([1.0 - up, up])
        shifted = np.exp(out - out.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> Any:
        """Return the most probable class of each row."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __getstate__(self) -> dict[str, Any]:
        """The estimator's state with its fold as numbers: the network's architecture and
        weights (numpy arrays), the scaler's numbers; no torch object."""
        state = dict(super().__getstate__())
        fold: TorchFold | None = state.pop("fold_", None)
        if fold is not None:
            state["fold_weights_"] = {
                "network": fold.spec.record(),
                "state": {
                    k: v.detach().to("cpu").numpy().copy()
                    for k, v in fold.network.state_dict().items()
                },
                "mean": fold.mean,
                "scale": fold.scale,
                "kind": fold.kind,
            }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Build the fold again from its numbers (a built-in network only).

        Raises:
            ValueError: The state names a network that is not built in, or its weights do
                not fit it.
        """
        weights = state.pop("fold_weights_", None)
        super().__setstate__(state)
        if weights is None:
            return
        import torch

        from tradeloom.plugins.model.torch_networks import build_network

        spec = NetworkSpec.of_record(weights["network"])
        if spec.network not in BUILT_IN:
            raise ValueError(f"a TorchClassifier holds a built-in network, not {spec.network}")
        network = build_network(spec)
        network.load_state_dict({k: torch.from_numpy(v) for k, v in weights["state"].items()})
        self.fold_ = TorchFold(
            spec, network, weights["kind"], mean=weights["mean"], scale=weights["scale"]
        )
