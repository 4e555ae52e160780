"""What a config value may be and what a component is, below the registry and the source reader (``eeap.config.sources``),
which both read them: ``Range`` and the number types built on it (``PositiveInt``, ``Fraction``, ...), and ``Role``,
the marker of the abstract classes that components fill. ``eeap.config.registry`` offers them to components too."""

from __future__ import annotations

import abc
import dataclasses
from typing import Annotated, Optional


@dataclasses.dataclass(frozen=True)
class Range:
    """Bounds on a number, attached to its type with ``typing.Annotated``: ``Annotated[int, Range(low=1)]``.

    ``low``/``high`` of ``None`` are unbounded; ``open_low``/``open_high`` leave the bound itself out.
    """

    low: Optional[float] = None
    high: Optional[float] = None
    open_low: bool = False
    open_high: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.open_high and value == self.high))

    def __str__(self) -> str:
        low, high = number(self.low), number(self.high)
        if self.high is None:
            return f"{'>' if self.open_low else '≥'} {low}"
        if self.low is None:
            return f"{'<' if self.open_high else '≤'} {high}"
        return f"in {'(' if self.open_low else '['}{low}, {high}{')' if self.open_high else ']'}"


def number(x: Optional[float]) -> str:
    """A bound as written: whole numbers without a decimal point or exponent."""
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


PositiveInt = Annotated[int, Range(low=1)]  # sizes, counts, batch sizes
NonNegativeInt = Annotated[int, Range(low=0)]  # counts where 0 means none (or "pick for me", as documented)
PositiveFloat = Annotated[float, Range(low=0, open_low=True)]  # learning rates, temperatures
NonNegativeFloat = Annotated[float, Range(low=0)]  # loss weights, penalties
Fraction = Annotated[float, Range(0, 1, open_high=True)]  # dropout, the share of a split held out
Probability = Annotated[float, Range(0, 1)]  # teacher forcing, label smoothing, thresholds


class Role(abc.ABC):  # noqa: B024  (a marker: each role declares its own abstract methods)
    """Marks an abstract base class as a role that components fill (an attention, a sequence encoder, ...).

    ``registry_kind`` names the registry whose components fill it; ``role_name`` says what it is, in messages.
    """

    registry_kind: str = ""
    role_name: str = ""
    registered_name: str = ""  # a component's name, set by ``Registry.register``
