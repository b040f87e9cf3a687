"""Operations: liveness, readiness, Prometheus metrics and model reload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from service.errors import (
    ReloadFailed,
)
from service.http.context import ServiceDep
from service.http.security import check_admin_key, check_metrics_key

router = APIRouter()


@router.head("/health", include_in_schema=False)
@router.get("/health", summary="Liveness: 200 while the process runs")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.head("/ready", include_in_schema=False)
@router.get("/ready", summary="Readiness: 200 while at least one pair serves; per-pair states")
async def ready(request: Request, service: ServiceDep) -> JSONResponse:
    state = service.registry.readiness()
    if state["ready"]:
        return JSONResponse({"status": "ready", **state})
    return JSONResponse({"status": "not ready", **state}, status_code=503,
                        headers={"Retry-After": str(service.settings.retry_after_s)})


@router.get("/metrics", summary="Prometheus metrics (with a key when metrics_api_key is set)")
async def metrics(request: Request, service: ServiceDep) -> Response:
    check_metrics_key(service.settings, request)
    return Response(service.metrics.render(), media_type=service.metrics.content_type)


@router.post("/admin/reload", summary="Reload new or changed model files (SIGHUP does the "
             "same); needs the admin key")
async def reload(request: Request, service: ServiceDep, force: bool = False
                 ) -> dict[str, Any]:
    check_admin_key(service.settings, request)
    report = await service.registry.reload(force=force)
    answer = {"loaded": report.loaded, "unchanged": report.unchanged,
              "removed": report.removed, "failed": report.failed}
    if report.failed:
        reasons = "; ".join(f"{pair}: {reason}" for pair, reason in report.failed.items())
        raise ReloadFailed(f"reload failed for {reasons} (the previous models keep serving)",
                           extra={"report": answer})
    return answer


