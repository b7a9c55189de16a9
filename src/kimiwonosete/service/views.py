"""A job as the API shows it, made from what DBOS recorded (the workflow's status, its ``state``
event) and the store (chunks checkpointed so far); and a stored file as a response."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from dbos import DBOS, WorkflowStatus
from fastapi import Response
from fastapi.responses import FileResponse, RedirectResponse

from kimiwonosete.pipeline.store import Store
from kimiwonosete.service.jobs import JOB_WORKFLOW, STATE, prefix

#: DBOS's statuses, as a job's state when its own event does not say more
_BY_STATUS = {"ENQUEUED": "queued", "DELAYED": "queued", "PENDING": "queued", "SUCCESS": "done", "ERROR": "failed",
              "MAX_RECOVERY_ATTEMPTS_EXCEEDED": "failed", "CANCELLED": "cancelled"}
STATES = ("queued", "downloading", "decoding", "transcribing", "scoring", "engraving", "done", "failed", "cancelled")
FINAL = ("done", "failed", "cancelled")
PRESIGNED_S = 3600  # how long a redirect to an S3 object stays valid


def _iso(ms: int | None) -> str | None:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat().replace("+00:00", "Z") if ms else None


def job_view(status: WorkflowStatus, store: Store) -> dict[str, Any]:
    """The job's state (see :data:`STATES`), timings, summary and artifact links."""
    event = DBOS.get_event(status.workflow_id, STATE, timeout_seconds=0) or {}
    state = _BY_STATUS[status.status]
    if status.status in ("PENDING", "ENQUEUED", "DELAYED") and "state" in event:
        # Running: its own event says where it is, an end too: "done" is set before the webhook is
        # sent and DBOS records the workflow's end (reading DBOS's status there gave "queued").
        state = event["state"]
    view: dict[str, Any] = {
        "id": status.workflow_id,
        "state": state,
        "created_at": _iso(status.created_at),
        "started_at": _iso(status.dequeued_at),
        "finished_at": _iso(status.completed_at) if state in FINAL else None,
        "timings_s": event.get("timings_s", {}),
        "links": {"self": f"/jobs/{status.workflow_id}", "events": f"/jobs/{status.workflow_id}/events"},
    }
    if state == "transcribing" or "chunks_total" in event:
        total = event.get("chunks_total", 0)
        done = total if state not in ("transcribing", "queued") else \
            len(store.keys(f"{prefix(status.workflow_id)}/work/chunks"))
        view["chunks"] = {"done": min(done, total), "total": total}
    if state == "failed":
        view["reason"] = event.get("reason") or " ".join(str(status.error or "the job failed").split())
        view["error"] = event.get("error", "internal")
    if state == "done":
        summary = status.output if isinstance(status.output, dict) else event.get("summary", {})
        view["summary"] = summary
        view["artifacts"] = summary.get("artifacts", {})
        view["warnings"] = summary.get("warnings", [])
    if status.input is not None:
        args = status.input["args"]
        request = args[1] if len(args) > 1 else {}
        view["options"] = {k: request.get(k) for k in ("model", "formats", "title", "start", "end")}
        view["source"] = request.get("source", {}).get("url") or "upload"
        if view["source"] == "upload":
            view["name"] = request.get("name")  # the file's name (cleaned, no suffix): what the user knows it by
    return view


def find(job_id: str) -> WorkflowStatus | None:
    status = DBOS.get_workflow_status(job_id)
    return status if status is not None and status.name == JOB_WORKFLOW else None


def page(limit: int, offset: int) -> list[WorkflowStatus]:
    """Jobs, newest first."""
    return DBOS.list_workflows(name=JOB_WORKFLOW, sort_desc=True, limit=limit, offset=offset, load_output=True)


def artifact_names(view: dict[str, Any]) -> dict[str, str]:
    """Format -> stored artifact name (``piece.pdf``, ...), from a job view's artifact links."""
    return {fmt: link.rsplit("/", 1)[-1] for fmt, link in view.get("artifacts", {}).items()}


def stored_file(store: Store, key: str, media_type: str, filename: str | None = None) -> Response:
    """A stored object as a response: the file itself from a folder store, a redirect to a
    presigned URL from S3."""
    if store.local:
        return FileResponse(f"{store.root}/{key}", media_type=media_type, filename=filename)
    return RedirectResponse(store.fs.sign(store._path(key), expiration=PRESIGNED_S), status_code=307)
