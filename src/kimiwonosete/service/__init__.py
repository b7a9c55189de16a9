"""The HTTP service: ``kimiwonosete serve`` (API and workers in one process) and ``kimiwonosete
worker`` (workers only, sharing a Postgres database and a store with the API).

config.py   what a server is told (one frozen object, no globals)
jobs.py     the job as a durable DBOS workflow: each stage a step, chunks fanned out on a queue
compute.py  where a chunk's model runs: a lasting local process pool, or Ray
views.py    a job as the API shows it: state, chunks done, timings, summary, artifact links
webhooks.py the signed POST a finished job sends
guard.py    access and limits: API keys, a per-client rate limit, a body-size cap
metrics.py  Prometheus text
logs.py     one JSON line per job, stage and chunk event
api.py      the FastAPI app (made by a factory from a config)
main.py     serve / worker: the processes
"""
