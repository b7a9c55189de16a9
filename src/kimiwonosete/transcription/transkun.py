"""The default backend: Transkun 2.0 (Yan & Duan, MIT licence), weights from the installed wheel.

Transkun's own command line needs ``pkg_resources`` and ``torchaudio``; neither is needed to run
the model, so the network is built here from ``transkun.ModelTransformer`` directly.

Inference is Transkun's own code (its window loop, attribute heads and note merging) with three
parts replaced by faster equivalents that compute the same values: the attention (fused, see
``_attention``), the interval scores (only the half the decoder reads, ``_process_frames``) and
the semi-CRF decode (NumPy over all pitches, ``IntervalDecoder``). With ``hop_s=8.0`` the notes
equal stock Transkun's; the default hop needs 1.75x fewer windows (see ``HOP_S``).
"""

from __future__ import annotations

import json
import math
import sys
import threading
import types
from collections.abc import Callable
from contextvars import ContextVar
from functools import cache
from importlib import metadata, resources
from typing import TYPE_CHECKING

import numpy as np

from kimiwonosete.errors import KimiError, ToolError
from kimiwonosete.notes import Note, Pedal, Performance
from kimiwonosete.transcription.base import ProgressFn

if TYPE_CHECKING:
    import torch

SAMPLE_RATE = 44100
WEIGHTS = "2.0.pt"
CONF = "2.0.conf"
SUSTAIN_PITCH = -64
SEGMENT_S = 16.0  # the window the model was trained on: shorter ones lose much accuracy
#: Hop between windows. Transkun's own default is 8 s (every frame computed twice). On the 27
#: MAPS clips (first 30 s) onset F1 against the truth was 0.8806 at 8 s, 0.8804 at 14 s and
#: 0.8776 at 16 s (no overlap); 14 s needs 1.75x fewer windows than 8 s on long recordings.
#: ``8.0`` gives stock Transkun's windows, hence its notes.
HOP_S = 14.0
MEL_BUFFER = "freq2mels"
#: Rows of interval scores computed per matrix product (only begin <= end is needed).
SCORE_BLOCK = 128


def _fake_torchaudio() -> types.ModuleType:
    """A stand-in for the one torchaudio call Transkun makes while building its mel layer.

    That call only initialises a buffer (``freq2mels``) which the checkpoint then overwrites;
    ``load_model`` checks that the checkpoint really carries it.
    """
    import torch

    mod = types.ModuleType("torchaudio")
    functional = types.ModuleType("torchaudio.functional")

    def melscale_fbanks(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> "torch.Tensor":
        return torch.zeros(n_freqs, n_mels)

    functional.melscale_fbanks = melscale_fbanks  # type: ignore[attr-defined]
    mod.functional = functional  # type: ignore[attr-defined]
    return mod


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without a GPU is an error."""
    import torch

    from kimiwonosete.transcription import DEVICES

    if device not in DEVICES:
        raise KimiError(f"unknown device {device!r}: choose one of {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise KimiError("no CUDA GPU is available to torch here: use --device cpu (or auto)")
    return device


def load_stock_model(device: str = "cpu"):  # -> transkun.ModelTransformer.TransKun
    """A fresh Transkun exactly as its own command line builds it (gradient checkpointing on),
    from the packaged config and weights: ``load_model`` prepares it for speed, and tests and
    benchmarks compare with it unmodified."""
    import torch

    try:
        from transkun import ModelTransformer
    except ImportError as exc:
        raise ToolError(
            "the transkun backend is not installed: run `pip install --no-deps transkun==2.0.1` "
            "(see README) or use --model basic-pitch"
        ) from exc
    pretrained = resources.files("transkun") / "pretrained"
    conf_json = json.loads((pretrained / CONF).read_text())["Model"]["config"]
    conf = ModelTransformer.Config()
    conf.__dict__.update(conf_json)
    saved = sys.modules.get("torchaudio")
    sys.modules["torchaudio"] = _fake_torchaudio()
    try:
        model = ModelTransformer.TransKun(conf=conf)
    finally:
        if saved is None:
            del sys.modules["torchaudio"]
        else:
            sys.modules["torchaudio"] = saved
    with resources.as_file(pretrained / WEIGHTS) as weights:
        checkpoint = torch.load(weights, map_location="cpu", weights_only=False)
    state = checkpoint.get("best_state_dict", checkpoint.get("state_dict"))
    if not any(key.endswith(MEL_BUFFER) for key in state):
        raise ToolError("transkun checkpoint lacks its mel filterbank; unsupported transkun version")
    model.load_state_dict(state, strict=False)
    return model.to(device).eval()


#: Called after each window of the transcription running in this thread (or asyncio task), if
#: any: the one shared model counts windows for whichever call is running it.
_window_done: ContextVar[Callable[[], None] | None] = ContextVar("transkun_window_done", default=None)
_loading = threading.Lock()


def load_model(device: str = "cpu"):  # -> transkun.ModelTransformer.TransKun
    """Transkun prepared for fast inference on ``device``, built once per process (also when
    several threads ask for it at once) and shared by them: nothing in it changes per call.

    The weights and every computation that decides a note are Transkun's; what changes is how
    the work is laid out (see ``_attention``, ``_process_frames`` and ``IntervalDecoder``).
    """
    with _loading:
        return _load_model(device)


@cache
def _load_model(device: str):  # -> transkun.ModelTransformer.TransKun
    from transkun.LayersTransformer import MultiHeadAttentionKernel

    model = load_stock_model(device)
    # Gradient checkpointing only saves memory in training; at inference it is overhead.
    model.backbone.useGradientCheckpoint = False
    for module in model.modules():
        if isinstance(module, MultiHeadAttentionKernel):
            if module.kernel is not None:
                raise ToolError("this transkun checkpoint uses approximated attention; unsupported transkun version")
            module.kv_proj_weight = _kv_weight(module)
            module.forward = types.MethodType(_attention, module)
    model.processFramesBatch = types.MethodType(_process_frames, model)
    frames = model.transcribeFrames

    def counted(*args, **kwargs):  # per-window progress without copying Transkun's window loop
        out = frames(*args, **kwargs)
        if (done := _window_done.get()) is not None:
            done()
        return out

    model.transcribeFrames = counted
    return model


def _kv_weight(module) -> "torch.Tensor":
    """The key and value projections side by side: one matrix product instead of two."""
    import torch

    with torch.no_grad():
        return torch.cat([module.k_proj_weight, module.v_proj_weight], dim=1).contiguous()


def _attention(self, query, key=None, value=None):
    """Transkun's multi-head attention (no kernel approximation), with heads folded into a 4-D
    batch so torch picks its fused flash-attention kernel (on 5-D inputs it falls back to the
    unfused math path: 1.2x slower per window on the CPU, see benchmarks/speed.py)."""
    import torch.nn.functional as F

    key = query if key is None else key
    if (value is not None and value is not key) or key.shape[:-2] != query.shape[:-2]:
        raise ValueError("fused attention needs values equal to keys, with the queries' batch shape")
    lead, n_q, n_k = query.shape[:-2], query.shape[-2], key.shape[-2]
    heads, dim = self.num_heads, self.head_dim
    q = (query @ self.q_proj_weight).reshape(-1, n_q, heads, dim).transpose(1, 2)
    k, v = (key @ self.kv_proj_weight).reshape(-1, n_k, 2, heads, dim).permute(2, 0, 3, 1, 4)
    fetched = F.scaled_dot_product_attention(q, k, v)
    return self.out_proj(fetched.transpose(1, 2).reshape(*lead, n_q, heads * dim))


def _process_frames(self, frames):
    """Transkun's ``processFramesBatch`` for one window, with the interval scores computed only
    where the decoder reads them (begin <= end) and laid out for it: (pitch, begin, end)."""
    import torch

    if frames.shape[0] != 1:
        raise ValueError("one window at a time")
    mean = torch.mean(frames, dim=[1, 2, 3], keepdim=True)
    std = torch.std(frames, dim=[1, 2, 3], keepdim=True)
    features = self.framewiseFeatureExtractor((frames - mean) / (std + 1e-8)).contiguous()
    features = features.view(1, *features.shape[-3:])
    pitches = torch.tensor(self.targetMIDIPitch, device=features.device)
    ctx = self.backbone(features, outputIndices=pitches)  # (1, pitch, frame, dim)
    scorer = self.scorer
    size = scorer.size * scorer.expansionFactor
    q, k, diag = scorer.map(ctx[0]).split([size, size, 1], dim=-1)
    q = q / math.sqrt(size)
    n = q.shape[1]
    scores = torch.zeros(q.shape[0], n, n, device=q.device)
    span = torch.arange(n, device=q.device, dtype=q.dtype)
    for b0 in range(0, n, SCORE_BLOCK):
        b1 = min(b0 + SCORE_BLOCK, n)
        block = torch.bmm(k[:, b0:b1], q[:, b0:].transpose(1, 2))  # (pitch, begin, end >= b0)
        block *= (span[b0:][None, :] - span[b0:b1][:, None]).abs()
        scores[:, b0:b1, b0:] = block
    scores.diagonal(dim1=1, dim2=2).add_(diag[..., 0])
    return IntervalDecoder(scores.detach().cpu().numpy()), ctx


class IntervalDecoder:
    """Transkun's semi-CRF Viterbi decode (``viterbiBackward``: best set of non-overlapping
    intervals per pitch), in NumPy over every pitch at once.

    ``scores[p, b, e]``: score of an interval of pitch track ``p`` from frame ``b`` to ``e``
    (``e >= b``; ``e == b`` is a one-frame event, taken when its score is positive). Transkun
    gives the gaps between intervals a score of 0.
    """

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def decode(self, forcedStartPos: list[int] | None = None, forward: bool = False) -> list[list[tuple[int, int]]]:
        """Per track, the chosen (begin, end) frame pairs, decoding from ``forcedStartPos[p]``.

        Named and called as Transkun's ``transcribeFrames`` calls its decoder (``forward`` is
        its choice of recursion direction, which gives the same optimum).
        """
        scores = self.scores
        tracks, n = scores.shape[0], scores.shape[1]
        diagonal = np.diagonal(scores, axis1=1, axis2=2)
        single = diagonal > 0
        gain = np.where(single, diagonal, 0.0)
        best = np.zeros((tracks, n), dtype=np.float32)  # best score from frame j to the end
        nxt = np.full((n, tracks), -1, dtype=np.int64)  # end of the interval starting at j, or -1
        best[:, n - 1] = gain[:, n - 1]
        rows = np.arange(tracks)
        for j in range(n - 2, -1, -1):
            cand = best[:, j + 1 :] + scores[:, j, j + 1 :]
            arg = cand.argmax(axis=1)
            take = cand[rows, arg] > best[:, j + 1]  # a tie keeps the gap, as Transkun's max does
            nxt[j] = np.where(take, arg + j + 1, -1)
            best[:, j] = np.where(take, cand[rows, arg], best[:, j + 1]) + gain[:, j]
        starts = forcedStartPos or [0] * tracks
        paths = []
        for p in range(tracks):
            path, j, col, on = [], starts[p], nxt[:, p], single[p]
            while j < n - 1:
                if on[j]:
                    path.append((j, j))
                if col[j] < 0:
                    j += 1
                else:
                    path.append((j, int(col[j])))
                    j = int(col[j])
            if on[n - 1]:
                path.append((n - 1, n - 1))
            paths.append(path)
        return paths


def _installed(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"  # transcribing says so, clearly


def window_count(n_samples: int, hop_s: float, frame_hop: int) -> int:
    """How many 16 s windows Transkun's loop runs over ``n_samples`` at ``SAMPLE_RATE`` with
    windows every ``hop_s`` (rounded up to whole frames of ``frame_hop`` samples); the audio is
    padded by the overlap at both ends, as ``TransKun.transcribe`` does.

    >>> window_count(30 * SAMPLE_RATE, 8.0, 1024), window_count(30 * SAMPLE_RATE, 14.0, 1024)
    (6, 3)
    """
    padded = n_samples + 2 * math.ceil((SEGMENT_S - hop_s) * SAMPLE_RATE)
    step = math.ceil(hop_s * SAMPLE_RATE / frame_hop) * frame_hop
    return math.ceil(padded / step)


class TranskunTranscriber:
    """Piano transcription with Transkun 2.0: notes, velocities and sustain pedal.

    ``hop_s``: seconds between the model's 16 s windows (``8.0`` reproduces stock Transkun).
    ``device``: ``auto`` (a CUDA GPU when torch sees one), ``cpu`` or ``cuda``.
    ``threads``: torch's CPU threads for this process (``None`` leaves torch's default).
    """

    name = "transkun"
    sample_rate = SAMPLE_RATE

    def __init__(self, hop_s: float = HOP_S, device: str = "auto", threads: int | None = None) -> None:
        self.hop_s = hop_s
        self.device = resolve_device(device)
        if threads is not None:
            import torch

            torch.set_num_threads(threads)

    def settings(self) -> dict[str, object]:
        """What decides the notes: the model's version and weights, its windows, the device."""
        return {"model": self.name, "version": _installed("transkun"), "weights": WEIGHTS, "segment_s": SEGMENT_S,
                "hop_s": self.hop_s, "device": self.device, "sample_rate": SAMPLE_RATE}

    def transcribe(self, audio: np.ndarray, progress: ProgressFn | None = None) -> Performance:
        import torch

        model = load_model(self.device)
        total = window_count(len(audio), self.hop_s, model.hopSize)
        done = 0

        def window_done() -> None:
            nonlocal done
            done += 1
            if progress:
                progress(min(done, total), total)

        token = _window_done.set(window_done)
        try:
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[:, None].to(self.device)
                events = model.transcribe(x, stepInSecond=self.hop_s, segmentSizeInSecond=SEGMENT_S)
        finally:
            _window_done.reset(token)
        notes, pedals = [], []
        for e in events:
            if e.pitch == SUSTAIN_PITCH:
                pedals.append(Pedal(float(e.start), float(e.end)))
            elif e.pitch > 0:
                vel = int(np.clip(round(float(e.velocity)), 1, 127))
                notes.append(Note(float(e.start), float(e.end), int(e.pitch), vel))
        return Performance(notes, pedals, duration=len(audio) / SAMPLE_RATE)
