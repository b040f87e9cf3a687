"""How a handler gets the Service: ``service: ServiceDep`` in its signature."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.state import Service


async def service_of(request: Request) -> Service:
    """Async, so FastAPI calls it on the event loop (a plain function would cost a trip
    through its thread pool on every request)."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(service_of)]
