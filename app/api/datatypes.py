"""``GET /v1/data-types``: what each data type is, for clients and the care page (public metadata, no health data).

The care page takes its chart labels, units and feature names from here instead of tables of its own.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from app.api.deps import ANY_ROLE, Principal, principal
from app.core.datatypes import DATA_TYPES, DataType
from streaming.detection.config import DetectorConfig

router = APIRouter(tags=["data types"])


class FeatureOut(BaseModel):
    name: str = Field(description="The detector feature, as alerts name it (`feature`).")
    labels: dict[str, str] = Field(description="Its name for people: language (`en`, `zh-CN`) → text.")


class ChartOut(BaseModel):
    labels: dict[str, str] = Field(description="Axis label: language → text.")
    unit: str
    bucket: str = Field(description="`1h` or `1d`: the bucket the series is charted in.")
    total: bool = Field(description="Chart the bucket's sum (the detector works on daily totals).")
    band: float = Field(description="The smallest change the detector counts for this type (0: none).")
    log: bool = Field(description="`band` is a change on a log scale (a fraction).")


class DataTypeOut(BaseModel):
    name: str = Field(description="As in readings (`metric`) and consents (`data_type`).")
    names: dict[str, str] = Field(description="Its name for people: language → text.")
    unit: str = Field(description="The canonical unit readings are stored and shown in.")
    units: list[str] = Field(description="Every unit accepted at ingest (converted to `unit`).")
    low: float = Field(description="Plausible range, canonical unit, inclusive: values outside are rejected.")
    high: float
    critical: bool = Field(description="An alert on it is a vital sign out of the person's range.")
    features: list[FeatureOut]
    chart: ChartOut
    fhir: dict[str, str] = Field(description="The Observation coding: `system`, `code`, `display`.")


class DataTypeList(BaseModel):
    data_types: list[DataTypeOut]


def _band(data_type: DataType, config: DetectorConfig) -> tuple[float, bool]:
    if data_type.name == "heart_rate":
        return config.candidate_bpm, False
    for spec in config.daily:
        if spec.metric == data_type.name:
            return spec.min_change, spec.log
    return 0.0, False


def describe(data_type: DataType, config: DetectorConfig) -> DataTypeOut:
    band, log = _band(data_type, config)
    chart = data_type.chart
    return DataTypeOut(
        name=data_type.name, names=dict(data_type.names), unit=data_type.unit, units=list(data_type.units),
        low=data_type.low, high=data_type.high, critical=data_type.critical,
        features=[FeatureOut(name=f.name, labels=dict(f.labels)) for f in data_type.features],
        chart=ChartOut(labels=dict(chart.labels), unit=chart.unit, bucket=chart.bucket, total=chart.total,
                       band=band, log=log),
        fhir={"system": data_type.fhir.system, "code": data_type.fhir.code, "display": data_type.fhir.display})


_ANSWER = DataTypeList(data_types=[describe(t, DetectorConfig()) for t in DATA_TYPES.values()])


@router.get("/v1/data-types", summary="The data types: names, units, ranges, chart labels", response_model=DataTypeList,
            description="Every data type the service knows, with its names in `en` and `zh-CN`, canonical and "
                        "accepted units, plausible range, detector features and chart label. The same for every "
                        "caller: any authenticated role may read it.", openapi_extra={ANY_ROLE: True})
async def data_types(_: Principal = Depends(principal)) -> DataTypeList:
    return _ANSWER
