"""The HTTP API (OpenAPI at ``/docs``), made by :func:`create_app` from a config and the started
job runtime: no module state.

``POST /jobs`` (a link as JSON, or a multipart upload) → ``202`` + ``Location``; ``GET /jobs``,
``GET /jobs/{id}``, ``GET /jobs/{id}/events`` (server-sent events), ``GET
/jobs/{id}/artifacts/{name}``, ``DELETE /jobs/{id}``, ``GET /health``, ``GET /metrics``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from dbos import DBOS
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from kimiwonosete.engrave.text import clean_text
from kimiwonosete.pipeline.run import safe_stem
from kimiwonosete.pipeline.stages import FORMATS
from kimiwonosete.service import jobs
from kimiwonosete.service.guard import BodyLimit, RateLimit, allowed, key_of, too_large
from kimiwonosete.service.metrics import exposition
from kimiwonosete.service.page import page_router
from kimiwonosete.service.views import FINAL, artifact_names, find, job_view, page, stored_file
from kimiwonosete.service.webhooks import WebhookRefused
from kimiwonosete.service.webhooks import check_url as check_webhook
from kimiwonosete.sources.links import LinkError

CONTENT_TYPES = {"pdf": "application/pdf", "ly": "text/x-lilypond; charset=utf-8",
                 "musicxml": "application/vnd.recordare.musicxml+xml", "mid": "audio/midi", "performance": "audio/midi"}
Format = Literal["pdf", "ly", "musicxml", "mid", "performance"]
#: a JSON request's body is small; uploads have the server's own cap
MAX_JSON_BYTES = 64_000
EVENT_POLL_S = 0.5
HEARTBEAT_S = 15.0


class JobOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Literal["transkun", "basic-pitch"] = "transkun"
    score_model: Literal["learned", "heuristic"] = "learned"
    formats: list[Format] = Field(default_factory=lambda: list(FORMATS), min_length=1)
    title: str | None = Field(None, max_length=300)
    start: float = Field(0.0, ge=0)
    end: float | None = Field(None, gt=0)
    webhook_url: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _span(self) -> JobOptions:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must come after start")
        return self


class LinkJob(JobOptions):
    """A job on a link: ``youtube_url`` or ``url`` (any page yt-dlp supports, or a media file)."""

    url: str | None = Field(None, max_length=2000)
    youtube_url: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _one_link(self) -> LinkJob:
        if (self.url is None) == (self.youtube_url is None):
            raise ValueError("give one of url and youtube_url (or upload a file as multipart form data)")
        return self


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(422, message)


def _digest(options: dict[str, Any], content: str) -> str:
    return hashlib.sha256(json.dumps({"options": options, "content": content}, sort_keys=True).encode()).hexdigest()


def create_app(runtime: jobs.Runtime) -> FastAPI:
    config, store = runtime.config, runtime.store
    limit = RateLimit(config.rate_limit_per_min)
    submitting = asyncio.Lock()  # an Idempotency-Key's check and its job's creation, one at a time

    def authorized(request: Request) -> None:
        if not allowed(key_of(request), config.api_keys):
            raise HTTPException(401, "an API key is needed (Authorization: Bearer KEY)", {"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="KimiWoNosete", summary="Piano recordings to sheet music", version="1")
    api = APIRouter(dependencies=[Depends(authorized)])  # everything but /health needs a key, if keys are set

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "workers": config.workers, "executor_id": config.executor_id}

    @api.post("/jobs", status_code=202)
    async def create_job(request: Request) -> JSONResponse:
        client = key_of(request) or (request.client.host if request.client else "?")
        wait = limit.take(client)
        if wait:
            raise HTTPException(429, f"too many jobs: try again in {wait:.0f} s", {"Retry-After": str(int(wait) + 1)})
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        upload: UploadFile | None = None
        if kind == "application/json":
            body = await request.body()
            if len(body) > MAX_JSON_BYTES:
                raise HTTPException(413, "the request is too large")
            try:
                asked = LinkJob.model_validate_json(body)
            except ValidationError as exc:
                raise _unprocessable(_first_error(exc)) from None
            link = asked.url or asked.youtube_url
            assert link is not None
            try:
                runtime.policy.check_url(link)
            except LinkError as exc:
                raise _unprocessable(str(exc)) from None
            options = asked.model_dump(exclude={"url", "youtube_url"})
            source: dict[str, Any] = {"kind": "url", "url": link}
            name, digest = "recording", _digest(options, link)
        elif kind == "multipart/form-data":
            form = await request.form(max_files=1, max_fields=20)
            upload = form.get("file")  # type: ignore[assignment]
            if not isinstance(upload, UploadFile):
                raise _unprocessable("the multipart form needs a file field named 'file'")
            fields = {k: v for k, v in form.items() if k != "file" and isinstance(v, str) and v != ""}
            if "formats" in fields:
                fields["formats"] = [f.strip() for f in fields["formats"].split(",") if f.strip()]  # type: ignore[assignment]
            try:
                options = JobOptions.model_validate(fields).model_dump()
            except ValidationError as exc:
                raise _unprocessable(_first_error(exc)) from None
            content, size = await run_in_threadpool(_hash_file, upload)
            if size > config.max_upload_bytes:
                raise HTTPException(413, too_large(config.max_upload_bytes))
            if not size:
                raise _unprocessable("the upload is empty")
            source = {"kind": "upload"}
            # The upload's name is only ever a default title (escaped where it is engraved).
            name = clean_text((upload.filename or "").rsplit("/", 1)[-1].rsplit(".", 1)[0])[:200] or "recording"
            digest = _digest(options, content)
        else:
            raise HTTPException(415, "send JSON ({\"url\": ...}) or multipart/form-data with a file")
        if options["webhook_url"]:
            try:
                await run_in_threadpool(check_webhook, options["webhook_url"], runtime.policy)
            except WebhookRefused as exc:
                raise _unprocessable(str(exc)) from None
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= 255:
            raise _unprocessable("Idempotency-Key: 1 to 255 characters")
        job_id = "k" + hashlib.sha256(f"{client}\0{key}".encode()).hexdigest()[:31] if key else uuid.uuid4().hex
        async with submitting:
            existing = await run_in_threadpool(find, job_id)
            if existing is not None:
                earlier = existing.input["args"][1] if existing.input else {}
                if earlier.get("digest") != digest:
                    raise _unprocessable("this Idempotency-Key was used for another request")
            else:
                if upload is not None:
                    source.update(await run_in_threadpool(_store_upload, store, job_id, upload))
                request_ = jobs.new_request(source, options, name)
                request_["digest"] = digest
                await run_in_threadpool(jobs.submit, job_id, request_)
            status = await run_in_threadpool(find, job_id)
        assert status is not None
        view = await run_in_threadpool(job_view, status, store)
        return JSONResponse(view, status_code=202 if existing is None else 200, headers={"Location": f"/jobs/{job_id}"})

    @api.get("/jobs")
    def list_jobs(limit: int = Query(20, ge=1, le=100), offset: int = Query(0, ge=0)) -> dict[str, Any]:
        found = page(limit + 1, offset)
        more = len(found) > limit
        return {"jobs": [job_view(s, store) for s in found[:limit]], "limit": limit, "offset": offset,
                "next": f"/jobs?limit={limit}&offset={offset + limit}" if more else None}

    def _status(job_id: str):  # type: ignore[no-untyped-def]
        status = find(job_id)
        if status is None:
            raise HTTPException(404, f"no job {job_id}")
        return status

    @api.get("/jobs/{job_id}")
    def get_job(job_id: str) -> dict[str, Any]:
        return job_view(_status(job_id), store)

    @api.get("/jobs/{job_id}/events", response_class=StreamingResponse)
    async def job_events(job_id: str, request: Request) -> StreamingResponse:
        await run_in_threadpool(_status, job_id)

        async def stream() -> AsyncIterator[str]:
            last: dict[str, Any] | None = None
            number, quiet = 0, 0.0
            while not await request.is_disconnected():
                status = await run_in_threadpool(find, job_id)
                if status is None:
                    yield f"event: deleted\ndata: {json.dumps({'id': job_id})}\n\n"
                    return
                view = await run_in_threadpool(job_view, status, store)
                if view != last:
                    number += 1
                    yield f"id: {number}\nevent: state\ndata: {json.dumps(view)}\n\n"
                    last, quiet = view, 0.0
                if view["state"] in FINAL:
                    return
                await asyncio.sleep(EVENT_POLL_S)
                quiet += EVENT_POLL_S
                if quiet >= HEARTBEAT_S:
                    yield ": still working\n\n"
                    quiet = 0.0

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @api.get("/jobs/{job_id}/artifacts/{name}")
    def artifact(job_id: str, name: str) -> Response:
        view = job_view(_status(job_id), store)
        names = {name: fmt for fmt, name in artifact_names(view).items()}
        if name not in names:
            raise HTTPException(404, f"job {job_id} has no artifact {name}" + ("" if view["state"] == "done" else
                                                                                 f" (it is {view['state']})"))
        fmt, key = names[name], jobs.artifact_key(job_id, name)
        title = (view.get("options") or {}).get("title") or ((view.get("summary") or {}).get("link") or {}).get("title")
        download = safe_stem(title) + FORMATS[fmt] if title else name
        return stored_file(store, key, CONTENT_TYPES[fmt], download)

    @api.delete("/jobs/{job_id}", status_code=204)
    def delete_job(job_id: str) -> Response:
        status = _status(job_id)
        if status.status in ("ENQUEUED", "PENDING", "DELAYED"):
            DBOS.cancel_workflow(job_id, cancel_children=True)
        DBOS.delete_workflow(job_id, delete_children=True)
        store.remove(jobs.prefix(job_id))
        return Response(status_code=204)

    @api.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    app.include_router(api)
    app.include_router(page_router(runtime))  # the web page at / and its score and audio (page.py)
    return app


def asgi(runtime: jobs.Runtime) -> Any:
    """The app behind the body cap: no request body larger than the upload cap is read."""
    return BodyLimit(create_app(runtime), runtime.config.max_upload_bytes)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "__root__")
    return f"{where}: {error['msg']}" if where else str(error["msg"]).removeprefix("Value error, ")


def _hash_file(upload: UploadFile) -> tuple[str, int]:
    upload.file.seek(0)
    digest, size = hashlib.sha256(), 0
    while block := upload.file.read(1 << 20):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def _store_upload(store: Any, job_id: str, upload: UploadFile) -> dict[str, Any]:
    upload.file.seek(0)
    key, midi = jobs.upload_key(job_id, upload.file.read(4))
    upload.file.seek(0)
    with store.writer(key) as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)
    return {"key": key, "midi": midi}
