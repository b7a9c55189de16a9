"""The fast draft backend: Spotify's Basic Pitch (Apache-2.0), its ``nmp.onnx`` run with onnxruntime.

basic-pitch silently prefers TensorFlow, CoreML or TFLite when one is installed, so the ONNX file
is loaded here directly. Its "melodia" post-processing grows super-linearly with length and does
not improve accuracy, so it is off.
"""

from __future__ import annotations

import logging
import warnings
from functools import cache
from importlib import metadata, resources

import numpy as np

from kimiwonosete.errors import ToolError
from kimiwonosete.notes import Note, Performance
from kimiwonosete.transcription.base import ProgressFn

SAMPLE_RATE = 22050
ONNX_MODEL = "saved_models/icassp_2022/nmp.onnx"
OVERLAP_FRAMES = 30
ONSET_THRESHOLD = 0.5
FRAME_THRESHOLD = 0.3
MIN_NOTE_MS = 127.70
ONNX_OUTPUTS = ("StatefulPartitionedCall:1", "StatefulPartitionedCall:2", "StatefulPartitionedCall:0")
ONNX_INPUT = "serving_default_input_2:0"


@cache
def load_session(threads: int | None = None):  # -> onnxruntime.InferenceSession
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # basic_pitch warns on import about each runtime it does not find
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # resampy's pkg_resources deprecation
            import basic_pitch
            import basic_pitch.inference  # noqa: F401  (imported under the raised log level)
            import basic_pitch.note_creation  # noqa: F401
            import onnxruntime as ort
    except ImportError as exc:
        raise ToolError(
            "the basic-pitch backend is not installed: `pip install '.[basic-pitch]'` and "
            "`pip install --no-deps basic-pitch==0.4.0` (see README)"
        ) from exc
    finally:
        root.setLevel(level)
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    with resources.as_file(resources.files(basic_pitch) / ONNX_MODEL) as path:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class BasicPitchTranscriber:
    """Polyphonic note transcription with Basic Pitch: fast, no pedal, less accurate on piano."""

    name = "basic-pitch"
    sample_rate = SAMPLE_RATE

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def settings(self) -> dict[str, object]:
        """What decides the notes: the model's version and file, its windows and thresholds."""
        try:
            version = metadata.version("basic-pitch")
        except metadata.PackageNotFoundError:
            version = "not installed"  # transcribing says so, clearly
        return {"model": self.name, "version": version, "onnx": ONNX_MODEL, "overlap_frames": OVERLAP_FRAMES,
                "onset_threshold": ONSET_THRESHOLD, "frame_threshold": FRAME_THRESHOLD, "min_note_ms": MIN_NOTE_MS,
                "device": "cpu", "sample_rate": SAMPLE_RATE}

    def transcribe(self, audio: np.ndarray, progress: ProgressFn | None = None) -> Performance:
        session = load_session(self.threads)  # imports basic_pitch quietly; keep it before the imports below
        from basic_pitch import constants as c
        from basic_pitch import note_creation
        from basic_pitch.inference import unwrap_output, window_audio_file

        overlap = OVERLAP_FRAMES * c.FFT_HOP
        hop = c.AUDIO_N_SAMPLES - overlap
        padded = np.concatenate([np.zeros(overlap // 2, dtype=np.float32), audio])
        total = -(-len(padded) // hop)
        outputs: dict[str, list[np.ndarray]] = {"note": [], "onset": [], "contour": []}
        for i, (window, _) in enumerate(window_audio_file(padded, hop), start=1):
            result = session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: window[None].astype(np.float32)})
            for key, value in zip(("note", "onset", "contour"), result):
                outputs[key].append(value)
            if progress:
                progress(i, total)
        model_output = {
            key: unwrap_output(np.concatenate(parts), len(audio), OVERLAP_FRAMES) for key, parts in outputs.items()
        }
        min_len = int(np.round(MIN_NOTE_MS / 1000 * (c.AUDIO_SAMPLE_RATE / c.FFT_HOP)))
        _, events = note_creation.model_output_to_notes(
            model_output,
            onset_thresh=ONSET_THRESHOLD,
            frame_thresh=FRAME_THRESHOLD,
            min_note_len=min_len,
            include_pitch_bends=False,
            melodia_trick=False,
        )
        notes = [
            Note(float(start), float(end), int(pitch), int(np.clip(round(127 * amp), 1, 127)))
            for start, end, pitch, amp, _ in events
        ]
        return Performance(notes, [], duration=len(audio) / SAMPLE_RATE)
