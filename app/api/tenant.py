"""The insurer's own settings: how sensitive detection is for its people (tenant admins change it)."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import Principal, Services, services, staff
from app.core.errors import Forbidden
from streaming import settings_repository as repo
from streaming.detection.operating_points import CHOICES, table

router = APIRouter(prefix="/v1/tenant", tags=["tenant settings"])

Choice = Literal["low", "standard", "high"]


class OperatingPoint(BaseModel):
    name: Choice
    threshold: float = Field(description="Accumulated combined evidence that raises an alert.")
    expected_sensitivity: float = Field(
        description="Share of injected illnesses alerted within 3 days of their start (from `beidou evaluate`).")
    expected_alert_episodes_per_30_days: float = Field(
        description="Alert episodes per 30 healthy person-days at this point (from `beidou evaluate`).")


class DetectionSettings(BaseModel):
    operating_point: Choice = Field(description="The insurer's choice; `standard` until an admin chooses.")
    choices: list[OperatingPoint] = Field(description="Every choice with its expected sensitivity and burden.")


class DetectionSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operating_point: Choice


def _answer(choice: str) -> DetectionSettings:
    points = table()["choices"]
    return DetectionSettings(operating_point=choice, choices=[
        OperatingPoint(name=name, threshold=points[name]["threshold"],
                       expected_sensitivity=points[name]["expected_sensitivity"],
                       expected_alert_episodes_per_30_days=points[name]["expected_alert_episodes_per_30_days"])
        for name in CHOICES])


@router.get("/detection", summary="The insurer's detection operating point and what each choice means",
            response_model=DetectionSettings)
async def get_detection(who: Principal = Depends(staff), svc: Services = Depends(services)) -> DetectionSettings:
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        return _answer(await repo.operating_point(conn))


@router.put("/detection", summary="Choose the detection operating point (tenant admins)",
            response_model=DetectionSettings,
            description="`high` finds more illnesses early and raises more alerts that lead nowhere; `low` the "
                        "reverse. Applies to every person's next detection pass; stored detector state stays "
                        "valid.", responses={403: {"description": "Not a tenant admin."}})
async def put_detection(body: DetectionSettingsIn, who: Principal = Depends(staff),
                        svc: Services = Depends(services)) -> DetectionSettings:
    if who.staff.role != "tenant_admin":
        raise Forbidden("only a tenant admin can change the detection settings")
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        await repo.save_operating_point(conn, choice=body.operating_point, by=who.claims.subject)
    return _answer(body.operating_point)
