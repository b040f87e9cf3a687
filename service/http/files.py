"""File translation routes: /translate_file (LibreTranslate-compatible) and /download_file."""

from __future__ import annotations

import asyncio
import errno
import logging
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from service.errors import (
    FilesDisabled,
    InvalidFile,
    InvalidRequest,
    NotFound,
    StorageFull,
    TooLarge,
)
from service.formats.documents import Document, FileError, FileTooLarge, parse_upload
from service.http.access import admit_caller, authorized_body
from service.http.context import ServiceDep
from service.http.options import make_options
from service.serving.markup_translation import AUTO, check_pair, translate_document_texts
from service.serving.pipeline import caller_of, check_upload_wait
from service.settings import Settings

router = APIRouter()
log = logging.getLogger("service")
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


@router.post("/translate_file", summary="Translate a .txt, .html, .srt, .docx, .pptx, .odt, "
             ".odp or .epub file (LibreTranslate-compatible): answers the URL to download it "
             "from",
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
    check_pair(service.registry, source, target)  # before any parsing: 404/503 at once
    size = upload.size or 0
    if source.lower() != AUTO:   # overload refuses most files unparsed, from their size
        check_upload_wait(service.registry, source, target, caller_of(request), size)
    document = await read_upload(service.settings, upload)
    await admit_caller(service, request.state.caller, sum(map(len, document.texts)))
    options = make_options(service, None, 1)
    translations = await translate_document_texts(service, request, source, target,
                                                  document.texts, document.text_format, options,
                                                  size)
    rebuilt = await asyncio.to_thread(document.rebuild, translations, target.lower())
    name = await save_file(service.files, rebuilt, upload.filename or "file", target.lower())
    return {"translatedFileUrl": download_url(service.settings, request, name)}


async def save_file(files, data: bytes, filename: str, target: str) -> str:
    """The stored file's name; 503 (Retry-After) when the disk is full or over quota, or the
    folder cannot be written; 413 over max_stored_file_bytes."""
    try:
        return await asyncio.to_thread(files.save, data, filename, target)
    except FileTooLarge:
        raise TooLarge(f"the translated file is larger than the server keeps "
                       f"(max_stored_file_bytes={files.max_bytes})") from None
    except OSError as error:
        if error.errno in FULL_DISK:
            log.error("cannot store a translated file: %s", error)
            raise StorageFull("the server's disk for translated files is full; retry "
                              "later") from None
        log.error("cannot store a translated file: %s", error)
        raise StorageFull("the server cannot store the translated file now; retry "
                          "later") from None


def download_url(settings: Settings, request: Request, name: str) -> str:
    """The download URL: under ``public_url`` when set, else relative to this server (never
    built from the request's Host header, which the client chooses)."""
    path = request.app.url_path_for("download_file", name=name)
    if settings.public_url:
        return settings.public_url.rstrip("/") + path
    return request.scope.get("root_path", "").rstrip("/") + path


async def read_upload(settings: Settings, upload: UploadFile) -> Document:
    """The uploaded file parsed off the event loop (decoding, cutting, unzipping office
    files); 413 over max_file_bytes or max_file_chars, 400 otherwise."""
    data = await upload.read(settings.max_file_bytes + 1)
    if len(data) > settings.max_file_bytes:
        raise TooLarge(f"the file is larger than the limit of max_file_bytes="
                       f"{settings.max_file_bytes} bytes")
    try:
        return await asyncio.to_thread(parse_upload, upload.filename or "", data,
                                       settings.max_file_chars)
    except FileTooLarge as error:
        raise TooLarge(f"{error} (max_file_chars={settings.max_file_chars})") from None
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
    return Response(content, media_type=media, headers=DOWNLOAD_HEADERS | {
        "Content-Disposition": f'attachment; filename="{filename}"'})


# A translated file is the user's content: saved, never rendered or sniffed in the server's
# origin (an HTML file with scripts opened here would run as the service's page).
DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
                    "Cache-Control": "private, no-store"}


MEDIA_TYPES = {".txt": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8",
               ".htm": "text/html; charset=utf-8", ".srt": "application/x-subrip",
               ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
               ".pptx": "application/vnd.openxmlformats-officedocument.presentationml."
                        "presentation",
               ".odt": "application/vnd.oasis.opendocument.text",
               ".odp": "application/vnd.oasis.opendocument.presentation",
               ".epub": "application/epub+zip"}


