"""Text → speech with exact phone timing: espeak-ng driven through its C library (ctypes).

espeak-ng reports every phoneme it speaks as an ``espeakEVENT_PHONEME`` event carrying the sample
at which it starts, so the animation of synthetic speech needs no recognition: the phones are the
ones the synthesiser used. espeak-ng's English phoneme mnemonics (``ph_english*`` in its sources)
map to ARPABET through :data:`ESPEAK_TO_ARPABET`; a mnemonic missing there falls back to its
first one or two characters (``I2`` → ``I``) and then, with a warning, to ``AH`` (vowel-like) or
``SIL``. Primary/secondary stress comes from ``espeak_TextToPhonemes`` (its ``'``/``,`` marks),
aligned to the spoken phonemes by sequence matching; the word from the ``espeakEVENT_WORD`` events.

:func:`text_to_arpabet` gives espeak-ng's pronunciation of each word of a text as ARPABET without
synthesising (a pronunciation dictionary for words CMUdict lacks, for forced alignment).

espeak-ng is one global synthesiser per process, so every call holds a lock. The library comes
from the Debian package ``libespeak-ng1`` (its data from ``espeak-ng-data``).

Not bit-reproducible across calls: espeak-ng carries a little synthesis state from one utterance
to the next (measured: the same sentence comes out 63,639–63,646 samples long depending on what was
said before, and neither ``srand`` nor ``espeak_Terminate`` + ``espeak_Initialize`` resets it).
Within a call the audio and its phone events come from the same run, so the timing stays exact;
for byte-identical batches, synthesise once and treat the audio file as the input.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import difflib
import re
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..errors import InputError, ModelError
from .phones import SILENCE, Phone

__all__ = ["DEFAULT_RATE_WPM", "ESPEAK_TO_ARPABET", "Speech", "TtsWarning", "synthesize", "text_to_arpabet"]

DEFAULT_RATE_WPM = 175
LIBRARY = "libespeak-ng.so.1"
DEBIAN_PACKAGE = "libespeak-ng1"

ESPEAK_TO_ARPABET: Mapping[str, str] = MappingProxyType({
    # pauses
    "_": SILENCE, "_:": SILENCE, "_!": SILENCE, "_^_": SILENCE, "_|": SILENCE, "?": "T",  # glottal stop ≈ t closure
    # consonants
    "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "g": "G", "f": "F", "v": "V", "T": "TH", "D": "DH",
    "s": "S", "z": "Z", "S": "SH", "Z": "ZH", "tS": "CH", "dZ": "JH", "h": "HH", "m": "M", "n": "N",
    "N": "NG", "l": "L", "r": "R", "j": "Y", "w": "W", "x": "K", "C": "HH", "W": "W", "l/": "L",
    "r-": "R", "n-": "N", "m-": "M", "t#": "T", "d#": "D", "t2": "T", "d2": "D", "z#": "Z", "hw": "W",
    "@L": "L", "l#": "L", "n#": "N",
    # vowels
    "@": "AH", "@2": "AH", "@5": "AH", "@-": "AH", "a#": "AH", "V": "AH", "3": "ER", "3:": "ER", "@r": "ER",
    "a": "AE", "aa": "AE", "a2": "AH", "A:": "AA", "A@": "AA", "A#": "AA", "0": "AA", "0#": "AA",
    "O": "AO", "O:": "AO", "O@": "AO", "o@": "AO", "O2": "AO", "OI": "OY", "oU": "OW", "oU#": "OW",
    "o": "OW", "e": "EH", "E": "EH", "E2": "EH", "e@": "EH", "eI": "EY", "i": "IY", "i:": "IY",
    "I": "IH", "I#": "IH", "I2": "IH", "I2#": "IH", "i@": "IH", "i@3": "IH", "U": "UH", "u:": "UW",
    "U@": "UH", "u@": "UH", "aI": "AY", "aI@": "AY", "aI3": "AY", "aU": "AW", "aU@": "AW", "IR": "ER",
    "VR": "ER", "e#": "EH", "u": "UW",
})
"""espeak-ng English phoneme mnemonic → ARPABET (or ``SIL``)."""


class TtsWarning(UserWarning):
    """A phoneme espeak-ng spoke had no entry in the table and was approximated."""


@dataclass(frozen=True)
class Speech:
    """Synthesised speech: mono float32 ``samples`` at ``sample_rate`` and the timed ``phones`` spoken."""

    text: str
    samples: np.ndarray
    sample_rate: int
    phones: tuple[Phone, ...]
    voice: str = "en-us"

    def __post_init__(self) -> None:
        arr = np.asarray(self.samples, dtype=np.float32)
        if arr.flags.writeable:
            arr = arr.copy()
            arr.flags.writeable = False
        object.__setattr__(self, "samples", arr)
        object.__setattr__(self, "phones", tuple(self.phones))

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate


# -- the library ----------------------------------------------------------------------------------
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_RATE, _PITCH = 1, 3
_EVENT_END_LIST, _EVENT_WORD, _EVENT_PHONEME = 0, 1, 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_LOCK = threading.Lock()


class _Engine:
    """The loaded library and the state the synthesis callback fills."""

    def __init__(self) -> None:
        try:
            lib = ctypes.CDLL(LIBRARY)
        except OSError as exc:
            raise ModelError(f"espeak-ng library {LIBRARY} not found; install the Debian package {DEBIAN_PACKAGE}") from exc
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None,
                                     _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise ModelError(f"espeak-ng failed to initialise (its data missing? install {DEBIAN_PACKAGE} and espeak-ng-data)")
        self.lib, self.sample_rate = lib, rate
        self.voice: str | None = None  # the voice set last
        self.audio: list[np.ndarray] = []
        self.events: list[tuple[int, int, str | int, int, int]] = []
        self.callback = _CALLBACK(self._on_synth)  # kept referenced: the library holds a raw pointer
        lib.espeak_SetSynthCallback(self.callback)

    def _on_synth(self, wav, count, events) -> int:
        if count > 0:
            self.audio.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != _EVENT_END_LIST:
            e = events[i]
            ident: str | int = e.id.string.decode("utf-8", "replace") if e.type == _EVENT_PHONEME else e.id.number
            self.events.append((e.type, e.sample, ident, e.text_position, e.length))
            i += 1
        return 0


_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def _set_voice(engine: _Engine, voice: str) -> None:
    """Select ``voice`` (a no-op when it is already the current one); the lock must be held."""
    if voice == engine.voice:
        return
    if engine.lib.espeak_SetVoiceByName(voice.encode("utf-8")) != 0:
        raise InputError(f"voice: espeak-ng has no voice {voice!r} (try en-us, en, en-gb-x-rp; `espeak-ng --voices=en`)")
    engine.voice = voice


def _drain(engine: _Engine) -> None:
    """Deliver the events espeak-ng queued outside a synthesis (every voice change queues one): left
    queued, dozens of them would fill the first event buffer of the next synthesis and push out its
    first phonemes. Synthesising an empty text delivers (and here discards) them."""
    engine.audio, engine.events = [], []
    engine.lib.espeak_Synth(b"\0", 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    engine.audio, engine.events = [], []


def _to_arpabet(mnemonic: str) -> str:
    label = ESPEAK_TO_ARPABET.get(mnemonic)
    if label is None:
        for cut in (2, 1):
            label = ESPEAK_TO_ARPABET.get(mnemonic[:cut])
            if label is not None and label != SILENCE:
                break
        else:
            label = SILENCE if mnemonic.startswith("_") else "AH"
            warnings.warn(f"espeak-ng phoneme {mnemonic!r} has no ARPABET entry; using {label}", TtsWarning, stacklevel=3)
    return label


def _stressed(lib, text: bytes) -> list[tuple[str, int]]:
    """(mnemonic, stress) for each phoneme of ``espeak_TextToPhonemes`` (stress 1 ``'``, 2 ``,``)."""
    buf = ctypes.create_string_buffer(text)
    ptr = ctypes.c_char_p(ctypes.addressof(buf))
    out: list[tuple[str, int]] = []
    for _ in range(len(text) + 1):  # each call consumes at least one clause
        if not ptr.value:
            break
        clause = lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, ord("|") << 8) or b""
        for word in clause.decode("utf-8", "replace").split():
            for token in word.split("|"):
                stress = 0
                while token[:1] in ("'", ",", "%", "="):
                    stress = {"'": 1, ",": 2}.get(token[0], stress)
                    token = token[1:]
                if token:
                    out.append((token, stress))
    return out


_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def text_to_arpabet(text: str, voice: str = "en-us") -> list[tuple[str, list[str]]]:
    """espeak-ng's pronunciation of each word of ``text``: ``[(word, ARPABET phones), …]`` in text order.

    Words are runs of letters and digits (inner apostrophes kept: ``don't``); each is pronounced on
    its own, as a dictionary would list it (``"42"`` → F AO T IY T UW). Phones carry no stress
    digit; a word espeak-ng says nothing for is left out. Nothing is synthesised (no audio).
    """
    if not isinstance(text, str):
        raise InputError(f"text: expected a string, got {type(text).__name__}")
    if not isinstance(voice, str) or not voice:
        raise InputError(f"voice: expected an espeak-ng voice name, got {voice!r}")
    words = _WORD.findall(text.replace("\x00", " "))
    out: list[tuple[str, list[str]]] = []
    with _LOCK:
        engine = _engine()
        lib = engine.lib
        before = engine.voice
        _set_voice(engine, voice)
        if engine.voice != before:
            _drain(engine)
        for word in words:
            with warnings.catch_warnings():  # an unmapped mnemonic approximates silently here, per word
                warnings.simplefilter("ignore", TtsWarning)
                labels = [_to_arpabet(m) for m, _ in _stressed(lib, word.encode("utf-8"))]
            phones = [lab for lab in labels if lab != SILENCE]
            if phones:
                out.append((word, phones))
    return out


def synthesize(text: str, voice: str = "en-us", rate_wpm: int = DEFAULT_RATE_WPM, pitch: int | None = None) -> Speech:
    """Speak ``text`` with espeak-ng: samples at espeak's own rate (22050 Hz) and exactly timed phones.

    ``rate_wpm`` 80..450 words per minute; ``pitch`` 0..99 (espeak's scale, default the voice's).
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"text: expected something to say, got {text!r}")
    if not (isinstance(rate_wpm, (int, float)) and 80 <= rate_wpm <= 450):
        raise InputError(f"rate: expected 80..450 words per minute, got {rate_wpm!r}")
    if pitch is not None and not (isinstance(pitch, (int, float)) and 0 <= pitch <= 99):
        raise InputError(f"pitch: expected 0..99, got {pitch!r}")
    encoded = text.replace("\x00", " ").encode("utf-8")
    with _LOCK:
        engine = _engine()
        lib = engine.lib
        _set_voice(engine, voice)
        lib.espeak_SetParameter(_RATE, int(rate_wpm), 0)
        lib.espeak_SetParameter(_PITCH, 50 if pitch is None else int(pitch), 0)
        engine.audio, engine.events = [], []
        err = lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None)
        if err != 0:
            raise InputError(f"espeak-ng could not synthesise the text (error {err})")
        audio = np.concatenate(engine.audio) if engine.audio else np.zeros(0, np.int16)
        events = engine.events
        stresses = _stressed(lib, encoded)
        rate = engine.sample_rate
    samples = audio.astype(np.float32) / 32768.0
    return Speech(text, samples, rate, _phones(text, events, stresses, samples.size, rate), voice)


def _phones(text: str, events, stresses, n_samples: int, rate: int) -> tuple[Phone, ...]:
    spoken: list[tuple[str, int, str | None]] = []  # mnemonic, start sample, word
    word: str | None = None
    for kind, sample, ident, pos, length in events:
        if kind == _EVENT_WORD:
            # text_position counts characters from 1 in the UTF-8 text espeak was given.
            word = text[pos - 1: pos - 1 + length] or None
        elif kind == _EVENT_PHONEME:
            spoken.append((str(ident), min(max(0, int(sample)), n_samples), word))
    # Stress: match the spoken mnemonics to TextToPhonemes' (pauses left out of both).
    stress_of = [0] * len(spoken)
    idx = [i for i, (m, _, _) in enumerate(spoken) if not m.startswith("_")]
    matcher = difflib.SequenceMatcher(a=[spoken[i][0] for i in idx], b=[m for m, _ in stresses], autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            stress_of[idx[a + k]] = stresses[b + k][1]
    phones: list[Phone] = []
    last = 0
    for i, (mnemonic, start, w) in enumerate(spoken):
        start = max(start, last)
        end = spoken[i + 1][1] if i + 1 < len(spoken) else n_samples
        end = max(start, min(end, n_samples))
        if end == start:
            continue
        if not mnemonic[:1].isalnum() and mnemonic[:1] not in ("_", "@", "?") and phones:
            # a bare mark (``;`` lengthening, linking) belongs to the sound before it
            prev = phones[-1]
            phones[-1] = Phone(prev.label, prev.start_s, end / rate, prev.stress, prev.word)
            last = end
            continue
        label = _to_arpabet(mnemonic)
        silent = label == SILENCE
        if silent and phones and phones[-1].label == SILENCE:  # merge consecutive pauses
            phones[-1] = Phone(SILENCE, phones[-1].start_s, end / rate)
        else:
            phones.append(Phone(label, start / rate, end / rate, 0 if silent else stress_of[i], None if silent else w))
        last = end
    if phones and phones[0].start_s > 0:
        phones.insert(0, Phone(SILENCE, 0.0, phones[0].start_s))
    if phones and phones[-1].end_s * rate < n_samples - 1:
        phones.append(Phone(SILENCE, phones[-1].end_s, n_samples / rate))
    return tuple(phones)
