"""The default backend: Transkun 2.0 (Yan & Duan, MIT licence), weights from the installed wheel.

Transkun's own command line needs ``pkg_resources`` and ``torchaudio``; neither is needed to run
the model, so the network is built here from ``transkun.ModelTransformer`` directly.
"""

from __future__ import annotations

import json
import math
import sys
import types
from functools import cache
from importlib import resources

import numpy as np

from kimiwonosete.errors import KimiError, ToolError
from kimiwonosete.notes import Note, Pedal, Performance
from kimiwonosete.transcription.base import ProgressFn

SAMPLE_RATE = 44100
WEIGHTS = "2.0.pt"
CONF = "2.0.conf"
SUSTAIN_PITCH = -64
SEGMENT_S = 16.0  # the window the model was trained on: shorter ones lose much accuracy
#: Hop between windows. Transkun's own default is 8 s (every frame computed twice); 12 s needs
#: 1.5x fewer windows, gave the same notes on synthesized audio and the same onset F1 on MAPS
#: clips (benchmarks/speed.py, benchmarks/transcription.py).
HOP_S = 12.0
MEL_BUFFER = "freq2mels"


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


@cache
def load_model(device: str = "cpu"):  # -> transkun.ModelTransformer.TransKun
    """Build Transkun from the packaged config and weights on ``device``, once per process."""
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
    model.to(device).eval()
    # Gradient checkpointing only saves memory in training; at inference it is overhead (small
    # on CPU: 1.03x in benchmarks/speed.py) and changes no output.
    model.backbone.useGradientCheckpoint = False
    return model


class TranskunTranscriber:
    """Piano transcription with Transkun 2.0: notes, velocities and sustain pedal.

    ``hop_s``: seconds between the model's 16 s windows (``8.0`` reproduces stock Transkun).
    ``device``: ``auto`` (a CUDA GPU when torch sees one), ``cpu`` or ``cuda``.
    """

    name = "transkun"
    sample_rate = SAMPLE_RATE

    def __init__(self, hop_s: float = HOP_S, device: str = "auto") -> None:
        self.hop_s = hop_s
        self.device = resolve_device(device)

    def transcribe(self, audio: np.ndarray, progress: ProgressFn | None = None) -> Performance:
        import torch

        model = load_model(self.device)
        hop_s, seg_s = self.hop_s, SEGMENT_S
        padded = len(audio) + 2 * math.ceil((seg_s - hop_s) * model.fs)
        step = math.ceil(hop_s * model.fs / model.hopSize) * model.hopSize
        total = math.ceil(padded / step)
        frames_fn = model.transcribeFrames
        done = 0

        def counted(*args, **kwargs):
            nonlocal done
            out = frames_fn(*args, **kwargs)
            done += 1
            if progress:
                progress(min(done, total), total)
            return out

        # Per-segment progress without copying Transkun's segment loop.
        model.transcribeFrames = counted
        try:
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[:, None].to(self.device)
                events = model.transcribe(x, stepInSecond=hop_s, segmentSizeInSecond=seg_s)
        finally:
            del model.transcribeFrames
        notes, pedals = [], []
        for e in events:
            if e.pitch == SUSTAIN_PITCH:
                pedals.append(Pedal(float(e.start), float(e.end)))
            elif e.pitch > 0:
                vel = int(np.clip(round(float(e.velocity)), 1, 127))
                notes.append(Note(float(e.start), float(e.end), int(e.pitch), vel))
        return Performance(notes, pedals, duration=len(audio) / SAMPLE_RATE)
