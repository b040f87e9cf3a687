"""Every route of the service, by concern."""

from __future__ import annotations

from fastapi import APIRouter

from service.http import admin, files, frontend, glossaries, translate

ROUTERS: tuple[APIRouter, ...] = (translate.router, files.router, frontend.router, admin.router,
                                   glossaries.router)
