"""The learned score model: a dilated convolution over the note sequence (trained in ``training/``,
weights shipped in this package, run with NumPy) and the decoder that turns its per-note
posteriors into beats, bars, metre, staves, keys and spellings."""
