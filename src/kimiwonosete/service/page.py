"""The web page ``kimiwonosete serve`` shows at ``/``, and what it needs besides the API:

- ``/`` and ``/static/{name}``: the page's own HTML, CSS and JavaScript (package data, no build
  step, nothing from another host; a Content-Security-Policy keeps it that way).
- ``/jobs/{id}/sheet`` (pages, bars and their times) and ``/jobs/{id}/sheet/{n}.svg``: the score
  engraved by verovio (:mod:`.sheet`).
- ``/jobs/{id}/audio/recording`` and ``/jobs/{id}/audio/score``: the players' audio (:mod:`.listen`).

A job makes these as its last step (:mod:`.pageview`), so they are read from its store; any that
are missing are made here when first asked for. The job endpoints need an API key when the
server has keys, as the API's do.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from kimiwonosete.service import jobs, listen, pageview, sheet
from kimiwonosete.service.guard import allowed, key_of
from kimiwonosete.service.views import artifact_names, find, job_view, stored_file

#: the page's files, by name: nothing else is served from the package
ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8",
          "index.html": "text/html; charset=utf-8"}
#: the page runs only its own scripts; audio comes from here (or, with an S3 store, the presigned URL
#: it redirects to). verovio's SVG pages carry their own <style> (stroke colours, scoped to the page's
#: id) and embed their music font as a data: URL, hence inline styles and data: fonts.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self' data:; "
       "img-src 'self' data:; media-src 'self' https:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
Layout = Literal["wide", "narrow"]


def _asset(name: str) -> bytes:
    return resources.files("kimiwonosete.service").joinpath("static", name).read_bytes()


def page_router(runtime: jobs.Runtime) -> APIRouter:
    store = runtime.store

    def authorized(request: Request) -> None:
        if not allowed(key_of(request), runtime.config.api_keys):
            raise HTTPException(401, "an API key is needed (Authorization: Bearer KEY)", {"WWW-Authenticate": "Bearer"})

    router = APIRouter()
    guarded = APIRouter(dependencies=[Depends(authorized)])

    @router.get("/", include_in_schema=False)
    def index() -> Response:
        return Response(_asset("index.html"), media_type=ASSETS["index.html"],
                        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"})

    @router.get("/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in ASSETS or name == "index.html":
            raise HTTPException(404, f"no file {name}")
        return Response(_asset(name), media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})

    def finished(job_id: str) -> dict[str, Any]:
        status = find(job_id)
        if status is None:
            raise HTTPException(404, f"no job {job_id}")
        view = job_view(status, store)
        if view["state"] != "done":
            raise HTTPException(409, f"job {job_id} is {view['state']}, not done")
        return view

    def sheet_index(job_id: str, layout: str) -> dict[str, Any]:
        found = sheet.cached(store, job_id, layout)  # a read, before the job's records and score are
        if found is not None:
            return found
        names = artifact_names(finished(job_id))
        index = pageview.sheet_index(store, job_id, names, layout, runtime.engraving)
        if index is None:
            raise HTTPException(404, f"job {job_id} made no MusicXML (its formats: {', '.join(names)})")
        return index

    @guarded.get("/jobs/{job_id}/sheet")
    async def get_sheet(job_id: str, layout: Layout = "wide") -> dict[str, Any]:
        """The engraved score's page count and bars (id, page, when the score audio and the recording
        reach it), laid out for a wide screen or a narrow one (a phone)."""
        return await run_in_threadpool(sheet_index, job_id, layout)

    @guarded.get("/jobs/{job_id}/sheet/{number}.svg")
    async def get_page(job_id: str, number: int, layout: Layout = "wide") -> Response:
        index = await run_in_threadpool(sheet_index, job_id, layout)
        if not 1 <= number <= index["pages"]:
            raise HTTPException(404, f"the score has {index['pages']} pages")
        svg = await run_in_threadpool(store.get, f"{sheet.cache_prefix(job_id, layout)}/page-{number}.svg")
        if svg is None:
            raise HTTPException(404, "the page is gone from the store")
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"})

    def audio_key(job_id: str, kind: str) -> str:
        view = finished(job_id)
        key = listen.make(store, job_id, kind, view.get("options") or {}, artifact_names(view))
        if key is None:
            raise HTTPException(404, f"job {job_id} has nothing to make its {kind} audio from")
        return key

    @guarded.get("/jobs/{job_id}/audio/{kind}")
    async def get_audio(job_id: str, kind: str) -> Response:
        """The recording (cut to start/end) or the score played, as Opus; byte ranges for seeking."""
        if kind not in listen.KINDS:
            raise HTTPException(404, f"no audio {kind}: {' or '.join(listen.KINDS)}")
        key = await run_in_threadpool(audio_key, job_id, kind)
        return stored_file(store, key, listen.CONTENT_TYPE)

    router.include_router(guarded)
    return router
