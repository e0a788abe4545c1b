"""Realism profiles: a venue's declared latency and fee tier, named and shareable.

``execution.realism`` of the simulated venue is a profile written inline, the path of a
profile file (relative to the strategy file), or the name of a built-in profile
(`BUILT_IN`: ``binance_vip0``, ``colocated``). The latency reaches the compiled bar as
`tradeloom.core.kernels.specs.LatencyKernel` (`tradeloom.core.latency`); the fee tier
replaces the venue's ``fee_bps`` and ``maker_fee_bps`` (a file may not set both).

A leg's latency is a number of milliseconds (fixed) or a distribution with its
parameters: ``{kind: uniform, low_ms, high_ms}``, ``{kind: lognormal, median_ms,
sigma}``; each order's draw is a hash of ``seed`` and its sequence number, the same in
every mode (`tradeloom.core.kernels.latency`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from tradeloom.core.kernels.latency import (
    ARRIVE_BAR_OPEN,
    ARRIVE_NEXT_OPEN,
    LAT_FIXED,
    LAT_LOGNORMAL,
    LAT_NONE,
    LAT_UNIFORM,
)
from tradeloom.core.kernels.specs import LatencyKernel
from tradeloom.errors import ConfigError, Problem
from tradeloom.plugins.component import Params

__all__ = [
    "BUILT_IN",
    "FeeTier",
    "FixedLatency",
    "LatencyModel",
    "LognormalLatency",
    "QueueSetting",
    "RealismProfile",
    "UniformLatency",
    "load_profile",
]

_MAX_MS = 86_400_000.0
"""The longest latency a leg may declare: a day (beyond it, a typo of units)."""

_PROFILES = Path(__file__).parent / "profiles"
BUILT_IN: tuple[str, ...] = tuple(sorted(p.stem for p in _PROFILES.glob("*.yaml")))
"""The built-in profiles' names (``tradeloom/plugins/protocols_orders/profiles/<name>.yaml``)."""


class FixedLatency(Params):
    """A fixed latency: ``ms`` milliseconds (a bare number says the same)."""

    kind: Literal["fixed"] = "fixed"
    ms: float = Field(ge=0, le=_MAX_MS, description="Milliseconds.")

    def spec(self) -> tuple[int, float, float]:
        """Return ``(LAT_*, a, b)`` for the kernel."""
        return (LAT_FIXED if self.ms > 0 else LAT_NONE), self.ms, 0.0


class UniformLatency(Params):
    """A latency drawn uniformly between ``low_ms`` and ``high_ms``."""

    kind: Literal["uniform"]
    low_ms: float = Field(ge=0, le=_MAX_MS, description="The least milliseconds.")
    high_ms: float = Field(ge=0, le=_MAX_MS, description="The most milliseconds.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.high_ms < self.low_ms:
            raise ValueError(f"high_ms ({self.high_ms:g}) must be >= low_ms ({self.low_ms:g})")
        return self

    def spec(self) -> tuple[int, float, float]:
        """Return ``(LAT_*, a, b)`` for the kernel."""
        return LAT_UNIFORM, self.low_ms, self.high_ms


class LognormalLatency(Params):
    """A lognormal latency: ``median_ms`` times ``exp(sigma * z)``, z standard normal."""

    kind: Literal["lognormal"]
    median_ms: float = Field(gt=0, le=_MAX_MS, description="The median milliseconds.")
    sigma: float = Field(ge=0, le=3, description="The standard deviation of the log.")

    def spec(self) -> tuple[int, float, float]:
        """Return ``(LAT_*, a, b)`` for the kernel."""
        return LAT_LOGNORMAL, self.median_ms, self.sigma


def _bare_ms(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"kind": "fixed", "ms": value}
    return value


Leg = Annotated[
    Annotated[FixedLatency | UniformLatency | LognormalLatency, Field(discriminator="kind")],
    # the editor's schema takes the bare milliseconds the validator takes
    BeforeValidator(
        _bare_ms,
        json_schema_input_type=Annotated[float, Field(ge=0, le=_MAX_MS)]
        | FixedLatency
        | UniformLatency
        | LognormalLatency,
    ),
]
"""One leg's latency: milliseconds, or a distribution."""


class LatencyModel(Params):
    """Keys of a profile's ``latency``: each leg's milliseconds, the seed, the bar rule."""

    send: Leg = Field(
        default_factory=lambda: FixedLatency(ms=0.0),
        description="Decision to exchange: ms, or {kind: uniform|lognormal, ...}.",
    )
    report: Leg = Field(
        default_factory=lambda: FixedLatency(ms=0.0),
        description="Exchange to fill report (shown; on bars a fill is known by the next "
        "decision).",
    )
    cancel: Leg = Field(
        default_factory=lambda: FixedLatency(ms=0.0),
        description="A cancel's way to the exchange: a cancel that does not arrive before "
        "the order it cancels is too late (CANCEL_TOO_LATE) and the order fills.",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="The draws' seed (0 .. 2**31-1).")
    on_bars: Literal["bar_open", "next_open"] = Field(
        default="bar_open",
        description="bar_open: an order fills at the open of the bar it arrives in (below "
        "one bar period: the next bar's open); next_open: at the first open at or after "
        "its arrival.",
    )

    def kernel(self) -> LatencyKernel:
        """Return the compiled bar's settings."""
        kind, a, b = self.send.spec()
        cancel_kind, cancel_a, cancel_b = self.cancel.spec()
        rule = ARRIVE_NEXT_OPEN if self.on_bars == "next_open" else ARRIVE_BAR_OPEN
        return LatencyKernel(kind, a, b, cancel_kind, cancel_a, cancel_b, self.seed, rule)

    def describe(self) -> str:
        """Return the legs in words (the run summary's, the report's)."""
        legs = (("send", self.send), ("cancel", self.cancel), ("report", self.report))
        text = ", ".join(f"{name} {_leg_text(leg)}" for name, leg in legs)
        return f"{text}; seed {self.seed}; bars: {self.on_bars}"


def _leg_text(leg: FixedLatency | UniformLatency | LognormalLatency) -> str:
    if isinstance(leg, FixedLatency):
        return f"{leg.ms:,.10g} ms"
    if isinstance(leg, UniformLatency):
        return f"uniform {leg.low_ms:,.10g}-{leg.high_ms:,.10g} ms"
    return f"lognormal median {leg.median_ms:,.10g} ms sigma {leg.sigma:g}"


class FeeTier(Params):
    """A venue's fee tier, in basis points of the filled notional."""

    taker_bps: float = Field(ge=0, lt=10_000, description="Taker fee.")
    maker_bps: float | None = Field(
        default=None, ge=-10, lt=10_000, description="Maker fee (negative: a rebate); None: taker."
    )


class QueueSetting(Params):
    """The queue position model of a resting limit order on a recorded book.

    Read by the book backtest (`tradeloom.core.kernels.queue`); on bars a limit order
    has no queue (it fills when a bar trades through its price).
    """

    model: Literal["risk_averse", "power", "power3", "log"] = Field(
        default="risk_averse",
        description="risk_averse: only trades at its price advance an order; power, power3, "
        "log: a shrink of its level no trade explains is split ahead/behind by hftbacktest's "
        "probability functions.",
    )
    n: float = Field(default=3.0, gt=0, le=20, description="The exponent of power and power3.")

    def kernel(self) -> tuple[int, float]:
        """Return ``(QUEUE_*, n)`` for the book kernel."""
        from tradeloom.core.kernels.queue import (
            QUEUE_LOG,
            QUEUE_POWER,
            QUEUE_POWER3,
            QUEUE_RISK_AVERSE,
        )

        codes = {"risk_averse": QUEUE_RISK_AVERSE, "power": QUEUE_POWER}
        codes |= {"power3": QUEUE_POWER3, "log": QUEUE_LOG}
        return codes[self.model], self.n

    def describe(self) -> str:
        """Return the model in words."""
        return self.model if self.model in ("risk_averse", "log") else f"{self.model} n={self.n:g}"


class RealismProfile(Params):
    """A realism profile: a venue's latency and its fee tier (``execution.realism``)."""

    name: str | None = Field(default=None, min_length=1, description="The profile's name.")
    venue: str | None = Field(default=None, min_length=1, description="The venue it models.")
    latency: LatencyModel = Field(default_factory=LatencyModel, description="The latency.")
    fees: FeeTier | None = Field(
        default=None, description="The fee tier; None: the strategy's fee_bps."
    )
    queue: QueueSetting | None = Field(
        default=None,
        description="The queue model of the book backtest; None: risk_averse. Not used on bars.",
    )

    def describe(self, source: str = "") -> str:
        """Return the profile in one line (the run summary's, the report's)."""
        head = self.name or source or "inline"
        fees = ""
        if self.fees is not None:
            maker = self.fees.taker_bps if self.fees.maker_bps is None else self.fees.maker_bps
            fees = f"; fees taker {self.fees.taker_bps:g} bps, maker {maker:g} bps"
        queue = "" if self.queue is None else f"; queue {self.queue.describe()}"
        return f"{head}: latency {self.latency.describe()}{fees}{queue}"


def load_profile(reference: str, strategy_dir: Path) -> tuple[RealismProfile, str]:
    """Return the profile ``reference`` names and where it came from.

    Args:
        reference: A built-in profile's name, or a ``.yaml`` file's path (relative to the
            strategy file's folder).
        strategy_dir: The strategy file's folder.

    Raises:
        ConfigError: The file is not a valid profile: one line per problem,
            ``FILE:LINE:COL key: what``.
        UnreadableFile: The file cannot be read or is not YAML.
        KeyError: ``reference`` is neither a file nor a built-in name (the caller says so
            at the strategy's key).
    """
    if reference.endswith((".yaml", ".yml")):
        path = Path(reference)
        if not path.is_absolute():
            path = strategy_dir / path
        if not path.is_file():
            raise KeyError(reference)
        source = reference
    elif reference in BUILT_IN:
        path = _PROFILES / f"{reference}.yaml"
        source = f"built-in profile {reference}"
    else:
        raise KeyError(reference)
    data, node = _read(path)
    try:
        profile = RealismProfile.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = [part for part in err["loc"] if part not in _LEG_TAGS]
            line, column = _position(node, loc, err["type"] == "missing")
            key = ".".join(str(part) for part in loc)
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key"
            elif err["type"] != "missing" and not isinstance(err["input"], dict):
                message = f"{message}, was {err['input']!r}"
            problems.append(Problem(f"{reference}:{line}:{column}", key, message))
        raise ConfigError(problems) from None
    return profile, source


_LEG_TAGS = frozenset({"fixed", "uniform", "lognormal", "function-before[_bare_ms(), ...]"})
"""The union members pydantic names in an error's location (not keys of the file)."""


def _read(path: Path) -> tuple[Any, Any]:
    """Return the document and its node tree (for the positions of its keys)."""
    import yaml

    from tradeloom.files.reading import read_text, read_yaml
    from tradeloom.files.yaml_scanner import SafeLoader

    data = read_yaml(path, "a realism profile")
    loader = SafeLoader(read_text(path, "a realism profile"))
    try:
        return data, loader.get_single_node()
    except yaml.YAMLError:  # read_yaml parsed it: not reached
        return data, None
    finally:
        loader.dispose()


def _position(node: Any, loc: list[Any], missing: bool) -> tuple[int, int]:
    """Return the 1-based line and column of key path ``loc`` (the key's; a missing
    key's: its mapping's)."""
    import yaml

    at = (1, 1) if node is None else (node.start_mark.line + 1, node.start_mark.column + 1)
    for part in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        for key, value in node.value:
            if key.value == part:
                at = (key.start_mark.line + 1, key.start_mark.column + 1)
                node = value
                break
        else:
            break
    return at
