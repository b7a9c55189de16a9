"""``GET /metrics`` in Prometheus' text format, written here: a dozen lines of text need no
client library, and its default registry is process-wide state."""

from __future__ import annotations

from collections import Counter
from typing import Any

from dbos import DBOS

from kimiwonosete.service.jobs import CHUNK_QUEUE, JOB_QUEUE, JOB_WORKFLOW, STATE
from kimiwonosete.service.views import STATES

#: finished jobs whose stage timings are summed (the newest)
RECENT = 500


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def exposition() -> str:
    jobs = DBOS.list_workflows(name=JOB_WORKFLOW, load_input=False, load_output=False)
    states: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for status in jobs:
        if status.status in ("ENQUEUED", "DELAYED"):
            states["queued"] += 1
        elif status.status == "PENDING":
            event: dict[str, Any] = DBOS.get_event(status.workflow_id, STATE, timeout_seconds=0) or {}
            states[event.get("state", "queued")] += 1
        elif status.status == "SUCCESS":
            states["done"] += 1
        elif status.status == "CANCELLED":
            states["cancelled"] += 1
        else:
            states["failed"] += 1
            event = DBOS.get_event(status.workflow_id, STATE, timeout_seconds=0) or {}
            failures[event.get("error", "internal")] += 1
    stage_sum: Counter[str] = Counter()
    stage_count: Counter[str] = Counter()
    for status in DBOS.list_workflows(name=JOB_WORKFLOW, status="SUCCESS", sort_desc=True, limit=RECENT, load_input=False):
        for stage, seconds in (status.output or {}).get("timings_s", {}).items():
            stage_sum[stage] += seconds
            stage_count[stage] += 1
    depth = Counter(s.queue_name for s in DBOS.list_queued_workflows(status="ENQUEUED", load_input=False, load_output=False))
    lines = ["# HELP kimiwonosete_jobs Jobs by state.", "# TYPE kimiwonosete_jobs gauge"]
    lines += [f'kimiwonosete_jobs{{state="{s}"}} {states[s]}' for s in STATES]
    lines += ["# HELP kimiwonosete_stage_seconds Time spent in each stage by the newest finished jobs.",
              "# TYPE kimiwonosete_stage_seconds summary"]
    for stage in sorted(stage_sum):
        lines += [f'kimiwonosete_stage_seconds_sum{{stage="{_label(stage)}"}} {stage_sum[stage]:.3f}',
                  f'kimiwonosete_stage_seconds_count{{stage="{_label(stage)}"}} {stage_count[stage]}']
    lines += ["# HELP kimiwonosete_queue_depth Workflows waiting on each queue.", "# TYPE kimiwonosete_queue_depth gauge"]
    lines += [f'kimiwonosete_queue_depth{{queue="{q}"}} {depth[q]}' for q in (JOB_QUEUE, CHUNK_QUEUE)]
    lines += ["# HELP kimiwonosete_job_failures Failed jobs by kind of reason.", "# TYPE kimiwonosete_job_failures gauge"]
    lines += [f'kimiwonosete_job_failures{{reason="{_label(r)}"}} {n}' for r, n in sorted(failures.items())]
    return "\n".join(lines) + "\n"
