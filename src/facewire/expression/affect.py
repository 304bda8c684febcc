"""Affect from text, offline: an emotion category, intensity, valence and arousal for a sentence,
and the conversation rules that turn the user's words and the agent's reply into the agent's face.

`analyse` combines three sources, all local:

* **valence** from VADER (Hutto & Gilbert 2014, *ICWSM*; package ``vaderSentiment``, which ships its
  lexicon), whose own rules already handle negation ("not happy"), intensifiers ("very", "so"),
  capitals and exclamation marks;
* **emotion categories** from the NRC Word-Emotion Association Lexicon (Mohammad & Turney 2013,
  *Computational Intelligence* 29:436; the JSON shipped by the ``NRCLex`` package, read with
  NRCLex's own token API — its raw-text path needs TextBlob corpora, which would mean a download);
  NRC's joy counts as happiness, its trust/anticipation are not expressions and are left out;
* **our rules** (`CUES`): word lists for what NRC lacks or under-weights — contempt (NRC has no
  such category), interjections ("wow", "ew", "yuck"), and unexpected-information markers for
  surprise ("actually", "turns out", "I didn't know", "really?", "no way"); a negator within three
  words before an emotion word turns happiness into sadness and cancels the other categories
  ("not afraid"); intensifiers, capitals and "!" raise intensity and arousal; a question mark is
  recorded (``question``) and, on a short "really?"/"what?", reads as surprise.

Scores: each NRC hit counts 1, each cue `CUE_WEIGHT`; VADER's compound adds its size to happiness
when positive and to sadness when negative and nothing else scores. The category is the best score
(ties go to the order of `emotion.EMOTIONS`), neutral when nothing scores or only one NRC word with
no cue and a near-neutral compound does (`WEAK_SCORE`). Arousal is the category's
circumplex arousal (`emotion.valence_arousal`), raised by intensifiers.

`ConversationAffect` decides what the agent shows, in this order (the first that applies):

1. **tense** — the user is angry, contemptuous or disgusted, or tension has built up over the last
   turns and this turn is neither surprising nor happy: the agent stays **calm with light concern**
   (sadness 0.2: inner brows up), never mirroring hostility;
2. **unexpected information** — the user's words carry surprise: the agent is **surprised**, blended
   with happiness when the news is good and with sadness when it is bad, its intensity tempered by
   lingering tension (× (1 − tension/2));
3. **warmth** — the user is happy or warm: the agent **smiles back**;
4. **distress** — the user is sad or afraid: **concern** (sadness 0.35);
5. otherwise the agent shows **its reply's own affect**, with hostile categories (anger, contempt,
   disgust) replaced by calm concern.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..errors import InputError
from .emotion import EMOTIONS, AgentExpression, valence_arousal

__all__ = [
    "CUES",
    "CUE_WEIGHT",
    "MAX_TEXT_CHARS",
    "Affect",
    "ConversationAffect",
    "analyse",
]

MAX_TEXT_CHARS = 20_000
"""Longest text analysed (a few pages): longer input is refused rather than silently cut."""

CUE_WEIGHT = 2.0
"""Score of one of our cue words or phrases against 1 for an NRC word: **design**, cues are chosen
for one category each where NRC words often carry several."""

NEGATORS = frozenset({"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without",
                      "hardly", "barely", "isn't", "aren't", "wasn't", "weren't", "don't", "doesn't",
                      "didn't", "can't", "cannot", "won't", "wouldn't", "shouldn't", "couldn't", "ain't", "n't"})
INTENSIFIERS = frozenset({"very", "so", "really", "extremely", "totally", "absolutely", "incredibly", "utterly",
                          "completely", "such", "too", "super", "terribly", "awfully", "deeply"})

CUES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "surprise": ("wow", "whoa", "woah", "omg", "no way", "can't believe", "cannot believe", "turns out",
                 "turned out", "actually", "didn't know", "did not know", "had no idea", "unexpected",
                 "unexpectedly", "suddenly", "out of nowhere", "who knew", "surprise", "surprised",
                 "surprising", "amazing", "astonishing", "really?", "what?", "seriously?"),
    "contempt": ("whatever", "pathetic", "ridiculous", "idiot", "idiots", "fool", "fools", "as if",
                 "so-called", "pompous", "amateur", "amateurs", "lazy", "cheap", "spare me", "a joke",
                 "loser", "losers", "pfft", "pff", "laughable", "beneath", "typical of you", "how typical",
                 "oh please", "clueless", "incompetent"),
    "disgust": ("ew", "eww", "ewww", "yuck", "gross", "rotten", "filthy", "disgusting", "revolting",
                "nauseating", "nauseous", "slimy", "maggots", "vomit", "sickening", "stinks", "smells"),
    "anger": ("furious", "how dare", "sick of", "fed up", "hate you", "mad", "outrageous", "annoyed",
              "annoying", "angry", "livid", "pissed", "infuriating", "unacceptable", "stop it", "ruined"),
    "fear": ("scared", "terrified", "afraid", "worried", "nervous", "panic", "danger", "what if",
             "frightened", "anxious", "help me", "threat"),
    "sadness": ("miss", "lonely", "cried", "crying", "died", "loss", "sorry for", "heartbroken", "depressed",
                "grief", "funeral", "empty"),
    "happiness": ("haha", "hahaha", "lol", "yay", "congratulations", "thank you", "thanks", "love", "glad",
                  "delighted", "great time", "made my day", "cheers me up"),
})
"""Our own cue words and phrases per category (see the module doc); matched on word boundaries."""

WEAK_SCORE = 1.0
"""A category resting on one NRC word, with no cue and a near-neutral VADER compound (|c| < 0.2),
is too weak to show ("the train *leaves*"): the text reads as neutral. **design**"""

_NRC_TO_CATEGORY = {"joy": "happiness", "sadness": "sadness", "anger": "anger", "fear": "fear",
                    "disgust": "disgust", "surprise": "surprise"}
_WORD = re.compile(r"[a-z]+(?:['’][a-z]+)?|[!?]")
_CUE_PATTERNS = {e: [re.compile(r"(?<![a-z])" + re.escape(c) + (r"(?![a-z])" if c[-1].isalpha() else ""))
                     for c in cues] for e, cues in CUES.items()}
_SUFFIXES = ("ing", "ed", "es", "s", "ly", "ful", "ness")


@dataclass(frozen=True)
class Affect:
    """What a text expresses: category, intensity 0..1, valence and arousal −1..1, per-category scores."""

    emotion: str
    intensity: float
    valence: float
    arousal: float
    scores: Mapping[str, float] = field(default_factory=dict)
    question: bool = False
    cues: tuple[str, ...] = ()

    def to_json_dict(self) -> dict:
        return {"emotion": self.emotion, "intensity": round(self.intensity, 3), "valence": round(self.valence, 3),
                "arousal": round(self.arousal, 3), "question": self.question, "cues": list(self.cues),
                "scores": {e: round(s, 3) for e, s in self.scores.items() if s > 0}}


_LEXICONS: dict = {}


def _lexicons():
    """(VADER analyser, NRC word → categories), loaded once from the installed packages."""
    if not _LEXICONS:
        try:
            from nrclex import NRCLex
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as exc:  # pragma: no cover - both are dependencies
            raise InputError(f"text affect needs the packages vaderSentiment and NRCLex ({exc})") from exc
        _LEXICONS["vader"] = SentimentIntensityAnalyzer()
        _LEXICONS["nrc"] = NRCLex(None).__lexicon__  # the bundled JSON, word → categories
    return _LEXICONS["vader"], _LEXICONS["nrc"]


def _nrc_categories(word: str, nrc: Mapping[str, list[str]]) -> list[str]:
    if word in nrc:
        return nrc[word]
    for suffix in _SUFFIXES:  # a light stemmer: NRC lists lemmas ("terrify", "scare")
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            for candidate in (stem, stem + "e", stem[:-1] if stem[-1:] == stem[-2:-1] else stem, stem[:-1] + "y"):
                if candidate in nrc:
                    return nrc[candidate]
    return []


def _check_text(text: object, what: str = "text") -> str:
    if not isinstance(text, str):
        raise InputError(f"{what}: expected a string, got {type(text).__name__}")
    if not text.strip():
        raise InputError(f"{what}: expected some words, got an empty text")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"{what}: expected at most {MAX_TEXT_CHARS} characters, got {len(text)}")
    return text


def analyse(text: str) -> Affect:
    """The `Affect` of a text (see the module doc); `InputError` for empty, huge or non-string text."""
    text = _check_text(text)
    vader, nrc = _lexicons()
    lower = text.lower().replace("’", "'")
    tokens = _WORD.findall(lower)
    scores = dict.fromkeys(EMOTIONS, 0.0)
    cues: list[str] = []

    def negated(position: int) -> bool:
        return any(t in NEGATORS or t.endswith("n't") for t in tokens[max(0, position - 3):position])

    for i, token in enumerate(tokens):
        for category in _nrc_categories(token, nrc):
            target = _NRC_TO_CATEGORY.get(category)
            if target is None:
                continue
            if negated(i):
                if target == "happiness":
                    scores["sadness"] += 1.0
                continue
            scores[target] += 1.0
    token_starts = [m.start() for m in _WORD.finditer(lower)]
    for category, patterns in _CUE_PATTERNS.items():
        for cue, pattern in zip(CUES[category], patterns):
            for m in pattern.finditer(lower):
                position = sum(1 for s in token_starts if s < m.start())
                if negated(position) and category != "surprise":  # "can't believe" is itself a cue
                    if category == "happiness":
                        scores["sadness"] += CUE_WEIGHT
                    continue
                scores[category] += CUE_WEIGHT
                cues.append(cue)
    compound = float(vader.polarity_scores(text)["compound"])
    if not any(scores[e] for e in EMOTIONS[1:]) and abs(compound) >= 0.3:
        scores["happiness" if compound > 0 else "sadness"] += abs(compound)
    elif compound > 0.3:
        scores["happiness"] += compound

    question = text.rstrip().endswith("?")
    intensifiers = sum(t in INTENSIFIERS for t in tokens)
    exclaims = text.count("!")
    shouted = sum(1 for w in re.findall(r"[A-Za-z]{3,}", text) if w.isupper())
    emotion = max(EMOTIONS[1:], key=lambda e: scores[e])  # max keeps the first of equals
    if scores[emotion] <= 0 or (scores[emotion] <= WEAK_SCORE and abs(compound) < 0.2 and not cues):
        emotion = "neutral"
    emphasis = min(1.0, 0.15 * intensifiers + 0.15 * min(exclaims, 3) + 0.2 * min(shouted, 2))
    if emotion == "neutral":
        intensity = 0.0
    else:
        strength = 1.0 - math.exp(-scores[emotion] / 2.0)  # one cue ≈ 0.63, one NRC word ≈ 0.39
        intensity = min(1.0, 0.5 * strength + 0.3 * abs(compound) + 0.3 * emphasis)
    _, arousal = valence_arousal(emotion)
    arousal = max(-1.0, min(1.0, arousal * max(intensity, 0.3) + 0.4 * emphasis))
    return Affect(emotion, intensity, compound, arousal, MappingProxyType(scores), question, tuple(cues))


_HOSTILE = ("anger", "contempt", "disgust")


@dataclass
class ConversationAffect:
    """Decides the agent's expression from the user's utterance and the agent's reply (module doc).

    ``tension`` (0..1) builds up with hostile user turns and decays by ``tension_decay`` each turn;
    at or above ``tense_at`` the agent stays calm even if the latest turn is mild.
    """

    tension_decay: float = 0.5
    tense_at: float = 0.4
    tension: float = 0.0
    history: list = field(default_factory=list)

    def respond(self, user_text: str, reply_text: str | None = None) -> AgentExpression:
        user = analyse(_check_text(user_text, "user text"))
        reply = analyse(_check_text(reply_text, "reply text")) if reply_text is not None else None
        hostile = user.emotion in _HOSTILE
        self.tension = self.tension * self.tension_decay + (user.intensity if hostile else 0.0)
        self.tension = min(1.0, self.tension)
        result = self._decide(user, reply, hostile)
        self.history.append((user, reply, result))
        return result

    def _decide(self, user: Affect, reply: Affect | None, hostile: bool) -> AgentExpression:
        surprised = user.emotion == "surprise" or (user.scores.get("surprise", 0) >= CUE_WEIGHT and user.emotion != "neutral")
        lingering = self.tension >= self.tense_at and not (surprised or user.emotion == "happiness")
        if hostile or lingering:
            why = f"user {user.emotion}" if hostile else f"tension {self.tension:.2f} from earlier turns"
            return AgentExpression("sadness", 0.2, reason=f"calm when the conversation becomes tense ({why}): "
                                                          "light concern, never mirrored hostility")
        if surprised:
            blend = None
            if user.valence >= 0.3:
                blend = ("happiness", 0.6)
            elif user.valence <= -0.3:
                blend = ("sadness", 0.5)
            # lingering tension tempers the surprise rather than hiding it
            return AgentExpression("surprise", min(1.0, 0.5 + 0.4 * user.intensity) * (1.0 - 0.5 * self.tension), blend,
                                   reason="surprise at unexpected information")
        if user.emotion == "happiness" or user.valence >= 0.5:
            return AgentExpression("happiness", min(1.0, 0.4 + 0.5 * max(user.intensity, user.valence)),
                                   reason="smile back at warmth")
        if user.emotion in ("sadness", "fear"):
            return AgentExpression("sadness", 0.35, reason=f"concern at the user's {user.emotion}")
        if reply is not None and reply.emotion != "neutral":
            if reply.emotion in _HOSTILE:
                return AgentExpression("sadness", 0.2, reason=f"the reply reads as {reply.emotion}; shown as calm concern")
            return AgentExpression(reply.emotion, 0.8 * reply.intensity, reason="the reply's own affect")
        return AgentExpression("neutral", 0.0, reason="nothing to express")
