"""The phone: one timed speech sound, the common currency of TTS events, recognition and alignment.

Labels are CMU ARPABET (the 39 phones of CMUdict, upper case, stress digit removed) plus ``SIL``
for silence and pauses, so that espeak-ng's events, PocketSphinx's phones and reference alignments
all map to visemes through one table.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ARPABET", "SILENCE", "Phone"]

SILENCE = "SIL"

ARPABET = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH",
    "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW",
    "V", "W", "Y", "Z", "ZH",
)


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone from ``start_s`` to ``end_s`` (seconds from the start of the audio)."""

    label: str  # ARPABET or SIL
    start_s: float
    end_s: float
    stress: int = 0  # 0 unknown/none, 1 primary, 2 secondary (vowels, when the source knows)
    word: str | None = None  # the word it belongs to, when known

    def __post_init__(self) -> None:
        if self.label != SILENCE and self.label not in ARPABET:
            raise ValueError(f"unknown phone label {self.label!r} (ARPABET without stress, or SIL)")
        if not self.end_s >= self.start_s >= 0.0:
            raise ValueError(f"phone {self.label} has bad times {self.start_s}..{self.end_s}")

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s
