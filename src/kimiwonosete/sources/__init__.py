"""Inputs that are not audio: MIDI performances (digital pianos, benchmarks)."""
