"""LightGBM and XGBoost as walk-forward estimators: the extras that install them, the keys
they take, the defaults tradeloom gives them, and their threads.

``model.estimator: lightgbm.LGBMClassifier`` and ``xgboost.XGBClassifier`` are ordinary
estimators by import path (checked, seeded, trained per fold and saved like scikit-learn's);
what differs is collected here, keyed on the estimator's top-level package:

- Neither library is a dependency of tradeloom: ``pip install "tradeloom[lightgbm]"`` or
  ``"tradeloom[xgboost]"`` installs it, and a strategy naming one that is missing is told
  that command (`install_hint`).
- LightGBM's scikit-learn wrapper passes any LightGBM parameter through (``max_bin``,
  ``feature_fraction``, ``min_data_in_leaf``...): those names and their aliases are keys
  of ``model.params`` too (`library_params`), and the aliases of ``n_estimators``
  (``num_iterations``, ``num_boost_round``...) have its ceiling (`work_aliases`).
- Defaults (`library_defaults`): LightGBM trains with ``deterministic: true`` and
  ``force_col_wise: true`` (its automatic choice between row-wise and column-wise
  histograms is made by timing both, so it could differ between two runs) and
  ``verbose: -1`` (its progress lines would go to stdout); a strategy's own value wins.
- Threads (`set_threads`): LightGBM takes every physical core when ``n_jobs`` is None and
  XGBoost every OpenMP thread, ignoring tradeloom's policy (`tradeloom.runtime.threads`). A fold
  sets ``n_jobs`` to the OpenMP threads in force where it trains: the process's count
  (one by default, ``--threads N``), one inside fold threads (``walk_forward.n_jobs``)
  and sweep tasks. The same rows give the same trees with one thread or several (tested).
  A strategy that sets ``n_jobs`` (or a LightGBM alias of it) keeps its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

__all__ = [
    "EXTRAS",
    "install_hint",
    "library_defaults",
    "library_params",
    "lightgbm_aliases",
    "set_threads",
    "work_aliases",
]

EXTRAS = {"lightgbm": "lightgbm", "xgboost": "xgboost"}
"""Top-level package -> the tradeloom extra that installs it."""

_LIGHTGBM_DEFAULTS: dict[str, tuple[tuple[str, ...], Any]] = {
    # default key: (the keys that, when a strategy sets one, mean it chose; the value)
    "verbose": (("verbose", "verbosity"), -1),
    "deterministic": (("deterministic",), True),
    "force_col_wise": (("force_col_wise", "force_row_wise"), True),
}


def install_hint(package: str) -> str:
    """Return ``'; install it with: pip install "tradeloom[EXTRA]"'`` for a package an
    extra installs, else an empty string."""
    extra = EXTRAS.get(package)
    return "" if extra is None else f'; install it with: pip install "tradeloom[{extra}]"'


def _package(estimator: Any) -> str:
    return type(estimator).__module__.partition(".")[0]


def library_params(estimator: Any) -> list[str]:
    """Return the keys an estimator takes besides its ``get_params``: LightGBM's own
    parameter names and aliases; none for any other library."""
    if _package(estimator) != "lightgbm":
        return []
    return sorted({name for aliases in lightgbm_aliases().values() for name in aliases})


def work_aliases(estimator: Any) -> dict[str, str]:
    """Return each alias of a work-sizing parameter -> the parameter whose ceiling it has."""
    if _package(estimator) != "lightgbm":
        return {}
    return dict.fromkeys(lightgbm_aliases().get("num_iterations", ()), "n_estimators")


def library_defaults(estimator: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the settings tradeloom adds to a strategy's ``params`` of this estimator."""
    if _package(estimator) != "lightgbm":
        return {}
    aliases = lightgbm_aliases()
    given = {alias for key in params for alias in _aliases_of(key, aliases)} | set(params)
    return {
        key: value
        for key, (choices, value) in _LIGHTGBM_DEFAULTS.items()
        if not any(choice in given for choice in choices)
    }


def set_threads(estimator: Any, threads: int) -> None:
    """Set a LightGBM or XGBoost estimator's ``n_jobs`` to ``threads`` unless the strategy
    set it (or, for LightGBM, an alias of it); leave any other estimator alone."""
    package = _package(estimator)
    if package not in EXTRAS:
        return
    params = estimator.get_params(deep=False)
    chosen = {"n_jobs"}
    if package == "lightgbm":
        chosen.update(lightgbm_aliases().get("num_threads", ()))
    if params.get("n_jobs") is None and not any(
        params.get(key) is not None for key in chosen - {"n_jobs"}
    ):
        estimator.set_params(n_jobs=threads)


def _aliases_of(key: str, aliases: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    for names in aliases.values():
        if key in names:
            return names
    return ()


@cache
def lightgbm_aliases() -> dict[str, tuple[str, ...]]:
    """Return LightGBM's parameter names -> every name that means it (the name first).

    Read from LightGBM itself (``_ConfigAliases``, which asks its C library) once per
    process; LightGBM is imported already: an estimator of it exists. Not to be mutated.
    """
    from lightgbm.basic import _ConfigAliases

    found = _ConfigAliases._get_all_param_aliases()
    return {name: (name, *(a for a in names if a != name)) for name, names in found.items()}
