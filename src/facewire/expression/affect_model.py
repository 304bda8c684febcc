"""A small learned text-emotion classifier that sits on top of the rule analyser in `affect`.

Rules generalise poorly to sentences that carry their feeling through the situation rather than
through emotion words ("somebody keyed my car"), and hand-tuned cue lists over-fit the tables they
were tuned on. This model is a multinomial logistic regression over

* hashed word unigrams and bigrams (a word inside a negation's scope is marked ``not_``, the scope
  as `affect` computes it) and hashed character 3–5-grams of each word (morphology: "disgusting",
  "disgusted"), each block L2-normalised per sentence, and
* the rule analyser's own evidence (`RULE_FEATURES`): its seven category scores, VADER's compound
  valence, whether a cue or construction fired, question and exclamation marks, and the speaker role
  — so the model learns how far to trust each rule rather than replacing them.

It is trained by ``tools/train_affect.py`` on ``tools/affect_corpus/*.tsv`` (sentences written for
this project, labelled with the dominant feeling a reader sees) and never on the evaluation tables
in ``tests/expression/data``. Training is deterministic (L-BFGS from zeros, a stable CRC-32 hash),
and the shipped file is pinned by SHA-256 (`DEFAULT_MODEL_SHA256`). Prediction costs a few hashes
and one 8-row dot product: well under a millisecond per sentence.
"""

from __future__ import annotations

import functools
import io
import math
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError
from .emotion import EMOTIONS

if TYPE_CHECKING:
    from .affect import Affect

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_SHA256",
    "HASH_BITS",
    "RULE_FEATURES",
    "TextAffectModel",
    "features",
    "load_default_model",
]

DEFAULT_MODEL = "affect_text.npz"
DEFAULT_MODEL_SHA256 = "84a2daa23a8f31675d1fea9a3ae3b8e10fb5973efe7dc6d087cd9736541c3cd3"
"""Pinned digest of the shipped model (``tools/train_affect.py`` prints it)."""

HASH_BITS = 18
"""Size of the hashed text-feature space (2^18): collisions are rare at a few thousand sentences."""

RULE_FEATURES = (*(f"rule_{e}" for e in EMOTIONS[1:]), "rule_compound_pos", "rule_compound_neg", "rule_cued",
                 "question", "exclaim", "reply")
"""The dense features taken from the rule analyser and the text's punctuation, in this order."""

_BLOCKS = ("word", "char")


def _hash(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8")) & ((1 << HASH_BITS) - 1)


def _block(keys: Sequence[str]) -> dict[int, float]:
    """Hashed counts of ``keys``, L2-normalised (a long sentence is not more emotional)."""
    counts: dict[int, float] = {}
    for key in keys:
        h = _hash(key)
        counts[h] = counts.get(h, 0.0) + 1.0
    norm = math.sqrt(sum(v * v for v in counts.values())) or 1.0
    return {h: v / norm for h, v in counts.items()}


def features(text: str, role: str | None = None, rules: Affect | None = None) -> tuple[dict[int, float], np.ndarray]:
    """(sparse hashed text features, dense `RULE_FEATURES`) of one sentence; ``rules`` is its
    `affect.analyse_rules` result when the caller already has it."""
    from . import affect

    if rules is None:
        rules = affect.analyse_rules(text, role)
    lower = text.lower().replace("’", "'")
    tokens = [m.group() for m in affect._TOKEN.finditer(lower)]
    clause, _ = affect._clauses(tokens)
    negated = affect._negated_tokens(tokens, clause)
    words = [("not_" if i in negated else "") + t for i, t in enumerate(tokens) if t not in affect._PUNCT or t in "!?"]
    word_keys = [f"w:{w}" for w in words] + [f"b:{a}_{b}" for a, b in zip(["<s>", *words], [*words, "</s>"])]
    char_keys = []
    for t in tokens:
        if t in affect._PUNCT:
            continue
        padded = f"<{t}>"
        char_keys += [f"c:{padded[i:i + n]}" for n in (3, 4, 5) for i in range(len(padded) - n + 1)]
    sparse: dict[int, float] = {}
    for keys, scale in ((word_keys, 1.0), (char_keys, 1.0)):
        for h, v in _block(keys).items():
            sparse[h] = sparse.get(h, 0.0) + scale * v
    scores = rules.scores
    dense = np.array([*(math.log1p(max(0.0, scores[e])) for e in EMOTIONS[1:]),
                      max(0.0, rules.valence), max(0.0, -rules.valence), 1.0 if rules.cues else 0.0,
                      1.0 if rules.question else 0.0, min(text.count("!"), 3) / 3.0, 1.0 if role == "reply" else 0.0])
    return sparse, dense


@dataclass(frozen=True)
class TextAffectModel:
    """Weights of the classifier: ``rows`` hashed feature ids with ``w_text`` rows, plus dense weights."""

    rows: np.ndarray  # (R,) int64, sorted hashed ids that carry weight
    w_text: np.ndarray  # (R, 8)
    w_rule: np.ndarray  # (len(RULE_FEATURES), 8)
    bias: np.ndarray  # (8,)
    meta: Mapping[str, str]

    def logits(self, sparse: Mapping[int, float], dense: np.ndarray) -> np.ndarray:
        out = self.bias + dense @ self.w_rule
        if sparse:
            ids = np.fromiter(sparse.keys(), dtype=np.int64, count=len(sparse))
            vals = np.fromiter(sparse.values(), dtype=np.float64, count=len(sparse))
            pos = np.searchsorted(self.rows, ids)
            pos = np.minimum(pos, len(self.rows) - 1)
            hit = self.rows[pos] == ids
            out = out + vals[hit] @ self.w_text[pos[hit]]
        return out

    def probabilities(self, text: str, role: str | None = None, rules: Affect | None = None) -> dict[str, float]:
        """P(category | text) over `emotion.EMOTIONS` (``rules`` as in `features`)."""
        z = self.logits(*features(text, role, rules))
        p = np.exp(z - z.max())
        p /= p.sum()
        return {e: float(v) for e, v in zip(EMOTIONS, p)}

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, rows=self.rows.astype(np.int64), w_text=self.w_text.astype(np.float32),
                            w_rule=self.w_rule.astype(np.float32), bias=self.bias.astype(np.float32),
                            hash_bits=np.array(HASH_BITS), emotions=np.array(EMOTIONS),
                            rule_features=np.array(RULE_FEATURES),
                            meta_keys=np.array(list(self.meta.keys()), dtype=str),
                            meta_values=np.array(list(self.meta.values()), dtype=str))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes, label: str = "text affect model") -> TextAffectModel:
        try:
            with np.load(io.BytesIO(blob)) as z:
                if int(z["hash_bits"]) != HASH_BITS or tuple(z["emotions"]) != EMOTIONS \
                        or tuple(z["rule_features"]) != RULE_FEATURES:
                    raise ModelError(f"{label}: made for other features (hash bits, emotions or rule features differ)")
                model = cls(z["rows"].astype(np.int64), z["w_text"].astype(np.float64), z["w_rule"].astype(np.float64),
                            z["bias"].astype(np.float64), dict(zip(z["meta_keys"].tolist(), z["meta_values"].tolist())))
        except ModelError:
            raise
        except (KeyError, ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
            raise ModelError(f"{label}: malformed text affect model ({type(exc).__name__}: {exc})") from exc
        k = len(EMOTIONS)
        if model.w_text.shape != (len(model.rows), k) or model.w_rule.shape != (len(RULE_FEATURES), k) \
                or model.bias.shape != (k,) or np.any(np.diff(model.rows) <= 0):
            raise ModelError(f"{label}: inconsistent array shapes or unsorted feature ids")
        return model


@functools.lru_cache(maxsize=1)
def load_default_model() -> TextAffectModel:
    """The shipped model, verified against `DEFAULT_MODEL_SHA256`."""
    from ..models import shipped_data

    blob = shipped_data(DEFAULT_MODEL, DEFAULT_MODEL_SHA256, "the text affect model", "tools/train_affect.py")
    return TextAffectModel.from_bytes(blob, DEFAULT_MODEL)
