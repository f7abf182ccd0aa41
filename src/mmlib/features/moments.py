"""Exact streaming statistics of a column: count, mean, spread, min and max, one chunk at a time.

The norm stage fits its transforms on every training frame of a character; at 50,000 games the
frames do not fit in memory, so each perspective is summarised alone and the summaries merged
(Chan, Golub and LeVeque's pairwise update). Min and max are exact; the mean and the population
standard deviation agree with one numpy pass over the pooled values to float64 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Moments:
    count: int
    mean: float
    m2: float  # sum of squared deviations from the mean
    min: float
    max: float

    @classmethod
    def of(cls, name: str, values: np.ndarray) -> Moments:
        """The moments of a chunk's non-NaN values (float64); an infinite value is an error."""
        v = np.asarray(values, dtype=np.float64).ravel()
        v = v[~np.isnan(v)]
        if np.isinf(v).any():
            raise ValueError(f"column {name!r} holds infinite values; cannot fit its statistics")
        if v.size == 0:
            return EMPTY
        mean = v.mean()
        m2 = np.square(v - mean).sum()
        return cls(int(v.size), float(mean), float(m2), float(v.min()), float(v.max()))

    def merge(self, other: Moments) -> Moments:
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        n = self.count + other.count
        delta = other.mean - self.mean
        return Moments(
            n,
            self.mean + delta * other.count / n,
            self.m2 + other.m2 + delta * delta * self.count * other.count / n,
            min(self.min, other.min),
            max(self.max, other.max),
        )

    @property
    def std(self) -> float:
        """Population standard deviation."""
        return float(np.sqrt(self.m2 / self.count))


EMPTY = Moments(0, 0.0, 0.0, np.inf, -np.inf)


def merge_all(parts: list[Moments]) -> Moments:
    """The moments of the concatenated chunks, merged in the order given."""
    total = EMPTY
    for part in parts:
        total = total.merge(part)
    return total
