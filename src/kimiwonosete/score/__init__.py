"""Notes to a two-staff score: beats, meter, key, quantization, hands, spelling."""
