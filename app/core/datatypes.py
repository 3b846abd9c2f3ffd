"""Every data type the service knows, declared once: units, plausible range, names, FHIR coding, detector
features, criticality and chart label.

Everything else reads this table: ingest validation (``streaming.metrics``), the consent catalog and its
texts (``consent.catalog``), FHIR export (``consent.fhir``), the detector's feature names
(``streaming.detection.config``), alert severity (``alerts.policy``), the database (the ``data_types`` lookup
table that ``readings.metric`` and ``consent_events.data_type`` reference) and the web pages (through
``GET /v1/data-types``). Adding a type is one entry here, one migration inserting its row into
``data_types``, and its tests.

>>> round(DATA_TYPES["glucose"].convert(5.5, "mmol/L"), 2)
99.09
>>> round(DATA_TYPES["body_temperature"].convert(98.6, "°F"), 2)
37.0
>>> DATA_TYPES["heart_rate"].names["zh-CN"]
'心率'
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

LOINC = "http://loinc.org"
# Our own code system, for types LOINC has no exact code for (RMSSD: LOINC's 80404-7 is SDNN).
DATA_TYPE_SYSTEM = "https://health-beidou.org/fhir/CodeSystem/data-type"


def _same(x: float) -> float:
    return x


def _f_to_c(f: float) -> float:
    return (f - 32.0) * 5.0 / 9.0


def _kpa_to_mmhg(k: float) -> float:
    return k * 7.500617


def _mmol_to_mgdl(m: float) -> float:
    return m * 18.0156  # glucose molar mass 180.156 g/mol


def _h_to_min(h: float) -> float:
    return h * 60.0


def _ratio_to_percent(r: float) -> float:
    return r * 100.0


def _units(canonical: str, *aliases: str, **converters: Callable[[float], float]) -> Mapping[str, Callable]:
    table: dict[str, Callable[[float], float]] = {canonical: _same}
    table.update({a: _same for a in aliases})
    table.update(converters)
    return MappingProxyType(table)


@dataclass(frozen=True, slots=True)
class Coding:
    """How a reading of the type is coded as a FHIR Observation."""

    code: str
    display: str
    ucum: str              # UCUM code of the canonical unit
    unit: str              # the unit as shown in the Observation
    category: str          # observation category (vital-signs, activity, laboratory)
    system: str = LOINC


@dataclass(frozen=True, slots=True)
class Feature:
    """A detector feature fed by the type, with its name for people (``en``, ``zh-CN``)."""

    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Chart:
    """How the care page charts the type: axis label, unit, and bucketing."""

    labels: Mapping[str, str]
    unit: str
    bucket: str = "1h"
    total: bool = False    # plot the bucket's sum (the detector works on daily totals)


@dataclass(frozen=True, slots=True)
class DataType:
    name: str
    unit: str                                   # canonical unit we store
    low: float                                  # plausible range, canonical unit, inclusive
    high: float
    units: Mapping[str, Callable[[float], float]]  # accepted unit spelling -> converter to canonical
    description: str
    names: Mapping[str, str]                    # for people, in consent texts: language -> name
    fhir: Coding
    chart: Chart
    features: tuple[Feature, ...] = ()
    critical: bool = False                      # an alert on it is a vital sign out of the person's range
    second_range: tuple[float, float] | None = None  # blood pressure: the diastolic range

    def convert(self, value: float, unit: str | None) -> float:
        """``value`` in ``unit`` (None = canonical) to the canonical unit; KeyError for a unit not accepted."""
        return self.units[unit or self.unit](value)


def _zh_en(en: str, zh: str) -> Mapping[str, str]:
    return MappingProxyType({"en": en, "zh-CN": zh})


_BPM = ("bpm", "beats/min", "count/min", "/min")

_ALL: tuple[DataType, ...] = (
    DataType("heart_rate", "bpm", 25, 250, _units(*_BPM), "Heart rate",
             names=_zh_en("heart rate", "心率"),
             fhir=Coding("8867-4", "Heart rate", "/min", "beats/minute", "vital-signs"),
             chart=Chart(_zh_en("heart rate", "心率"), "bpm"),
             features=(Feature("overnight_rhr", _zh_en("Overnight resting heart rate", "夜间静息心率")),)),
    DataType("resting_heart_rate", "bpm", 25, 200, _units(*_BPM), "Resting heart rate as the device computes it",
             names=_zh_en("resting heart rate", "静息心率"),
             fhir=Coding("40443-4", "Heart rate --resting", "/min", "beats/minute", "vital-signs"),
             chart=Chart(_zh_en("resting heart rate", "静息心率"), "bpm"),
             features=(Feature("device_rhr", _zh_en("Resting heart rate (device)", "静息心率（设备）")),)),
    DataType("hrv_rmssd", "ms", 1, 300, _units("ms"), "Heart-rate variability (RMSSD)",
             names=_zh_en("heart-rate variability", "心率变异性"),
             fhir=Coding("hrv_rmssd", "Heart rate variability (RMSSD)", "ms", "ms", "vital-signs",
                         system=DATA_TYPE_SYSTEM),
             chart=Chart(_zh_en("HRV (RMSSD)", "心率变异性（RMSSD）"), "ms"),
             features=(Feature("hrv", _zh_en("Heart-rate variability", "心率变异性")),)),
    DataType("steps", "count", 0, 100_000, _units("count", "steps"), "Steps in the interval ending at the time",
             names=_zh_en("steps", "步数"),
             fhir=Coding("55423-8", "Number of steps in unspecified time Pedometer", "{steps}", "steps", "activity"),
             chart=Chart(_zh_en("steps", "步数"), "steps", bucket="1d", total=True),
             features=(Feature("daily_steps", _zh_en("Daily steps", "每日步数")),)),
    DataType("sleep", "min", 0, 1440, _units("min", h=_h_to_min),
             "A sleep session: time is its start; value is minutes asleep",
             names=_zh_en("sleep", "睡眠"),
             fhir=Coding("93832-4", "Sleep duration", "min", "min", "activity"),
             chart=Chart(_zh_en("sleep", "睡眠"), "min", bucket="1d", total=True),
             features=(Feature("sleep_duration", _zh_en("Sleep duration", "睡眠时长")),)),
    DataType("spo2", "%", 50, 100, _units("%", "percent", ratio=_ratio_to_percent), "Blood oxygen saturation",
             names=_zh_en("blood oxygen", "血氧饱和度"),
             fhir=Coding("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", "%", "vital-signs"),
             chart=Chart(_zh_en("SpO2", "血氧"), "%"),
             features=(Feature("spo2", _zh_en("Blood oxygen (SpO2)", "血氧饱和度")),), critical=True),
    DataType("blood_pressure", "mmHg", 40, 300, _units("mmHg", kPa=_kpa_to_mmhg),
             "Blood pressure: systolic and diastolic",
             names=_zh_en("blood pressure", "血压"),
             fhir=Coding("85354-9", "Blood pressure panel with all children optional", "mm[Hg]", "mmHg",
                         "vital-signs"),
             chart=Chart(_zh_en("systolic blood pressure", "收缩压"), "mmHg"),
             features=(Feature("blood_pressure", _zh_en("Blood pressure", "血压")),), critical=True,
             second_range=(20.0, 200.0)),
    DataType("glucose", "mg/dL", 10, 1000, _units("mg/dL", "mg/dl", **{"mmol/L": _mmol_to_mgdl,
                                                                        "mmol/l": _mmol_to_mgdl}),
             "Blood glucose",
             names=_zh_en("blood glucose", "血糖"),
             fhir=Coding("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", "mg/dL", "laboratory"),
             chart=Chart(_zh_en("glucose", "血糖"), "mg/dL"),
             features=(Feature("glucose", _zh_en("Blood glucose", "血糖")),), critical=True),
    DataType("body_temperature", "°C", 30, 45,
             _units("°C", "C", "degC", "celsius", **{"°F": _f_to_c, "F": _f_to_c, "degF": _f_to_c}),
             "Body temperature",
             names=_zh_en("body temperature", "体温"),
             fhir=Coding("8310-5", "Body temperature", "Cel", "°C", "vital-signs"),
             chart=Chart(_zh_en("body temperature", "体温"), "°C"),
             features=(Feature("body_temperature", _zh_en("Body temperature", "体温")),), critical=True),
    DataType("respiratory_rate", "/min", 3, 80, _units("/min", "breaths/min", "brpm"), "Respiratory rate",
             names=_zh_en("breathing rate", "呼吸频率"),
             fhir=Coding("9279-1", "Respiratory rate", "/min", "breaths/minute", "vital-signs"),
             chart=Chart(_zh_en("respiratory rate", "呼吸频率"), "/min"),
             features=(Feature("respiratory_rate", _zh_en("Respiratory rate", "呼吸频率")),), critical=True),
    DataType("hrv_sdnn", "ms", 1, 300, _units("ms"), "Heart-rate variability (SDNN), as Apple Health reports it",
             names=_zh_en("heart-rate variability (SDNN)", "心率变异性（SDNN）"),
             fhir=Coding("80404-7", "R-R interval.standard deviation (Heart rate variability)", "ms", "ms",
                         "vital-signs"),
             chart=Chart(_zh_en("HRV (SDNN)", "心率变异性（SDNN）"), "ms")),
)

DATA_TYPES: Mapping[str, DataType] = MappingProxyType({t.name: t for t in _ALL})
"""Data type name -> :class:`DataType`, in a fixed order (the order pages and consent lists show)."""

NAMES: tuple[str, ...] = tuple(DATA_TYPES)


def feature_of(data_type: str) -> str:
    """The one detector feature ``data_type`` feeds (KeyError/IndexError if it feeds none).

    >>> feature_of("steps")
    'daily_steps'
    """
    return DATA_TYPES[data_type].features[0].name


def critical_features() -> frozenset[str]:
    """Features whose alerts are a vital sign out of the person's range.

    >>> sorted(critical_features())[:2]
    ['blood_pressure', 'body_temperature']
    """
    return frozenset(f.name for t in _ALL if t.critical for f in t.features)


assert all(set(t.names) == set(t.chart.labels) == {"en", "zh-CN"} for t in _ALL)
assert all(t.unit in t.units for t in _ALL)
