"""A saved scikit-learn, LightGBM or XGBoost fold as an ONNX graph whose ``probability_up``
output is the probability tradeloom decides on.

The fitted estimator (or its ``Pipeline`` of scaler and estimator) goes through skl2onnx,
LightGBM's and XGBoost's through the converters onnxmltools maintains, registered into
skl2onnx; the input is ``features``, float64 rows in the fold's column order. Nodes are
then added that map the estimator's answer to ``probability_up`` as
`tradeloom.plugins.model.fold_predictor.FoldPredictor` maps it for the fold's label kind,
and that apply the fold's calibrator (``model.calibration``: scikit-learn's
``CalibratedClassifierCV`` around the frozen model) as `Calibrator.apply` does: isotonic
as its clipped piecewise-linear map, sigmoid as ``expit(-(a * r + b))``. The estimator's
own outputs stay in the graph beside it.

What cannot be exported is a `NotExported` naming why (a calibrator of several
calibrated classifiers, a response the graph does not give, an estimator no converter
takes): never a graph that would answer otherwise than tradeloom.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tradeloom.errors import UserError
from tradeloom.plugins.model.calibration import Calibrator, is_calibrated
from tradeloom.plugins.model.labels import BINARY_KINDS
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import onnx

__all__ = [
    "INPUT",
    "OPSET",
    "OUTPUT",
    "NotExported",
    "add_calibrator",
    "sklearn_graph",
]

INPUT = "features"
"""The graph's input: float64 rows ``(n, columns)``, in the fold's column order."""

OUTPUT = "probability_up"
"""The graph's output that equals tradeloom's probability, ``(n,)`` float64."""

OPSET = {"": 18, "ai.onnx.ml": 3}
"""The opsets the graphs are written in (ai.onnx.ml 3: trees' thresholds in float64)."""

_LOGIT_RESPONSE = (
    "LogisticRegression",
    "HistGradientBoostingClassifier",
    "GradientBoostingClassifier",
    "LGBMClassifier",
)
"""Binary classifiers whose ``decision_function`` is the logit of their ``predict_proba``
class 1: a calibrator fitted on the decision is applied to that logit."""


class NotExported(UserError):
    """A fold that cannot be written as ONNX giving tradeloom's probability; says why."""


def sklearn_graph(fitted: Any, columns: int, kind: str) -> onnx.ModelProto:
    """Return ``fitted`` (a saved fold's estimator or pipeline) as an ONNX graph.

    Args:
        fitted: The fold's fitted estimator, pipeline, or calibrated pipeline.
        columns: The number of feature columns.
        kind: The label kind it was trained on (``direction`` ...).

    Raises:
        NotExported: Saying why the fold cannot be exported.
    """
    calibrator: Calibrator | None = None
    logit = False
    model = fitted
    if is_calibrated(fitted):
        model, calibrator, logit = _calibrated_parts(fitted)
    graph = _converted(model, columns)
    head = _Head(graph)
    # a tree ensemble answers in float32 whatever its input: its outputs read as float64
    outputs = [head.node("Cast", [o.name], to=11) for o in graph.graph.output]
    if kind == "return":
        value = head.node("Reshape", [outputs[0], head.constant("flat", np.array([-1]))])
        half = head.constant("half", np.array(0.5))
        shifted = head.node("Add", [head.node("Mul", [value, half]), half])
        response = head.node(
            "Clip", [shifted, head.constant("zero", np.array(0.0)), head.constant("one", 1.0)]
        )
    else:
        probabilities = outputs[1]
        classes = np.asarray(_classes(model)).tolist()
        if kind in BINARY_KINDS:
            if classes.count(1) != 1:
                raise NotExported(f"its classes are {classes}, expected one class 1")
            response = head.column(probabilities, classes.index(1))
        elif kind == "classes":
            response = _classes_probability(head, probabilities, classes)
        else:
            raise NotExported(f"label kind {kind!r} is not exported")
    if logit:
        one = head.constant("one", 1.0)
        response = head.node(
            "Sub",
            [head.node("Log", [response]), head.node("Log", [head.node("Sub", [one, response])])],
        )
    if calibrator is not None:
        response = add_calibrator(head, response, calibrator)
    head.output(response)
    return graph


def _calibrated_parts(fitted: Any) -> tuple[Any, Calibrator, bool]:
    parts = fitted.calibrated_classifiers_
    if len(parts) != 1 or len(parts[0].calibrators) != 1:
        raise NotExported(
            f"its CalibratedClassifierCV holds {len(parts)} calibrated classifiers; exported "
            "is the walk-forward's calibration (model.calibration: one frozen model and its "
            "calibrator)"
        )
    part = parts[0]
    frozen = part.estimator
    model = frozen.estimator if type(frozen).__name__ == "FrozenEstimator" else frozen
    try:
        calibrator = Calibrator.of(part.calibrators[0])
    except Exception as exc:  # UnsupportedEstimatorError: a calibrator of another kind
        raise NotExported(str(exc)) from None
    logit = hasattr(frozen, "decision_function")
    name = type(_last_step(model)).__name__
    if logit and name not in _LOGIT_RESPONSE:
        raise NotExported(
            f"its calibrator was fitted on the decision_function of {name}, which the ONNX "
            f"graph does not give (exported: calibrated trees, boosting, and "
            f"{', '.join(_LOGIT_RESPONSE)})"
        )
    return model, calibrator, logit


def _last_step(model: Any) -> Any:
    from sklearn.pipeline import Pipeline

    while isinstance(model, Pipeline):
        model = model.steps[-1][1]
    return model


def _classes(model: Any) -> Any:
    return _last_step(model).classes_


def _classes_probability(head: _Head, probabilities: str, classes: list[Any]) -> str:
    if not set(classes) <= {0, 1, 2}:
        raise NotExported(f"its classes are {classes}, expected classes among 0, 1, 2")
    weights = np.zeros((len(classes), 1))
    for column, value in enumerate(classes):
        weights[column, 0] = {0: 0.0, 1: 0.5, 2: 1.0}[value]
    product = head.node("MatMul", [probabilities, head.constant("class_weights", weights)])
    return head.node("Reshape", [product, head.constant("flat", np.array([-1]))])


def add_calibrator(head: _Head, response: str, calibrator: Calibrator) -> str:
    """Return the output of nodes added to ``head`` that calibrate ``response`` as
    `Calibrator.apply` does."""
    if calibrator.method == "sigmoid":
        scaled = head.node("Mul", [response, head.constant("cal_a", calibrator.a)])
        shifted = head.node("Add", [scaled, head.constant("cal_b", calibrator.b)])
        return head.node("Sigmoid", [head.node("Neg", [shifted])])
    low, high = head.constant("cal_low", calibrator.low), head.constant("cal_high", calibrator.high)
    clipped = head.node("Clip", [response, low, high])
    t, v = calibrator.thresholds, calibrator.values
    first = head.constant("cal_first", float(v[0]))
    if len(v) == 1:
        return head.node("Add", [head.node("Mul", [clipped, head.constant("zero", 0.0)]), first])
    widths = np.diff(t)
    if (widths <= 0).any():
        raise NotExported("its isotonic calibrator's thresholds are not strictly increasing")
    # np.interp between the thresholds: the first value plus each segment's slope over
    # the part of the segment below the value (0 below it, its whole width above it)
    column = head.node("Unsqueeze", [clipped, head.constant("axis1", np.array([1]))])
    lower = head.constant("cal_lower", t[:-1][None, :])
    upper = head.constant("cal_upper", t[1:][None, :])
    inside = head.node("Min", [head.node("Max", [column, lower]), upper])
    rise = head.node(
        "Mul",
        [
            head.node("Sub", [inside, lower]),
            head.constant("cal_slope", (np.diff(v) / widths)[None]),
        ],
    )
    total = head.node("ReduceSum", [rise, head.constant("axis1", np.array([1]))], keepdims=0)
    return head.node("Add", [total, first])


class _Head:
    """Nodes added at the end of a graph, named so as not to collide with its own."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self._count = 0
        self._constants: dict[str, str] = {}

    def _name(self, stem: str) -> str:
        self._count += 1
        return f"tradeloom_{stem}_{self._count}"

    def constant(self, stem: str, value: Any) -> str:
        """Return the name of a float64 (int64 for integer arrays) initializer of ``value``."""
        from onnx import numpy_helper

        array = np.asarray(value)
        array = array.astype(np.int64 if array.dtype.kind in "iu" else np.float64)
        key = f"{stem}:{array.dtype}:{array.shape}:{array.tobytes().hex()}"
        if key not in self._constants:
            name = self._name(stem)
            self.model.graph.initializer.append(numpy_helper.from_array(array, name))
            self._constants[key] = name
        return self._constants[key]

    def node(self, op: str, inputs: list[str], **attributes: Any) -> str:
        """Return the output of a new node ``op`` of ``inputs``."""
        from onnx import helper

        out = self._name(op.lower())
        self.model.graph.node.append(helper.make_node(op, inputs, [out], **attributes))
        return out

    def column(self, matrix: str, index: int) -> str:
        """Return column ``index`` of a ``(n, k)`` output, as ``(n,)``."""
        return self.node("Gather", [matrix, self.constant("index", np.array(index))], axis=1)

    def output(self, name: str) -> None:
        """Make ``name`` the graph's ``probability_up`` output."""
        from onnx import TensorProto, helper

        self.model.graph.node.append(helper.make_node("Identity", [name], [OUTPUT]))
        self.model.graph.output.insert(
            0, helper.make_tensor_value_info(OUTPUT, TensorProto.DOUBLE, [None])
        )


_REGISTERED: list[bool] = []


def _converted(model: Any, columns: int) -> onnx.ModelProto:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType

    _register_boosting()
    steps = _steps(model)
    options = {id(step): {"zipmap": False} for step in steps if hasattr(step, "classes_")}
    try:
        with _int_missing_flags():
            graph: onnx.ModelProto = to_onnx(
                model,
                initial_types=[(INPUT, DoubleTensorType([None, columns]))],
                target_opset=dict(OPSET),
                options=options,
            )
    except Exception as exc:  # the converters raise many kinds (RuntimeError, NameError...)
        first = (str(exc).strip().splitlines() or [""])[0]
        raise NotExported(
            f"{type(_last_step(model)).__name__} has no ONNX converter that takes it "
            f"({type(exc).__name__}: {first[:200]})"
        ) from None
    if type(steps[-1]).__name__ in _FLOAT32_INPUT:
        _float32_rows(graph)
    _float_tree_outputs(graph)
    return graph


_FLOAT32_INPUT = (
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "ExtraTreeClassifier",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
    "RandomForestClassifier",
    "RandomForestRegressor",
    "XGBClassifier",
    "XGBRegressor",
)
"""Estimators that read a row as float32 values (scikit-learn's trees' ``DTYPE``, XGBoost)."""

_TREES = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")


def _float32_rows(graph: onnx.ModelProto) -> None:
    """Round the rows each tree ensemble of ``graph`` reads to float32 values (kept in
    float64: its thresholds and sums stay float64), as the estimator reads them after the
    fold's float64 scaling: a float64 row compared with the thresholds takes the other
    branch near one (1e-3 apart on a shipped forest's fold)."""
    from onnx import TensorProto, helper

    nodes = list(graph.graph.node)
    del graph.graph.node[:]
    for node in nodes:
        if node.op_type in _TREES:
            single, rounded = f"{node.input[0]}_float32", f"{node.input[0]}_rounded"
            graph.graph.node.extend(
                [
                    helper.make_node("Cast", [node.input[0]], [single], to=TensorProto.FLOAT),
                    helper.make_node("Cast", [single], [rounded], to=TensorProto.DOUBLE),
                ]
            )
            node.input[0] = rounded
        graph.graph.node.append(node)


@contextlib.contextmanager
def _int_missing_flags() -> Iterator[None]:
    """Give skl2onnx's tree nodes their missing-value flag as an int: its
    HistGradientBoosting converter passes a leaf's as the bool False, which onnx 1.23's
    attribute of ints refuses ("Expected an int, got a boolean"); the same value, 0."""
    from skl2onnx.common import tree_ensemble

    add_node = tree_ensemble.add_node

    def with_int_flag(*args: Any, **kwargs: Any) -> Any:
        flag = kwargs.get("nodes_missing_value_tracks_true")
        if flag is not None:
            kwargs["nodes_missing_value_tracks_true"] = int(flag)
        return add_node(*args, **kwargs)

    tree_ensemble.add_node = with_int_flag
    try:
        yield
    finally:
        tree_ensemble.add_node = add_node


def _float_tree_outputs(graph: onnx.ModelProto) -> None:
    """Declare float32 the probabilities a ``TreeEnsembleClassifier`` gives, and the values of
    a ``TreeEnsembleRegressor`` (float32 whatever
    its input's type; LightGBM's, XGBoost's and HistGradientBoosting's converters declare
    them float64 for a float64 input, which onnxruntime refuses), and their copies."""
    from onnx import TensorProto

    nodes = graph.graph.node
    floats = {node.output[1] for node in nodes if node.op_type == "TreeEnsembleClassifier"}
    floats |= {node.output[0] for node in nodes if node.op_type == "TreeEnsembleRegressor"}
    for node in nodes:
        if node.op_type == "Identity" and node.input[0] in floats:
            floats.add(node.output[0])
    for value in [*graph.graph.output, *graph.graph.value_info]:
        tensor = value.type.tensor_type
        if value.name in floats and tensor.elem_type == TensorProto.DOUBLE:
            tensor.elem_type = TensorProto.FLOAT


def _steps(model: Any) -> list[Any]:
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        return [s for _, step in model.steps for s in _steps(step)]
    return [model]


def _register_boosting() -> None:
    """Register onnxmltools' LightGBM and XGBoost converters into skl2onnx, once."""
    if _REGISTERED:
        return
    import importlib.util

    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    if importlib.util.find_spec("lightgbm") is not None:
        from lightgbm import LGBMClassifier
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(
            LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=options,
        )
    if importlib.util.find_spec("xgboost") is not None:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier

        update_registered_converter(
            XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=options,
        )
    _REGISTERED.append(True)
