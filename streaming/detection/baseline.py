"""A personal baseline: robust centre and spread of the last N learned values, kept by river.

river's rolling statistics do the work (``RollingQuantile`` for the median, ``RollingIQR`` for the spread);
this class is the small interface the detectors use, so the contract "score before learning, never learn
from a flagged value" lives in one place and is tested here rather than inside river (river 0.26.1's
``ThresholdFilter(protect_anomaly_detector=False)`` never trains its inner detector at all).

The median and the interquartile range ignore the odd wild night that a mean and standard deviation would
chase: a robust z of ``(x - median) / (IQR / 1.349)`` is a z-score for Gaussian data and stays sane for the
heavy-tailed nights real people have.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from river import stats

# IQR of a standard normal distribution: IQR / 1.349 estimates the standard deviation.
_IQR_TO_SD = 1.349


@dataclass(frozen=True, slots=True)
class Score:
    """How a value compares with the baseline it was scored against."""

    value: float
    median: float
    scale: float
    z: float  # (value - median) / scale, signed

    @property
    def delta(self) -> float:
        return self.value - self.median


class Baseline:
    """Rolling median and spread of the last ``window`` learned values.

    Parameters
    ----------
    window
        How many learned values the statistics cover.
    warmup
        Learned values needed before :meth:`score_one` answers; before that it returns ``None``.
    scale_floor
        Smallest spread assumed, in the value's unit.

    Examples
    --------
    >>> b = Baseline(window=28, warmup=3, scale_floor=1.0)
    >>> b.score_one(60.0) is None
    True
    >>> for x in (60.0, 62.0, 61.0):
    ...     b.learn_one(x)
    >>> b.median
    61.0
    >>> round(b.score_one(65.0).z, 2)
    4.0
    """

    __slots__ = ("window", "warmup", "scale_floor", "probation", "_values", "_median", "_iqr")

    def __init__(self, window: int = 28, warmup: int = 14, scale_floor: float = 1.0):
        self.window = window
        self.warmup = warmup
        self.scale_floor = scale_floor
        self.probation = 0  # values still to learn after a long gap before scoring resumes
        # One value more than the window: the one that just left it, so forget_last can bring it back.
        self._values: deque[float] = deque(maxlen=window + 1)
        self._median, self._iqr = self._fresh_statistics()

    def _fresh_statistics(self) -> tuple[stats.RollingQuantile, stats.RollingIQR]:
        return (stats.RollingQuantile(q=0.5, window_size=self.window),
                stats.RollingIQR(window_size=self.window, q_inf=0.25, q_sup=0.75))

    @property
    def ready(self) -> bool:
        """Whether the baseline has seen enough to judge a value."""
        return self.count >= self.warmup and self.probation == 0

    @property
    def count(self) -> int:
        """Values in the window."""
        return min(len(self._values), self.window)

    @property
    def median(self) -> float | None:
        return self._median.get() if self._values else None

    @property
    def scale(self) -> float:
        """Robust standard deviation, never below ``scale_floor``."""
        if not self._values:
            return self.scale_floor
        return max(self._iqr.get() / _IQR_TO_SD, self.scale_floor)

    def score_one(self, x: float) -> Score | None:
        """Compare ``x`` with the baseline without learning it; ``None`` while warming up."""
        if not self.ready:
            return None
        median = self._median.get()
        scale = self.scale
        return Score(value=x, median=median, scale=scale, z=(x - median) / scale)

    def score_or_learn(self, x: float) -> Score | None:
        """:meth:`score_one`, but while warming up (``None``) ``x`` is learned instead: a value the baseline
        cannot judge yet only teaches it.

        >>> b = Baseline(window=28, warmup=1, scale_floor=1.0)
        >>> b.score_or_learn(60.0) is None, b.count
        (True, 1)
        >>> b.score_or_learn(63.0).z, b.count
        (3.0, 1)
        """
        score = self.score_one(x)
        if score is None:
            self.learn_one(x)
        return score

    def learn_one(self, x: float) -> None:
        """Add ``x`` to the baseline. Callers only pass values they did not flag."""
        self._values.append(x)
        self._median.update(x)
        self._iqr.update(x)
        if self.probation:
            self.probation -= 1

    def forget_last(self) -> None:
        """Take back the last learned value: it turned out to be the first window of an episode.

        Rolling statistics cannot delete, so they are rebuilt from the window (28 updates, rare).
        """
        if not self._values:
            return
        self._values.pop()
        self._rebuild()

    def _rebuild(self) -> None:
        self._median, self._iqr = self._fresh_statistics()
        # Rolling quantiles depend only on the window's content, so replaying it gives identical statistics.
        for x in list(self._values)[-self.window:]:
            self._median.update(x)
            self._iqr.update(x)

    def start_probation(self, values: int) -> None:
        """After a long gap the old baseline may be stale: re-learn ``values`` values before judging."""
        self.probation = values

    def to_state(self) -> list:
        """The learned values and probation, enough to rebuild the river statistics exactly."""
        return [list(self._values), self.probation]

    @classmethod
    def from_state(cls, state: list, *, window: int, warmup: int, scale_floor: float) -> Baseline:
        values, probation = state
        baseline = cls(window=window, warmup=warmup, scale_floor=scale_floor)
        baseline._values.extend(values[-(window + 1):])
        baseline._rebuild()
        baseline.probation = probation
        return baseline
