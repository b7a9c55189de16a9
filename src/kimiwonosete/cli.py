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
from kimiwonosete.pipeline.run import FORMATS, transcribe
from kimiwonosete.pipeline.workfolder import default_root
from kimiwonosete.transcription import BACKENDS, DEFAULT_BACKEND, DEVICES
from kimiwonosete.transcription.chunks import CHUNK_S


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kimiwonosete", description="Piano recordings to sheet music.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("transcribe", help="transcribe an audio or video file into a score")
    t.add_argument("input", type=Path, help="audio or video file (WAV, FLAC, MP3, OGG, M4A, MP4, ...) or a MIDI performance")
    t.add_argument("-o", "--outdir", type=Path, default=Path("."), help="output folder (default: .)")
    t.add_argument("--model", choices=BACKENDS, default=DEFAULT_BACKEND, help="transcription model")
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
    t.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    t.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    e = sub.add_parser("example", help="write a short example recording (a public-domain minuet)")
    e.add_argument("output", type=Path, help="file to write (.flac, .wav, .mp3, ...)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "example":
            print(write_example(args.output))
            return 0
        reporter = default_reporter(quiet=args.quiet or args.json)
        result = transcribe(args.input, args.outdir, model=args.model, device=args.device, formats=args.formats,
                            title=args.title, reporter=reporter, executor=args.executor, workers=args.workers,
                            chunk_s=args.chunk_seconds, resume=args.resume, workdir=args.workdir)
    except KimiError as exc:
        print(f"kimiwonosete: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kimiwonosete: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result.summary(), indent=2))
    elif not args.quiet:
        for path in result.artifacts.values():
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
