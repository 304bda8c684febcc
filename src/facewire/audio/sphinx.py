"""PocketSphinx setup shared by recognition and alignment: the en-us models that ship inside the
``pocketsphinx`` wheel, verified by SHA-256 before use, the CMU dictionary, and audio → int16 16 kHz.

Nothing is downloaded: :func:`model_files` finds the models under ``pocketsphinx.get_model_path()``
and checks each file against :data:`MODEL_SHA256` (pocketsphinx 5.1.1's files) once per process; a
missing or altered file raises `ModelError`. Decoders are made by :func:`new_decoder`, which names
every model path explicitly so that PocketSphinx never falls back to something unverified.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError
from ..models import sha256_file as _sha256
from .phones import ARPABET, SILENCE

__all__ = [
    "FRAME_S",
    "MODEL_SHA256",
    "SAMPLE_RATE",
    "SphinxModels",
    "guess_pronunciation",
    "model_files",
    "new_decoder",
    "normalize_words",
    "phone_label",
    "read_dictionary",
    "reset_features",
    "to_pcm16",
    "verify_models",
]

SAMPLE_RATE = 16000
"""PocketSphinx's en-us acoustic model is trained on 16 kHz audio."""

FRAME_S = 0.01
"""One feature frame (PocketSphinx's default ``frate`` of 100 per second)."""

#: file (relative to ``get_model_path()``) → SHA-256, as shipped in the pocketsphinx 5.1.1 wheel.
MODEL_SHA256: dict[str, str] = {
    "en-us/en-us/mdef": "2360f9a86889c1cfee8bd618a0269387911e5fb2920a594f506b18b8c79683b0",
    "en-us/en-us/means": "832019e32cac12eb318964f96f469034acb12d0348eeddc3831831a100cb4dd4",
    "en-us/en-us/variances": "b00d696f85e96834fc10f8e5f06428d8c4db6bffdbe5845b6f69bf6efbc48fa5",
    "en-us/en-us/sendump": "8c9564c0d5bef69ca9d9bf1014abe162f071644cf02cf1fa8a483c3dc165a7a8",
    "en-us/en-us/transition_matrices": "c1f7f28ea43177be734be1f88bd7f1b9a853d0e660f8599c67c6eaeca8bb539a",
    "en-us/en-us/noisedict": "7295b07df2c204c4f87c6782b6be1a3859d7006d4e3864181c955d6dab105a33",
    "en-us/en-us/feat.params": "c982c5f75e2a30c34d2c9ef1f6b129a5a00e67e3e927565076b58664cc2404c9",
    "en-us/cmudict-en-us.dict": "20b5c293e1f311fb375fe067e500ec5636f4fc7af5594967263696def9b23bfe",
    "en-us/en-us-phone.lm.bin": "c57e0fa4191b096b1279cfe3a77927f52568fdecfc6624ddb5cec9527c763a54",
    "en-us/en-us.lm.bin": "db21d0642286677699e6dbc859d2e5395570222361999387ce60f6e1d01995d6",
}


@dataclass(frozen=True)
class SphinxModels:
    """Verified paths: acoustic model directory, CMU dictionary, phone LM and word LM."""

    hmm: Path
    dict: Path
    phone_lm: Path
    word_lm: Path


_verified: dict[Path, SphinxModels] = {}
_lock = threading.Lock()


def verify_models(root: str | Path) -> SphinxModels:
    """Check every pinned file under ``root`` (a copy of ``get_model_path()``); `ModelError` if one is off."""
    root = Path(root)
    for rel, digest in MODEL_SHA256.items():
        path = root / rel
        if not path.is_file():
            raise ModelError(f"PocketSphinx model: expected {path} (from the pocketsphinx wheel), not found;"
                             " reinstall with pip install 'pocketsphinx>=5'")
        actual = _sha256(path)
        if actual != digest:
            raise ModelError(f"PocketSphinx model {path}: expected SHA-256 {digest}, got {actual}")
    return SphinxModels(hmm=root / "en-us/en-us", dict=root / "en-us/cmudict-en-us.dict",
                        phone_lm=root / "en-us/en-us-phone.lm.bin", word_lm=root / "en-us/en-us.lm.bin")


def model_files(root: str | Path | None = None) -> SphinxModels:
    """The verified model paths (default: the installed wheel's), hashed once per process and root."""
    if root is None:
        try:
            import pocketsphinx
        except ImportError as exc:
            raise ModelError("speech recognition needs PocketSphinx: pip install 'pocketsphinx>=5'") from exc
        root = pocketsphinx.get_model_path()
    root = Path(root).resolve()
    with _lock:
        if root not in _verified:
            _verified[root] = verify_models(root)
        return _verified[root]


def new_decoder(models: SphinxModels | None = None, *, dict_path: str | Path | None = None, **config):
    """A quiet ``pocketsphinx.Decoder`` on the verified models; ``config`` as PocketSphinx's options.

    With no search option given the decoder has no language model (``lm=None``): set a search on it.
    ``dict_path``: a pronunciation dictionary other than CMUdict (the aligner's per-transcript one).
    """
    import pocketsphinx

    m = models or model_files()
    config.setdefault("lm", None)
    try:
        return pocketsphinx.Decoder(hmm=str(m.hmm), dict=str(dict_path or m.dict), loglevel="FATAL", **config)
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"PocketSphinx could not start with {sorted(config)}: {exc}") from exc


def reset_features(decoder, cmn: str) -> None:
    """Forget what ``decoder`` learnt from earlier audio, before a new utterance.

    PocketSphinx's front end carries state from one utterance to the next: the noise tracker of
    ``remove_noise`` (on by default) and the cepstral mean. Measured: the same espeak line scored
    2.612 nats/frame in a fresh decoder, 2.615 on a second pass and 2.619 after four other lines
    (the batch runner saw 4.2, a false mismatch). ``reinit_feat`` rebuilds the front end (0.1 ms,
    against 0.4 s for a new decoder) and ``set_cmn`` puts back the mean it started with (``cmn``,
    read by ``get_cmn()`` from a fresh decoder), so each utterance decodes as in a new process.
    """
    decoder.reinit_feat()
    decoder.set_cmn(cmn)


def to_pcm16(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Float (−1..1) or int16 mono samples at any rate → 16 kHz signed 16-bit little-endian bytes.

    NaN/Inf samples become silence and values are clipped (recognition should survive a bad
    buffer); other rates are resampled with a polyphase filter.
    """
    x = np.asarray(samples)
    if x.ndim != 1:
        raise InputError(f"audio samples: expected a 1-D mono array, got shape {x.shape}")
    if not isinstance(sample_rate, (int, np.integer)) or not 1000 <= sample_rate <= 768000:
        raise InputError(f"sample rate: expected an integer between 1000 and 768000 Hz, got {sample_rate!r}")
    if x.dtype == np.int16 and sample_rate == SAMPLE_RATE:
        return x.astype("<i2", copy=False).tobytes()
    if x.dtype.kind == "i":
        x = x.astype(np.float32) / np.float32(np.iinfo(x.dtype).max + 1)
    elif x.dtype.kind != "f":
        raise InputError(f"audio samples: expected float or int16 samples, got dtype {x.dtype}")
    x = np.nan_to_num(x.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
    if sample_rate != SAMPLE_RATE and x.size:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(sample_rate), SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, int(sample_rate) // g).astype(np.float32)
    return (np.clip(x, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()


@functools.lru_cache(maxsize=2)
def read_dictionary(path: str | Path) -> dict[str, str]:
    """A PocketSphinx dictionary file → {entry name (``word``, ``word(2)``…): space-separated phones}.

    Read once per process (CMUdict: 0.25 s); the aligner builds a small dictionary per transcript
    from it instead of growing the decoder's (which would make one call depend on the ones before).
    """
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            name, _, pron = line.partition(" ")
            if name and pron and not name.startswith("#"):
                out[name] = pron.strip()
    return out


_STRESS = re.compile(r"\d$")


def phone_label(name: str) -> str:
    """A PocketSphinx phone name → facewire's label: stress removed; SIL and fillers (+NSN+ …) → SIL."""
    label = _STRESS.sub("", name.upper())
    return label if label in ARPABET else SILENCE


_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")


def normalize_words(text: str) -> list[str]:
    """Transcript → dictionary-style words: lower case, punctuation dropped, digits spelled one by one."""
    words = []
    for token in _WORD.findall(text.lower().replace("’", "'")):
        if token.isdigit():
            words.extend(_ONES[int(c)] for c in token)
        else:
            # "abc123" splits into letters-part and digits spelled out
            for part in re.findall(r"[a-z']+|\d", token):
                words.append(_ONES[int(part)] if part.isdigit() else part)
    return words


# Letter-to-sound rules: an ARPABET guess for words the CMU dictionary lacks (names, invented words).
# Deliberately small: longest-match rules over letter groups, a silent final ``e``, soft ``c``/``g``
# before ``e i y``. A forced aligner only needs phones of roughly the right class and count (the
# audio decides their timing), so a rough guess costs a viseme or two at worst.
# Longest match first; each group → ARPABET phones (space separated, "" = silent).
_RULES: dict[str, str] = {
    "tch": "CH", "igh": "AY", "ough": "AO", "augh": "AO", "eigh": "EY", "tion": "SH AH N", "sion": "ZH AH N",
    "ch": "CH", "sh": "SH", "th": "TH", "ph": "F", "ng": "NG", "ck": "K", "qu": "K W", "wh": "W", "gh": "",
    "kn": "N", "wr": "R", "ee": "IY", "ea": "IY", "oo": "UW", "ai": "EY", "ay": "EY", "oa": "OW", "ou": "AW",
    "ow": "OW", "oi": "OY", "oy": "OY", "au": "AO", "aw": "AO", "ie": "IY", "ei": "EY", "ey": "IY", "ue": "UW",
    "ew": "UW", "ar": "AA R", "er": "ER", "ir": "ER", "ur": "ER", "or": "AO R", "ll": "L", "ss": "S",
    "ff": "F", "tt": "T", "dd": "D", "pp": "P", "bb": "B", "mm": "M", "nn": "N", "rr": "R", "zz": "Z",
    "a": "AE", "b": "B", "c": "K", "d": "D", "e": "EH", "f": "F", "g": "G", "h": "HH", "i": "IH", "j": "JH",
    "k": "K", "l": "L", "m": "M", "n": "N", "o": "AA", "p": "P", "q": "K", "r": "R", "s": "S", "t": "T",
    "u": "AH", "v": "V", "w": "W", "x": "K S", "y": "Y", "z": "Z",
}
_LONGEST = max(len(k) for k in _RULES)


def guess_pronunciation(word: str) -> str:
    """``"blorf"`` → ``"B L AO R F"``: space-separated ARPABET without stress; ``"AH"`` if nothing is left."""
    w = re.sub(r"[^a-z]", "", word.lower())
    if len(w) > 3 and w.endswith("e") and w[-2] not in "aeiouy":
        w = w[:-1]  # silent final e ("name")
    phones: list[str] = []
    i = 0
    while i < len(w):
        for n in range(min(_LONGEST, len(w) - i), 0, -1):
            group = w[i:i + n]
            if group in _RULES:
                nxt = w[i + n: i + n + 1]
                out = _RULES[group]
                if group == "c" and nxt and nxt in "eiy":
                    out = "S"
                elif group == "g" and nxt and nxt in "eiy":
                    out = "JH"
                elif group == "y":
                    out = "Y" if i == 0 else ("IY" if i + 1 == len(w) else "IH")
                phones.extend(out.split())
                i += n
                break
    return " ".join(phones) or "AH"
