"""Speech → face: audio input, phonemes (TTS events, recognition, forced alignment), visemes with
coarticulation, prosody, and the ``LipSync`` source."""
