"""Affect from text, offline: an emotion category, intensity, valence and arousal for a sentence,
and the conversation rules that turn the user's words and the agent's reply into the agent's face.

`analyse` scores the seven emotions from four local sources, clause by clause:

* **emotion words** from the NRC Word-Emotion Association Lexicon (Mohammad & Turney 2013,
  *Computational Intelligence* 29:436; the JSON shipped by the ``NRCLex`` package, read with NRCLex's
  own token API — its raw-text path needs TextBlob corpora, which would mean a download). NRC joy is
  happiness; trust/anticipation are not expressions. Many NRC words carry several categories
  ("worthless": anger, disgust, sadness), so a word's vote is split evenly over its categories
  (``1/k``): a word with one category is strong evidence, a word with five is weak. Inflections are
  reduced to NRC's lemmas by a light suffix stripper (``died`` → die, ``scared`` → scare);
* **our cue lexicon** (`CUES`, weight `CUE_WEIGHT`): single-category words and idioms that NRC lacks
  or spreads thin — contempt entirely (NRC has no such category: insults and dismissive idioms),
  interjections ("wow", "ew", "ugh"), bereavement and failure idioms ("passed away"),
  confrontation ("how dare", "fed up"), belief revision for surprise ("turns out", "had no idea",
  "I thought");
* **constructions**, each from an appraisal account of the emotion (Ortony, Clore & Collins 1988,
  *The Cognitive Structure of Emotions*): a *declarative question* ("you won?", "the shop closed?")
  is incredulity → surprise; an undesirable event in a *prospect* clause ("what if", "might",
  "could", "tomorrow") is fear rather than sadness; a *second-person confrontation* ("stop …",
  "why do you keep …", "don't you dare") is anger;
* **valence** from VADER (Hutto & Gilbert 2014, *ICWSM*; package ``vaderSentiment``), computed on the
  text without conventional politeness ("please", "sure", "okay": speech acts, not feelings). A
  positive compound adds to happiness; a negative one with no negative category found adds to
  sadness (general distress, Russell's unpleasant-low-arousal quadrant).

Negation: a negator ("not", "never", "n't" …) negates the next three words of its clause, unless it
is followed by a verb that turns it into an idiom ("can't stop worrying", "not only"). A negated
happy word counts for sadness ("not happy" is unhappy); a negated negative word counts for nothing
("not afraid"). Clauses end at punctuation and at contrastive conjunctions ("but", "though"); a clause
after "but" counts `CONTRAST_GAIN` × and the one before it 1/`CONTRAST_GAIN` × (the feeling a
mixed sentence ends on is its point; VADER weighs "but" the same way).

Decision: the category with the best score; **neutral** when the best score is below `MIN_SCORE`
(e.g. one word that NRC spreads over three categories, "the train *leaves*") and no cue or
construction fired. Ties go to the order of `emotion.EMOTIONS`. Arousal is the category's circumplex
arousal (`emotion.valence_arousal`), raised by intensifiers, capitals and "!".

Evaluation (``facewire bench affect``): the 64-sentence table of the tests (written before the
first analyser, whose cue lists were then written from it), its 24 later held-out sentences, and two
tables written before this analyser: ``tests/expression/data/affect_fresh.tsv`` (104 sentences,
seen while it was developed) and ``affect_blind.tsv`` (48, run only once it was final).

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
    "CONTRAST_GAIN",
    "CUES",
    "CUE_WEIGHT",
    "MAX_TEXT_CHARS",
    "MIN_SCORE",
    "Affect",
    "ConversationAffect",
    "analyse",
]

MAX_TEXT_CHARS = 20_000
"""Longest text analysed (a few pages): longer input is refused rather than silently cut."""

CUE_WEIGHT = 2.0
"""Score of one of our cue words or constructions against at most 1 for an NRC word: **design**,
cues name one category each where NRC words often carry several."""

CONTRAST_GAIN = 1.5
"""Weight of a clause after "but"/"though" (and 1/gain of the one before): **design**, VADER's own
"but" rule weighs the clauses 1.5 and 0.5."""

MIN_SCORE = 1.0
"""Best score below which a text reads as neutral unless a cue or construction fired: **design**,
one single-category NRC word is enough, one word spread over several categories is not."""

NEGATORS = frozenset({"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without",
                      "hardly", "barely", "cannot", "n't"})
# A negator followed by one of these is an idiom, not a negation of what follows ("can't stop
# worrying", "not only", "couldn't help laughing", "can't wait").
_NEGATION_IDIOMS = frozenset({"stop", "help", "only", "wait", "just", "even"})
INTENSIFIERS = frozenset({"very", "so", "really", "extremely", "totally", "absolutely", "incredibly", "utterly",
                          "completely", "such", "too", "super", "terribly", "awfully", "deeply", "truly"})
_CONTRAST = frozenset({"but", "though", "although", "however", "yet"})
_PUNCT = frozenset({",", ";", ":", ".", "!", "?", "—", "–"})
_QUESTION_OPENERS = frozenset({
    "what", "when", "where", "which", "who", "whom", "whose", "why", "how", "do", "does", "did", "is",
    "are", "am", "was", "were", "can", "could", "will", "would", "shall", "should", "may", "might",
    "must", "have", "has", "had", "isn't", "aren't", "wasn't", "weren't", "don't", "doesn't", "didn't",
    "can't", "couldn't", "won't", "wouldn't", "shouldn't", "haven't", "hasn't", "please", "any", "anyone", "anything"})
_PROSPECT = frozenset({"might", "may", "could", "will", "gonna", "tomorrow", "soon", "later", "until",
                       "unless", "suppose", "maybe", "perhaps"})
_PROSPECT_PHRASES = ("what if", "going to", "any moment", "about to", "in case")
_POLITENESS = frozenset({"please", "sure", "okay", "ok", "alright", "kindly", "help", "chance", "welcome",
                         "certainly", "fine"})

CUES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    # interjections, belief revision and unexpectedness (OCC: surprise is the unexpected)
    "surprise": ("wow", "whoa", "woah", "omg", "oh my god", "oh my gosh", "no way", "can't believe",
                 "cannot believe", "turns out", "turned out", "didn't know", "did not know", "had no idea",
                 "didn't expect", "did not expect", "wasn't expecting", "unexpected", "unexpectedly",
                 "suddenly", "all of a sudden", "out of nowhere", "who knew", "surprise", "surprised",
                 "surprising", "astonished", "astonishing", "shocked", "amazed", "actually", "really?",
                 "what?", "seriously?", "huh?"),
    # NRC has no contempt: insults and dismissive idioms aimed at someone else's worth
    "contempt": ("whatever", "pathetic", "ridiculous", "idiot", "idiots", "fool", "fools", "moron", "morons",
                 "clown", "clowns", "as if", "so-called", "pompous", "amateur", "amateurs", "lazy", "cheap",
                 "spare me", "a joke", "loser", "losers", "pfft", "pff", "laughable", "beneath", "typical of you",
                 "how typical", "oh please", "clueless", "incompetent", "worthless", "arrogant", "snob"),
    # sensory and moral revulsion
    "disgust": ("ew", "eww", "ewww", "yuck", "gross", "rotten", "filthy", "disgusting", "disgusted", "revolting",
                "repulsive", "nauseating", "nauseous", "slimy", "maggots", "vomit", "threw up", "throw up",
                "sickening", "stinks", "smells"),
    # anger words and confrontation idioms
    "anger": ("furious", "how dare", "don't you dare", "sick of", "fed up", "had enough", "hate you", "mad",
              "outrageous", "annoyed", "annoying", "angry", "livid", "pissed", "infuriating", "infuriated",
              "unacceptable", "stop it", "shut up", "get out", "how could you", "irritated", "irritating",
              "fuming", "blood boil", "ruined"),
    "fear": ("scared", "terrified", "afraid", "worried", "worry", "worries", "worrying", "nervous", "panic", "panicked", "danger", "what if",
             "frightened", "frightening", "anxious", "help me", "threat", "horrified", "petrified",
             "be careful", "watch out"),
    # loss, failure and loneliness
    "sadness": ("miss", "lonely", "cried", "crying", "died", "passed away", "loss", "sorry for", "i'm sorry",
                "i am sorry", "heartbroken", "depressed", "grief", "funeral", "empty", "miserable", "hopeless",
                "disappointed", "failed"),
    "happiness": ("haha", "hahaha", "lol", "yay", "congratulations", "congrats", "thank you", "thanks", "love",
                  "glad", "delighted", "great time", "made my day", "cheers me up", "proud", "thrilled",
                  "enjoyed", "can't wait"),
})
"""Our own cue words and phrases per category (see the module doc); matched on word boundaries."""

_NRC_TO_CATEGORY = {"joy": "happiness", "sadness": "sadness", "anger": "anger", "fear": "fear",
                    "disgust": "disgust", "surprise": "surprise"}
_NEGATIVE = ("sadness", "fear", "anger", "disgust", "contempt")
_TOKEN = re.compile(r"[a-z]+(?:['’][a-z]+)*|[!?.,;:—–]")
_CUE_PATTERNS = {e: [re.compile(r"(?<![a-z'])" + re.escape(c) + (r"(?![a-z])" if c[-1].isalpha() else ""))
                     for c in cues] for e, cues in CUES.items()}
_PROSPECT_PATTERNS = [re.compile(r"(?<![a-z])" + re.escape(p) + r"(?![a-z])") for p in _PROSPECT_PHRASES]
# Second-person confrontation (anger): an imperative telling the listener off, or a reproach.
_CONFRONT = re.compile(r"(?:^|[.!?,;]\s*)(?:stop|quit|enough|get out|leave me alone|don't you)\b"
                       r"|\bwhy (?:do|did|would|can't|won't) you (?:keep|always|never|even)\b"
                       r"|\byou (?:always|never|keep)\b")


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


def _lemma_candidates(word: str) -> list[str]:
    """The word, then what a light suffix stripper makes of it (NRC lists lemmas: "terrify", "scare")."""
    out = [word]
    for suffix, ends in (("ied", ("y", "ie")), ("ies", ("y",)), ("ing", ("e", "")), ("ed", ("e", "")),
                         ("es", ("e", "")), ("s", ("",)), ("ly", ("", "le")), ("ness", ("",)), ("ful", ("",)),
                         ("ment", ("",))):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            out += [stem + e for e in ends]
            if len(stem) >= 4 and stem[-1] == stem[-2]:  # "stopped" → stop
                out.append(stem[:-1])
            if stem.endswith("ck"):  # "panicked" → panic
                out.append(stem[:-1])
            break
    return out


def _nrc_categories(word: str, nrc: Mapping[str, list[str]]) -> list[str]:
    for candidate in _lemma_candidates(word):
        if candidate in nrc:
            return [_NRC_TO_CATEGORY[c] for c in nrc[candidate] if c in _NRC_TO_CATEGORY]
    return []


def _check_text(text: object, what: str = "text") -> str:
    if not isinstance(text, str):
        raise InputError(f"{what}: expected a string, got {type(text).__name__}")
    if not text.strip():
        raise InputError(f"{what}: expected some words, got an empty text")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"{what}: expected at most {MAX_TEXT_CHARS} characters, got {len(text)}")
    return text


def _is_negator(token: str) -> bool:
    return token in NEGATORS or token.endswith("n't")


def _clauses(tokens: list[str]) -> tuple[list[int], list[float]]:
    """Clause index of every token and each clause's weight (module doc: contrast)."""
    index, weights, current = [], [1.0], 0
    for t in tokens:
        if t in _PUNCT or t in _CONTRAST:
            if index and index[-1] == current and any(i == current for i in index):
                current += 1
                weights.append(1.0)
            if t in _CONTRAST:
                for c in range(current):
                    weights[c] /= CONTRAST_GAIN
                weights[current] *= CONTRAST_GAIN
        index.append(current)
    return index, weights


def _declarative_question(text: str) -> bool:
    """A question phrased as a statement ("you won?"): incredulity, not a request for information."""
    for sentence in re.findall(r"[^.!?]*\?", text.lower().replace("’", "'")):
        words = re.findall(r"[a-z]+(?:'[a-z]+)*", sentence)
        if not words:
            continue
        # the clause that carries the question: after an opening interjection ("wait, you're …?")
        last = re.findall(r"[a-z]+(?:'[a-z]+)*", re.split(r"[,;:]", sentence)[-1])
        if len(words) >= 3 and last and last[0] not in _QUESTION_OPENERS and words[0] not in _QUESTION_OPENERS:
            return True
    return False


def analyse(text: str) -> Affect:
    """The `Affect` of a text (see the module doc); `InputError` for empty, huge or non-string text."""
    text = _check_text(text)
    vader, nrc = _lexicons()
    lower = text.lower().replace("’", "'")
    matches = list(_TOKEN.finditer(lower))
    tokens = [m.group() for m in matches]
    starts = [m.start() for m in matches]
    clause, clause_weight = _clauses(tokens)
    scores = dict.fromkeys(EMOTIONS, 0.0)
    cues: list[str] = []

    def position(char: int) -> int:
        return max(0, sum(1 for s in starts if s <= char) - 1)

    def negated(i: int) -> bool:
        for j in range(max(0, i - 3), i):
            if clause[j] == clause[i] and _is_negator(tokens[j]) and tokens[j + 1] not in _NEGATION_IDIOMS:
                return True
        return False

    prospect = {clause[position(m.start())] for p in _PROSPECT_PATTERNS for m in p.finditer(lower)}
    prospect |= {clause[i] for i, t in enumerate(tokens) if t in _PROSPECT}
    covered: set[int] = set()  # tokens inside a cue: NRC does not count them again
    for category, patterns in _CUE_PATTERNS.items():
        for cue, pattern in zip(CUES[category], patterns):
            for m in pattern.finditer(lower):
                i = position(m.start())
                span = range(i, position(m.end() - 1) + 1)
                covered.update(span)
                if any(_is_negator(t) for t in cue.split()) or cue.endswith("?"):
                    negation = False  # the cue is itself an idiom with a negator ("can't believe")
                else:
                    negation = negated(i)
                w = CUE_WEIGHT * clause_weight[clause[i]]
                if negation:
                    if category == "happiness":
                        scores["sadness"] += w
                    continue
                scores[category] += w
                cues.append(cue)
    for i, token in enumerate(tokens):
        if i in covered or token in _POLITENESS:
            continue
        categories = _nrc_categories(token, nrc)
        if not categories:
            continue
        share = clause_weight[clause[i]] / len(categories)
        for category in categories:
            if negated(i):
                if category == "happiness":
                    scores["sadness"] += share
                continue
            if clause[i] in prospect and category in ("sadness", "anger", "disgust"):
                category = "fear"  # an undesirable prospect is feared (OCC)
            scores[category] += share
    if _declarative_question(text):
        scores["surprise"] += CUE_WEIGHT
        cues.append("declarative question")
    if _CONFRONT.search(lower):
        scores["anger"] += CUE_WEIGHT
        cues.append("confrontation")

    plain = " ".join(w for w in re.findall(r"\S+", text) if re.sub(r"\W", "", w.lower()) not in _POLITENESS)
    compound = float(vader.polarity_scores(plain or text)["compound"])
    if compound > 0:
        scores["happiness"] += 1.5 * compound
    elif compound < 0:  # unpleasantness backs the leading negative category, or reads as sadness
        leading = max(_NEGATIVE, key=lambda e: scores[e])
        scores[leading if scores[leading] > 0 else "sadness"] += abs(compound)

    question = text.rstrip().endswith("?")
    intensifiers = sum(t in INTENSIFIERS for t in tokens)
    exclaims = text.count("!")
    shouted = sum(1 for w in re.findall(r"[A-Za-z]{3,}", text) if w.isupper())
    emotion = max(EMOTIONS[1:], key=lambda e: scores[e])  # max keeps the first of equals
    if scores[emotion] < MIN_SCORE and not cues:
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
