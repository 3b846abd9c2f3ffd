"""The detector's tunables, in one frozen dataclass, with the reasoning behind each default."""
from __future__ import annotations

from dataclasses import dataclass, field

from streaming.detection.fusion import MEASURES, FusionParams
from streaming.detection.operating_points import threshold_for
from app.core.datatypes import feature_of


@dataclass(frozen=True, slots=True)
class DailySpec:
    """How one daily feature is derived from a raw metric and when a change counts.

    Attributes
    ----------
    feature
        Name used in events, e.g. ``"spo2"``.
    metric
        The raw data type it derives from (consent is checked against it).
    aggregate
        How a day's readings become one value: ``"mean"``, ``"max"``, ``"min"`` or ``"sum"``.
    direction
        ``+1`` if a rise is the worrying change, ``-1`` a fall, ``0`` either.
    min_change
        Smallest change worth mentioning, in the feature's unit (a fraction if ``log``). Below it a change is
        noise however unusual it is for this person.
    label, unit
        Words for the reason sentence.
    scale_floor
        Smallest spread the baseline may assume, so a very regular person is not alerted on a rounding step.
    log
        Compare on a log scale (counts and ratios such as steps or HRV, whose spread grows with the level).
    max_tier
        ``"watch"`` for features that never justify an alert on their own (steps, sleep).
    single_day_watch
        Whether one clearly unusual day opens a watch, or only two days running do.
    min_hours
        Hours of the day with any reading a day needs to count (a watch worn for two hours has few steps).
    """

    feature: str
    metric: str
    aggregate: str
    direction: int
    min_change: float
    label: str
    unit: str
    scale_floor: float
    log: bool = False
    max_tier: str = "alert"
    single_day_watch: bool = True
    min_hours: int = 0


def _daily(metric: str, aggregate: str, min_change: float, label: str, **options) -> DailySpec:
    """The daily feature of ``metric``, its change measured as the fusion measures it (``MEASURES``)."""
    m = MEASURES[metric]
    return DailySpec(feature_of(metric), metric, aggregate, m.direction, min_change, label, m.unit, m.scale_floor,
                     log=m.log, **options)


DEFAULT_DAILY: tuple[DailySpec, ...] = (
    # Illness lowers activity; a lazy day is ordinary, so steps only ever raise a watch, two days running.
    _daily("steps", "sum", 0.5, "daily steps", max_tier="watch", single_day_watch=False, min_hours=10),
    # Resting heart rate from the device and HRV alert through the evidence fusion, with the other signals.
    _daily("resting_heart_rate", "mean", 4.0, "resting HR (device)", max_tier="watch"),
    _daily("hrv_rmssd", "mean", 0.2, "HRV (RMSSD)", max_tier="watch"),
    _daily("sleep", "sum", 90.0, "sleep", max_tier="watch", single_day_watch=False),
    # SpO2, temperature and respiratory rate alert through the fusion too (one alert per illness, not one
    # per vital sign); the alerting layer makes an alert critical when one of them is among its signals.
    _daily("spo2", "mean", 2.0, "SpO2", max_tier="watch"),
    _daily("blood_pressure", "mean", 10.0, "systolic blood pressure"),
    _daily("glucose", "mean", 20.0, "mean glucose"),
    _daily("body_temperature", "max", 0.5, "highest body temperature", max_tier="watch"),
    _daily("respiratory_rate", "mean", 2.0, "respiratory rate", max_tier="watch"),
)


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Tunables of :class:`~streaming.detection.PersonDetector`.

    The defaults follow the physiology and the published systems, not the development people: a 28-day
    personal baseline (Mishra 2020), overnight = midnight to 7 am local (NightSignal), rest = no steps for
    the previous 12 minutes (Mishra's RHR-12), an alert needs the rise to persist over two resting windows
    in a row (NightSignal's two nights).
    """

    baseline_window: int = 28
    """Learned values (nights or days) the rolling median and spread are taken over."""
    warmup: int = 14
    """Learned values a baseline needs before it may flag anything: two weeks of a person's rhythm."""
    night_hours: tuple[int, int] = (0, 7)
    """Local hours of the overnight window [start, end)."""
    day_hours: tuple[int, int] = (9, 21)
    """Local hours of the daytime resting window [start, end)."""
    rest_after_steps_min: float = 12.0
    """A heart-rate reading counts as at rest when no steps were taken in the minutes before it."""
    steps_stale_min: float = 60.0
    """Without any steps reading for this long the steps stream counts as absent: nights are then taken as
    rest and daytime windows are not assessed (rest cannot be told apart from activity)."""
    min_night_minutes: int = 180
    """Minutes with at-rest readings a night needs to be scored. Heart rate falls through the night, so an
    hour or two before the watch came off (or after it went back on) would not compare with whole nights."""
    min_day_minutes: int = 60
    """Minutes at rest the daytime window needs to be scored."""
    hr_scale_floor: float = 1.5
    """Smallest heart-rate spread (bpm) a baseline assumes."""
    candidate_z: float = 1.0
    """A window at least this many robust SDs above baseline (and ``candidate_bpm``) can confirm a rise."""
    candidate_bpm: float = 3.0
    strong_z: float = 2.0
    """A window this far above baseline (and ``strong_bpm``, NightSignal's +4) is a clear rise on its own."""
    strong_bpm: float = 4.0
    alert_combined_z: float = 3.0
    """Two neighbouring unusual windows make an alert when their combined evidence, (z1 + z2) / sqrt(2),
    reaches this: about a 1-in-750 chance per pair of windows for a person whose values only wander."""
    activity_gate_z: float = 1.0
    """A day with steps this far above the person's usual (log scale, robust z) has its daytime resting HR
    left out: exercise raises it for hours and it says nothing about illness."""
    night_activity_gate_ratio: float = 2.0
    """The night after a day with at least this many times the person's usual steps is left out: a long
    run or a hike raises the next night's heart rate by a few bpm."""
    gap_hours: float = 24.0
    """No reading at all for this long is a data gap (watch off, phone not syncing)."""
    missing_nights: int = 3
    """Nights in a row without overnight data, while the device sends data by day, before saying so."""
    missing_nights_repeat_days: float = 7.0
    """Say it again only after this many days."""
    rewarm_after_gap_days: float = 14.0
    """After a gap this long a baseline re-learns ``rewarm_values`` values before it may flag again."""
    rewarm_values: int = 3
    false_alarm_z: float = 1.5
    """Added to a feature's z thresholds while a care agent's false-alarm verdict is in force."""
    daily: tuple[DailySpec, ...] = field(default=DEFAULT_DAILY)
    """The daily features of metrics other than heart rate."""
    fusion: FusionParams = field(default_factory=FusionParams)
    """How the signals' daily evidence is combined (see ``fusion``); chosen by ``beidou evaluate``."""
    fusion_threshold: float = field(default_factory=lambda: threshold_for("standard"))
    """Accumulated evidence that raises an alert: the operating point (a tenant picks low/standard/high)."""
    min_worn_hours: int = 10
    """Hours of a day with heart rate before its steps count as evidence: inactivity is a signal only
    while the watch is worn; a day without heart rate is a gap."""
