"""Audio: DSP (spectrograms, mels, Kaldi fbank) as pure functions; I/O lives in ``audio.io``."""
