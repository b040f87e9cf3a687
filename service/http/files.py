"""File translation routes: /translate_file (LibreTranslate-compatible) and /download_file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from service.errors import (
    FilesDisabled,
    InvalidFile,
    InvalidRequest,
    NotFound,
    TooLarge,
)
from service.formats.documents import Document, FileError, FileTooLarge, parse_upload
from service.http.access import admit_caller, authorized_body
from service.http.context import ServiceDep
from service.http.options import make_options
from service.serving.markup_translation import translate_document_texts
from service.settings import Settings

router = APIRouter()


@router.post("/translate_file", summary="Translate a .txt, .html or .srt file "
             "(LibreTranslate-compatible): answers the URL to download it from",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {"type": "object", "required": [
                     "file", "source", "target"], "properties": {
                         "file": {"type": "string", "format": "binary"},
                         "source": {"type": "string"}, "target": {"type": "string"},
                         "api_key": {"type": "string"}}}}}}})
async def translate_file(request: Request, service: ServiceDep) -> dict[str, str]:
    if service.files is None:
        raise FilesDisabled("file translation is disabled on this server (set S2S_FILES_DIR)")
    body = await authorized_body(request, service, forms=True, count_chars=False)
    upload, source, target = body.get("file"), body.get("source"), body.get("target")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest("send the file as the multipart form field 'file'")
    if not (isinstance(source, str) and isinstance(target, str) and source and target):
        raise InvalidRequest("the form fields 'source' and 'target' are required")
    document = await read_upload(service.settings, upload)
    await admit_caller(service, request.state.caller, sum(map(len, document.texts)))
    options = make_options(service, None, 1)
    translations = await translate_document_texts(service, request, source, target,
                                                  document.texts, document.text_format, options)
    name = await asyncio.to_thread(service.files.save, document.rebuild(translations),
                                   upload.filename or "file", target.lower())
    return {"translatedFileUrl": str(request.url_for("download_file", name=name))}


async def read_upload(settings: Settings, upload: UploadFile) -> Document:
    """The uploaded file parsed (413 over max_file_bytes or max_file_chars, 400 otherwise)."""
    data = await upload.read(settings.max_file_bytes + 1)
    if len(data) > settings.max_file_bytes:
        raise TooLarge(f"the file is larger than {settings.max_file_bytes} bytes")
    try:
        return parse_upload(upload.filename or "", data, settings.max_file_chars)
    except FileTooLarge as error:
        raise TooLarge(str(error)) from None
    except FileError as error:
        raise InvalidFile(str(error)) from None


@router.get("/download_file/{name}", summary="A translated file, for a limited time")
async def download_file(request: Request, service: ServiceDep, name: str) -> Response:
    if service.files is None:
        raise FilesDisabled("file translation is disabled on this server")
    try:
        path, filename = await asyncio.to_thread(service.files.open, name)
        content = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise NotFound("no such file (unknown or expired)") from None
    media = MEDIA_TYPES.get(Path(filename).suffix.lower(), "application/octet-stream")
    return Response(content, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


MEDIA_TYPES = {".txt": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8",
               ".htm": "text/html; charset=utf-8", ".srt": "application/x-subrip"}


