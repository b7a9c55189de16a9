"""The ``kimiwonosete`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from kimiwonosete.errors import KimiError
from kimiwonosete.examples import write_example
from kimiwonosete.pipeline.progress import default_reporter
from kimiwonosete.pipeline.run import FORMATS, safe_stem, transcribe
from kimiwonosete.pipeline.workfolder import default_root
from kimiwonosete.score.build import DEFAULT_MODEL, SCORE_MODELS
from kimiwonosete.sources.links import (
    DOWNLOAD_TIMEOUT_S,
    MAX_BYTES,
    MAX_DURATION_S,
    LinkOptions,
    default_cache,
    is_link,
    playlist_links,
)
from kimiwonosete.transcription import BACKENDS, DEFAULT_BACKEND, DEVICES
from kimiwonosete.transcription.chunks import CHUNK_S


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kimiwonosete", description="Piano recordings to sheet music.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("transcribe", help="transcribe an audio or video file, or a link, into a score")
    t.add_argument("input", help="audio or video file (WAV, FLAC, MP3, OGG, M4A, MP4, ...), a MIDI performance, "
                                 "or a link (YouTube or any site yt-dlp supports, or a direct link to a media file)")
    t.add_argument("-o", "--outdir", type=Path, default=Path("."), help="output folder (default: .)")
    t.add_argument("--model", choices=BACKENDS, default=DEFAULT_BACKEND, help="transcription model")
    t.add_argument("--score-model", choices=SCORE_MODELS, default=DEFAULT_MODEL,
                   help="how beats, bars, metre and staves are read: the trained model (default) or the rules")
    t.add_argument("--device", choices=DEVICES, default="auto",
                   help="where transkun runs: a CUDA GPU when torch sees one (auto), or cpu/cuda")
    t.add_argument("--formats", default=",".join(FORMATS),
                   help=f"comma-separated outputs among {','.join(FORMATS)} (default: all)")
    t.add_argument("--title", help="score title (default: the input file's name)")
    t.add_argument("--executor", default="local", metavar="local|ray|ray://HOST:PORT",
                   help="where chunks are transcribed: a local process pool (default), a local Ray instance "
                        "(or the cluster in RAY_ADDRESS), or a Ray cluster")
    t.add_argument("--workers", type=int, help="parallel workers (default: one per core; one for a GPU)")
    t.add_argument("--chunk-seconds", type=float, default=CHUNK_S,
                   help=f"seconds of audio per chunk (default: {CHUNK_S:g})")
    t.add_argument("--resume", action="store_true",
                   help="re-use the chunks an interrupted run of the same input already finished")
    t.add_argument("--workdir", type=Path,
                   help=f"where jobs keep decoded audio and finished chunks until done (default: {default_root()})")
    t.add_argument("--start", type=seconds, default=0.0, metavar="TIME", help="take the recording from here (s or m:ss)")
    t.add_argument("--end", type=seconds, metavar="TIME", help="take the recording up to here (s or m:ss)")
    links = t.add_argument_group("links")
    links.add_argument("--cookies", type=Path, metavar="FILE",
                       help="Netscape-format cookies file, for videos that need a login (never copied into outputs)")
    links.add_argument("--max-duration", type=float, default=MAX_DURATION_S / 60, metavar="MIN",
                       help=f"refuse recordings longer than this, before downloading (default: {MAX_DURATION_S / 60:g} min)")
    links.add_argument("--max-download-mb", type=float, default=MAX_BYTES / 1e6, metavar="MB",
                       help=f"stop downloads larger than this (default: {MAX_BYTES / 1e6:.0f} MB)")
    links.add_argument("--download-timeout", type=float, default=DOWNLOAD_TIMEOUT_S, metavar="S",
                       help=f"stop downloads taking longer than this (default: {DOWNLOAD_TIMEOUT_S:.0f} s)")
    links.add_argument("--playlist", action="store_true", help="a playlist or channel link: make a score of each item")
    links.add_argument("--no-cache", action="store_true", help=f"download again even if cached in {default_cache()}")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    t.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    for name, text in (("serve", "run the HTTP service: the API and its workers in one process"),
                       ("worker", "run workers only, for a server whose database (Postgres) and storage they share")):
        _service_options(sub.add_parser(name, help=text), serve=name == "serve")
    e = sub.add_parser("example", help="write a short example recording (a public-domain minuet)")
    e.add_argument("output", type=Path, help="file to write (.flac, .wav, .mp3, ...)")
    return parser


def _service_options(p: argparse.ArgumentParser, serve: bool) -> None:
    if serve:
        p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
        p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--data-dir", type=Path, default=Path("kimiwonosete-data"),
                   help="the embedded database, the store and the webhook secret (default: ./kimiwonosete-data)")
    p.add_argument("--database", metavar="URL", help="sqlite:///FILE (default: in --data-dir) or postgresql://USER@HOST/DB")
    p.add_argument("--storage", metavar="URL", help="a folder or s3://bucket/prefix (default: --data-dir/store)")
    p.add_argument("--workers", type=int, default=None,
                   help="chunk workers in this process (default: one per core" + ("; 0: the API only)" if serve else ")"))
    p.add_argument("--executor", default="local", metavar="local|ray|ray://HOST:PORT", help="where chunks are computed")
    p.add_argument("--executor-id", help="this process' name in the database: a restarted process with the same "
                                         "name resumes its unfinished jobs (default: serve-HOST / worker-HOST)")
    p.add_argument("--chunk-seconds", type=float, default=CHUNK_S, help=f"seconds of audio per chunk (default: {CHUNK_S:g})")
    p.add_argument("--api-key", action="append", default=[], metavar="KEY",
                   help="require this key (repeatable; also KIMIWONOSETE_API_KEYS, comma-separated)")
    p.add_argument("--allow-private-urls", action="store_true",
                   help="let links and webhooks reach private and loopback addresses (also KIMIWONOSETE_ALLOW_PRIVATE_URLS=1)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest upload (default: 200 MB)")
    p.add_argument("--max-duration", type=float, default=60.0, metavar="MIN", help="longest recording (default: 60 min)")
    p.add_argument("--rate-limit", type=int, default=30, metavar="N", help="job submissions per client per minute (0: none)")
    p.add_argument("--log-format", choices=("text", "json"), default="text", help="event log lines on stderr")


def _service(args: argparse.Namespace) -> int:
    import os
    import socket

    try:
        from kimiwonosete.service import main as service
        from kimiwonosete.service.config import ALLOW_PRIVATE_ENV, API_KEYS_ENV, WEBHOOK_SECRET_ENV, ServiceConfig, env_flag
    except ImportError as exc:
        raise KimiError(f"the service needs its extra: pip install 'kimiwonosete[service]' ({exc})") from None
    from kimiwonosete.pipeline.executors import cpu_count

    keys = tuple(args.api_key) + tuple(k.strip() for k in os.environ.get(API_KEYS_ENV, "").split(",") if k.strip())
    workers = args.workers if args.workers is not None else cpu_count()
    config = ServiceConfig(
        data_dir=args.data_dir, database_url=args.database, storage_url=args.storage, workers=workers,
        job_slots=max(2, 2 * workers), executor=args.executor, api_keys=keys,
        allow_private_urls=args.allow_private_urls or env_flag(ALLOW_PRIVATE_ENV),
        max_upload_bytes=int(args.max_upload_mb * 1e6), max_duration_s=args.max_duration * 60,
        rate_limit_per_min=args.rate_limit, chunk_s=args.chunk_seconds, webhook_secret=os.environ.get(WEBHOOK_SECRET_ENV),
        log_format=args.log_format, executor_id=args.executor_id or f"{args.command}-{socket.gethostname()}",
    )
    if args.command == "serve":
        service.serve(config, args.host, args.port)
    else:
        service.work(config)
    return 0


def seconds(text: str) -> float:
    """``90``, ``1:30`` or ``0:01:30`` -> 90.0 seconds.

    >>> seconds("1:30"), seconds("0:01:30.5"), seconds("12")
    (90.0, 90.5, 12.0)
    """
    try:
        value = 0.0
        for part in text.split(":"):
            value = value * 60 + float(part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (use seconds or m:ss)") from None
    if value < 0 or len(text.split(":")) > 3:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (use seconds or m:ss)")
    return value


def _link_options(args: argparse.Namespace) -> LinkOptions:
    if args.max_duration <= 0 or args.max_download_mb <= 0 or args.download_timeout <= 0:
        raise KimiError("--max-duration, --max-download-mb and --download-timeout must be positive")
    return LinkOptions(cookies=args.cookies, max_duration_s=args.max_duration * 60, max_bytes=int(args.max_download_mb * 1e6),
                       download_timeout_s=args.download_timeout, cache=None if args.no_cache else default_cache())


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "example":
            print(write_example(args.output))
            return 0
        if args.command in ("serve", "worker"):
            return _service(args)
        reporter = default_reporter(quiet=args.quiet or args.json)
        options = _link_options(args)
        if args.playlist and is_link(args.input):
            # Numbered names keep items apart (and in order) even when their titles are alike.
            items = playlist_links(args.input, options)
            inputs = [(link, f"{i:02d}-{safe_stem(title)}") for i, (link, title) in enumerate(items, start=1)]
        else:
            inputs = [(args.input, None)]
        results = [
            transcribe(item, args.outdir, model=args.model, device=args.device, formats=args.formats, title=args.title,
                       reporter=reporter, executor=args.executor, workers=args.workers, chunk_s=args.chunk_seconds,
                       resume=args.resume, workdir=args.workdir, start=args.start, end=args.end, links=options, stem=stem,
                       score_model=args.score_model)
            for item, stem in inputs
        ]
    except KimiError as exc:
        print(f"kimiwonosete: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kimiwonosete: interrupted", file=sys.stderr)
        return 130
    if args.json:
        summaries = [r.summary() for r in results]
        print(json.dumps(summaries if args.playlist else summaries[0], indent=2))
    elif not args.quiet:
        for result in results:
            for path in result.artifacts.values():
                print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
