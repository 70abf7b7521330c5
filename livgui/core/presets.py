"""Window/level presets in HU (centre = level, width)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRESETS", "WindowLevel"]


@dataclass(frozen=True)
class WindowLevel:
    """A display window: ``level`` (centre) and ``width`` in HU."""

    name: str
    level: float
    width: float

    @property
    def low(self) -> float:
        return self.level - self.width / 2.0

    @property
    def high(self) -> float:
        return self.level + self.width / 2.0


#: Common radiology presets; abdomen W400/L40, liver W150/L60 (narrow soft-tissue window
#: for hepatic lesions), bone W1800/L400, lung W1500/L-600.
PRESETS: dict[str, WindowLevel] = {
    "abdomen": WindowLevel("abdomen", 40.0, 400.0),
    "liver": WindowLevel("liver", 60.0, 150.0),
    "bone": WindowLevel("bone", 400.0, 1800.0),
    "lung": WindowLevel("lung", -600.0, 1500.0),
}
