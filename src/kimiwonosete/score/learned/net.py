"""The score model's forward pass in NumPy: a residual stack of dilated 1-D convolutions over
the note sequence (so the score stage needs no torch), and its weights as shipped in the package.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

#: output columns of each head, in order
HEADS = {"beat": 1, "downbeat": 1, "period": 30, "meter": 10, "staff": 1, "key": 15, "spell": 3, "phase": 12}
LN_EPS = 1e-5
WEIGHTS = "score_tcn.npz"


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * g + b


def _dilated(x: np.ndarray, w: np.ndarray, b: np.ndarray, d: int) -> np.ndarray:
    """Kernel-3 'same' convolution along time: x (T, C_in), w (3, C_in, C_out)."""
    t = len(x)
    xp = np.pad(x, ((d, d), (0, 0)))
    return xp[:t] @ w[0] + xp[d : d + t] @ w[1] + xp[2 * d : 2 * d + t] @ w[2] + b


def forward(weights: dict[str, np.ndarray], x: np.ndarray, heads: dict[str, int] = HEADS) -> dict[str, np.ndarray]:
    """Outputs (logits) of each head for inputs ``x`` (one row per note, or per beat for the bar model)."""
    h = x.astype(np.float32) @ weights["inp.w"] + weights["inp.b"]
    for i, d in enumerate(weights["dilations"].tolist()):
        z = _layer_norm(h, weights[f"{i}.norm.g"], weights[f"{i}.norm.b"])
        z = np.maximum(_dilated(z, weights[f"{i}.conv.w"], weights[f"{i}.conv.b"], d), 0)
        h = h + z @ weights[f"{i}.mix.w"] + weights[f"{i}.mix.b"]
    return split_heads(_layer_norm(h, weights["norm.g"], weights["norm.b"]) @ weights["out.w"] + weights["out.b"], heads)


def split_heads(out: np.ndarray, heads: dict[str, int] = HEADS) -> dict[str, np.ndarray]:
    """The output columns of each head."""
    split, start = {}, 0
    for name, size in heads.items():
        split[name] = out[..., start : start + size]
        start += size
    return split


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Log probabilities from logits along the last axis."""
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@lru_cache(maxsize=None)
def packaged_weights(name: str) -> dict[str, np.ndarray]:
    """Trained weights that come with the package, by file name (each read once)."""
    with resources.files("kimiwonosete.score.learned").joinpath(name).open("rb") as f:
        data = np.load(f)
        return {k: data[k].astype(np.float32) if k != "dilations" else data[k] for k in data.files}


def shipped_weights() -> dict[str, np.ndarray]:
    """The note model's trained weights that come with the package."""
    return packaged_weights(WEIGHTS)
