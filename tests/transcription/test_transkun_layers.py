"""The transkun backend's rewritten parts against Transkun's own, on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kimiwonosete.transcription.transkun import IntervalDecoder, _attention, _kv_weight


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interval_decoder_matches_transkuns_viterbi(seed: int) -> None:
    from transkun.CRF.NeuralSemiCRFInterval import viterbiBackward

    rng = np.random.default_rng(seed)
    tracks, n = 7, 60
    # Mostly negative scores with a few strong intervals and one-frame events, like the model's.
    scores = rng.normal(-3.0, 2.0, size=(tracks, n, n)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.02] += 12.0
    scores = np.triu(scores)
    starts = [int(s) for s in rng.integers(0, 10, size=tracks)]
    ours = IntervalDecoder(scores).decode(starts)
    # Transkun's layout: score[end, begin, track], gaps scored 0.
    theirs = viterbiBackward(torch.from_numpy(scores).permute(2, 1, 0).contiguous(), torch.zeros(n - 1, tracks), starts)
    assert ours == [list(map(tuple, path)) for path in theirs]
    assert any(len(path) > 1 for path in ours)


def test_fused_attention_matches_transkuns() -> None:
    from transkun.LayersTransformer import MultiHeadAttentionKernel

    torch.manual_seed(0)
    mha = MultiHeadAttentionKernel(64, num_heads=8, kernel=None).eval()
    mha.kv_proj_weight = _kv_weight(mha)
    query, key = torch.randn(2, 5, 11, 64), torch.randn(2, 5, 11, 64)
    with torch.no_grad():
        expected = mha(query, key)
        got = _attention(mha, query, key)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
