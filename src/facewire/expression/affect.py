"""Affect from text, offline: an emotion category, intensity, valence and arousal for a sentence,
and the conversation rules that turn the user's words and the agent's reply into the agent's face.

`analyse` scores the seven emotions from five local sources, clause by clause:

* **emotion words** from the NRC Word-Emotion Association Lexicon (Mohammad & Turney 2013,
  *Computational Intelligence* 29:436; the JSON shipped by the ``NRCLex`` package, read with NRCLex's
  own token API — its raw-text path needs TextBlob corpora, which would mean a download). NRC joy is
  happiness; trust/anticipation are not expressions. A word's vote is split evenly over its
  categories (``1/k``), and halved (`UNBACKED_NRC`) unless VADER's lexicon rates the word with the
  category's sign: NRC's crowd-sourced associations include many for neutral words ("pound" →
  anger, "depart" → sadness), and surprise, which has no sign, is never backed. Words naming people
  ("friend", "daughter") are topics, not feelings, and are left out. Inflections are reduced to NRC's
  lemmas by a light suffix stripper (``died`` → die, ``scared`` → scare, ``amateurish`` → amateur);
* **stated feelings** (`CUES`, weight `CUE_WEIGHT`): single-category vocabularies of each domain —
  contempt entirely (NRC has none: dismissal, sarcasm, looking down, insults to worth or
  competence; Rozin et al. 1999), interjections ("wow", "ew", "ugh"), incredulity and belief
  revision ("can't believe", "turns out", "who would have thought"), revulsion, anger and its
  expletives, fear, sorrow and loneliness;
* **appraisals** (`APPRAISALS`, weight `APPRAISAL_WEIGHT`): events and objects that people typically
  meet with one category, after the appraisal account of Ortony, Clore & Collins 1988 (*The Cognitive
  Structure of Emotions*) and Rozin's disgust domains — desirable events (a promotion, a birth, an
  admission) → happiness; loss and separation → sadness; blameworthy acts of others (lying,
  cheating, overcharging, ignoring) → anger; threats (an intruder, a biopsy, layoffs, warnings such as
  "get away from") → fear; contaminants (decay, body products, vermin) → disgust. Weaker than a
  stated feeling, so "I can't believe I won" stays surprise;
* **constructions** (`_CONSTRUCTIONS` and two rules): a *declarative question* ("you won?") is
  incredulity → surprise; a *negated expectation* ("I never thought …", "didn't realise") is
  surprise; an undesirable event in a *prospect* clause ("what if", "might", "tomorrow") is fear
  rather than sadness; an *unknown agent acting* ("someone is following me") is fear;
  *second-person confrontation* ("stop …", "why do you keep …"), *reproach* ("you" + a word VADER
  rates ≤ `REPROACH_VALENCE`), *repetition* ("again!", "the third time"), *omission* ("nobody will
  even answer") and *frustration at a thing* ("this stupid app") are anger; *sarcasm* ("like your
  advice was ever useful"), *superiority* ("thinks she's better than …") and a sentence opened by
  "Typical" are contempt; *nobody attending* ("nobody understands me"), *separation* ("haven't seen
  my kids") and *no more* ("can barely walk anymore") are sadness;
* **valence** from VADER (Hutto & Gilbert 2014, *ICWSM*; package ``vaderSentiment``), computed on the
  text without conventional politeness ("please", "sure", "okay": speech acts, not feelings) and
  without person nouns. A positive compound adds to happiness; a negative one backs the leading
  negative category, or sadness when none was found (general distress). A cue of the opposite sign
  halves it (`OPPOSED_VALENCE`).

Negation: a negator ("not", "never", "n't" …) negates the next three words of its clause, up to a
word that starts a new predicate ("and", "because", "that" …), unless it is followed by a verb that
turns it into an idiom ("can't stop worrying", "not only"); quantifiers ("nobody", "nothing") negate
only the next two words ("nobody cares about *your little hobby*"); after a neg-raising verb ("I
don't think …", Horn 1978) the negation runs to the clause's end. A negated pleasant word (NRC joy
or VADER > 0) counts for sadness ("not happy", "won't get better"), a negated safety word for fear
("not sure I'm safe"), a negated fear cue as mild relief (happiness), any other negated word for
nothing. Cues of three words or more are idioms that a negator does not undo. Clauses end at
punctuation and at contrastive conjunctions ("but", "though"); a clause after "but" counts
`CONTRAST_GAIN` × and the one before it 1/`CONTRAST_GAIN` × (the feeling a mixed sentence ends on is
its point; VADER weighs "but" the same way).

Decision: the category with the best score; **neutral** when the best score is below `MIN_SCORE`
(or `AGREEING_SCALE` × it when the sentence's VADER valence agrees with the category) and no cue or
construction fired — plain information, requests and information questions ("What's the weather
like tomorrow?") carry none. Ties go to the order of `emotion.EMOTIONS`. Arousal is the category's
circumplex arousal (`emotion.valence_arousal`), raised by intensifiers, capitals and "!".

The speaker matters once: in the agent's own reply (``role="reply"``, as `ConversationAffect` passes it
and ``bench affect`` reads it from a table's role column) the anger constructions aimed at the
listener (confrontation, prohibition, reproach …) do not apply: an agent advises, it does not confront.

Learning on top (`affect_model`): `analyse` asks a small logistic-regression model, trained on a
corpus written for this project (``tools/affect_corpus``) with the rules' scores among its features,
for the category; `analyse_rules` is the rules alone. The rules read stated feelings well, but a
lexicon cannot infer appraisal without emotion words ("somebody keyed my car"); the model learns
those situations from examples and how far to trust each rule.

Evaluation (``facewire bench affect``, ``--table PATH`` for a table kept elsewhere): the tables in
``tests/expression/data``, each with a header saying when it was written and what it was used for.
The honest numbers are the first runs of tables written blind: ``affect_blind2.tsv`` (rules 65.6 %
before the generalisation pass, 76.0 % after it) and ``affect_blind3.tsv``, written before the
learned model existed (rules 65.8 %, rules + model 94.2 %). Every table has been seen since.

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
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from ..errors import InputError
from .emotion import EMOTIONS, AgentExpression, valence_arousal

__all__ = [
    "APPRAISALS",
    "APPRAISAL_WEIGHT",
    "CONTRAST_GAIN",
    "CUES",
    "CUE_WEIGHT",
    "MAX_TEXT_CHARS",
    "MIN_SCORE",
    "ROLES",
    "UNBACKED_NRC",
    "Affect",
    "ConversationAffect",
    "analyse",
    "analyse_rules",
]

MAX_TEXT_CHARS = 20_000
"""Longest text analysed (a few pages): longer input is refused rather than silently cut."""

CUE_WEIGHT = 2.0
"""Score of one stated-feeling cue or construction against at most 1 for an NRC word: **design**,
cues name one category each where NRC words often carry several."""

APPRAISAL_WEIGHT = 1.25
"""Score of one appraisal cue (an event or object that people typically react to with the category:
a loss, a contaminant, a blameworthy act): **design**, above `MIN_SCORE` so that one suffices, below
`CUE_WEIGHT` so that a stated feeling ("I can't believe I won") outweighs an inferred one."""

UNBACKED_NRC = 0.5
"""Factor on an NRC word's vote when VADER's lexicon gives the word no valence of the category's sign
(**design**): NRC's crowd-sourced associations include many for neutral words ("pound" → anger,
"depart" → sadness, "worm" → surprise); a word both lexicons rate as affective is firmer evidence."""

AGREEING_VALENCE = 0.4
AGREEING_SCALE = 0.75
"""A text whose VADER compound is at least `AGREEING_VALENCE` in size, with the sign of its leading
category, reads as that category from `AGREEING_SCALE` × `MIN_SCORE` (**design**: two weak signals
that agree, one lexical and one from the whole sentence, are worth one strong one)."""

OPPOSED_VALENCE = 0.5
"""Factor on VADER's sentence valence when a cue or appraisal of the opposite sign already scores at
least `APPRAISAL_WEIGHT` (**design**, see `analyse`)."""

REPROACH_VALENCE = -1.3
"""VADER rating at or below which a word with "you" as its subject is a reproach (**design**: −1.3 of
−4 keeps mild or informational words out: "you missed a call" is −1.2, "you messed it up" −1.4)."""

CONTRAST_GAIN = 1.5
"""Weight of a clause after "but"/"though" (and 1/gain of the one before): **design**, VADER's own
"but" rule weighs the clauses 1.5 and 0.5."""

MIN_SCORE = 1.0
"""Best score below which a text reads as neutral unless a cue or construction fired: **design**,
one single-category NRC word that VADER also rates is enough; one unbacked or spread word is not."""

NEGATORS = frozenset({"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without",
                      "hardly", "barely", "cannot", "n't"})
# A negator followed by one of these is an idiom, not a negation of what follows ("can't stop
# worrying", "not only", "couldn't help laughing", "can't wait").
_NEGATION_IDIOMS = frozenset({"stop", "help", "only", "wait", "just", "even"})
# Neg-raising verbs move the negation into their complement ("I don't think it will get better" =
# "I think it won't"; Horn 1978): the scope then runs to the clause's end.
_NEG_RAISERS = frozenset({"think", "believe", "feel", "suppose", "reckon", "imagine"})
_NEGATION_SCOPE = 3
# Quantifier negators deny their own phrase ("nobody cares", "nothing to worry about"), not the rest
# of the clause ("nobody cares about *your little hobby*" still belittles): a shorter scope.
_QUANTIFIER_NEGATORS = frozenset({"nobody", "nothing", "none", "neither", "nor"})
_QUANTIFIER_SCOPE = 2
# Words that close a negation's scope before its three words are up: a new predicate starts.
_SCOPE_BREAKS = frozenset({"and", "or", "because", "so", "when", "while", "if", "then", "since", "that"})
# A negated safety word is a threat, not a sadness ("I'm not sure I'm safe").
_SAFETY = frozenset({"safe", "secure", "protected"})
INTENSIFIERS = frozenset({"very", "so", "really", "extremely", "totally", "absolutely", "incredibly", "utterly",
                          "completely", "such", "too", "super", "terribly", "awfully", "deeply", "truly"})
_CONTRAST = frozenset({"but", "though", "although", "however", "yet"})
_PUNCT = frozenset({",", ";", ":", ".", "!", "?", "—", "–"})
_QUESTION_OPENERS = frozenset({
    "what", "when", "where", "which", "who", "whom", "whose", "why", "how", "do", "does", "did", "is",
    "are", "am", "was", "were", "can", "could", "will", "would", "shall", "should", "may", "might",
    "must", "have", "has", "had", "isn't", "aren't", "wasn't", "weren't", "don't", "doesn't", "didn't",
    "can't", "couldn't", "won't", "wouldn't", "shouldn't", "haven't", "hasn't", "please", "any", "anyone", "anything"})
_PROSPECT = frozenset({"might", "may", "could", "will", "gonna", "tomorrow", "soon", "later",
                       "unless", "suppose", "maybe", "perhaps", "tonight"})
_PROSPECT_PHRASES = ("what if", "going to", "any moment", "about to", "in case")
# Words naming a person are the topic of a sentence, not its feeling, though NRC and VADER rate some
# ("my best *friend* is moving away", NRC "daughter" → joy): left out of both.
_PERSON_NOUNS = frozenset({"friend", "friends", "mother", "mum", "mom", "father", "dad", "baby", "babies", "child",
                           "children", "kid", "kids", "daughter", "son", "family", "sister", "brother", "wife",
                           "husband", "partner", "boyfriend", "girlfriend", "grandmother", "grandfather", "grandma",
                           "grandpa", "neighbour", "neighbor", "colleague", "boss", "teacher", "doctor", "buddy",
                           "pal", "mate"})
_POLITENESS = frozenset({"please", "sure", "okay", "ok", "alright", "kindly", "help", "chance", "welcome",
                         "certainly", "fine"})

# Cue lists: a trailing "*" matches any ending ("disgust*": disgusted, disgusting); spaces match any
# whitespace. They are vocabularies of each category's domain, not sentences of the tables.
CUES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    # interjections, incredulity and belief revision (OCC: surprise is the unexpected)
    "surprise": ("wow", "whoa", "woah", "omg", "oh my god", "oh my gosh", "oh my goodness", "gosh", "no way",
                 "can't believe", "cannot believe", "couldn't believe", "could not believe", "hard to believe",
                 "unbelievable", "are you serious", "are you kidding", "you're kidding", "you're joking",
                 "you must be joking", "is that true", "is it true", "for real", "really?", "seriously?",
                 "what?", "huh?", "since when", "turns out", "turned out", "had no idea", "didn't know",
                 "did not know", "never knew", "who knew", "who would have thought", "who'd have thought",
                 "who would have guessed", "who'd have guessed", "apparently", "believe it or not", "i thought",
                 "i assumed", "to my surprise", "to my amazement", "to my astonishment", "unexpected*",
                 "suddenly", "all of a sudden", "out of nowhere", "out of the blue", "without warning",
                 "of all people", "of all places", "surpris*", "astonish*", "astound*", "stunned", "shocked",
                 "amazed", "taken aback", "caught off guard", "speechless", "jaw dropped", "didn't see that coming"),
    # NRC has no contempt: dismissal, sarcasm, looking down on someone, and insults to a person's
    # worth or competence (contempt is the emotion of hierarchy and community: Rozin et al. 1999)
    "contempt": ("whatever", "spare me", "oh please", "yeah right", "yeah, right", "as if", "big deal",
                 "give me a break", "pfft", "pff", "pft", "how typical", "typical of", "so-called", "self-proclaimed",
                 "wannabe", "beneath me", "beneath us", "beneath them", "look down on", "looks down on",
                 "looked down on", "not worth my time", "not worth a", "waste of space", "waste of oxygen",
                 "people like you", "people like him", "people like her", "people like them", "someone like",
                 "the likes of", "who does he think", "who does she think", "who do they think",
                 "who do you think you are", "thinks he's so", "thinks she's so", "think they're so",
                 "owns the place", "own the place", "better than everyone", "better than everybody",
                 "better than the rest", "pretending to be", "pretends to be", "calls himself",
                 "calls herself", "a child could", "even a child", "couldn't organise", "couldn't organize",
                 "wouldn't know", "bunch of", "little man", "little woman", "your little", "his little",
                 "her little", "their little", "small-minded", "narrow-minded", "simple-minded", "lowlife",
                 "low-life", "riff-raff", "peasant*", "strutting", "smug", "sneer*", "scoff*", "rolled my eyes",
                 "roll my eyes", "idiot*", "fool", "fools", "foolish", "moron*", "imbecile*", "cretin*", "clown*",
                 "buffoon*", "loser*", "hack", "hacks", "fraud*", "charlatan*", "is a joke", "are a joke", "was a joke",
                 "what a joke", "such a joke", "a complete joke", "a total joke",
                 "amateur*", "mediocr*", "pathetic", "worthless", "useless", "spineless", "gutless", "coward*",
                 "stupid", "stupidest", "dumb", "dumbest", "dimwit*", "dim-witted", "too dim", "too dense", "thick-headed", "brainless", "clueless", "ignorant",
                 "incompetent", "inept", "childish", "juvenile", "petty", "pompous", "arrogant", "snob*",
                 "pretentious", "laughable", "ridiculous", "ludicrous", "nonsense", "drivel", "twaddle",
                 "hogwash", "tasteless", "tacky", "any taste", "no taste", "half a brain", "lazy", "oh look",
                 "another genius", "real genius", "an insult to", "way out of a paper bag", "never done a day",
                 "what do you expect from"),
    # sensory and moral revulsion (Rozin, Haidt & McCauley's disgust domains)
    "disgust": ("ew", "eww", "ewww", "yuck", "yuk", "ugh", "gross", "grossed out", "disgust*", "revolting",
                "repuls*", "repugnan*", "nause*", "sickening", "vile", "foul", "putrid", "rancid", "stink*",
                "stank", "stench", "reek*", "smelly", "makes me sick", "made me sick", "sick to my stomach",
                "turns my stomach", "turned my stomach", "stomach-churning", "can't stomach", "gag*", "retch*",
                "despicable", "depraved", "perverted", "sleazy", "creepy", "degrading"),
    # anger words, expletives, confrontation and reproach idioms
    "anger": ("furious", "fuming", "livid", "enraged", "outraged", "outrage*", "mad at", "so mad", "i'm mad",
              "really mad", "very mad", "am mad", "getting mad", "got mad", "makes me mad", "angry", "anger*", "annoyed", "annoying", "irritat*", "infuriat*", "pissed",
              "aggravat*", "exasperat*", "fed up", "sick of", "sick and tired", "had enough", "enough is enough",
              "how dare", "don't you dare", "hate you", "drives me crazy",
              "drives me mad", "drives me nuts", "driving me crazy", "driving me mad", "gets on my nerves",
              "blood boil", "lost my temper", "unacceptable", "outrageous", "unfair", "not fair", "screw you",
              "go to hell", "shut up", "get out", "stop it", "leave me alone", "how could you", "the hell",
              "the heck", "damn", "damn it", "goddamn", "bloody", "freaking", "fucking", "won't forgive",
              "never forgive", "can't take it"),
    "fear": ("scared", "scary", "terrified", "terrifying", "afraid", "fright*", "fearful", "worried", "worry",
             "worries", "worrying", "nervous", "anxious", "anxiety", "panic*", "dread*", "petrified", "alarmed",
             "uneasy", "on edge", "nightmare*", "threat*", "danger*", "unsafe", "help me", "be careful",
             "watch out", "look out", "stay away", "what if", "shaking", "trembling", "heart pounding",
             "heart racing", "heart is pounding", "heart is racing", "cold sweat"),
    # stated sorrow, loneliness and hopelessness
    "sadness": ("lonely", "loneliness", "cried", "crying", "in tears", "sobbing", "weeping", "heartbroken",
                "heartbreak*", "heart sank", "broken heart", "depressed", "depression", "feeling down",
                "feel down", "feeling low", "feel low", "feeling blue", "feel blue", "grief", "grieving",
                "mourn*", "miserable", "hopeless", "helpless", "no point", "what's the point", "pointless",
                "disappointed", "disappointing", "let down", "unhappy", "sorry for", "i'm sorry",
                "i am sorry", "so sorry", "sorry to hear", "regret*", "wish i had", "wish i'd", "if only",
                "empty", "miss", "missing", "misses", "missed you"),
    "happiness": ("haha", "hahaha", "lol", "yay", "hooray", "woohoo", "congrat*", "thank you", "thanks", "love it",
                  "love this", "glad", "delighted", "great time", "made my day", "cheers me up", "proud",
                  "thrilled", "enjoyed", "can't wait", "over the moon", "on cloud nine", "on top of the world",
                  "couldn't be happier", "can't stop smiling", "can't stop grinning", "can't stop laughing",
                  "grinning", "laughed", "laughing", "well done", "good job", "nice work"),
})
"""Stated feelings per category (weight `CUE_WEIGHT`; see the module doc); matched on word boundaries."""

APPRAISALS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    # desirable events (OCC joy): achievements and life events people congratulate
    "happiness": ("got the job", "got a job", "job offer", "promoted", "promotion", "got engaged", "got married",
                  "graduated", "passed my", "passed the", "passed our", "passed her", "passed his", "we won",
                  "i won", "you won", "won the", "got accepted", "was accepted", "were accepted", "hired",
                  "first steps", "came true", "looking up", "worked out", "went perfectly", "paid off",
                  "had a baby", "had her baby", "had their baby", "gave birth", "was born", "new baby", "dream job",
                  "dream come true"),
    # loss and separation (OCC distress at an undesirable event)
    "sadness": ("passed away", "died", "death", "funeral", "put to sleep", "lost my", "lost our", "lost her",
                "lost his", "lost him", "broke up", "break-up", "breakup", "divorce*", "left me", "leave me",
                "moving away", "moved away", "moving to another", "alone", "by myself", "forgot my birthday",
                "failed", "failure", "too late", "for good", "gone forever", "never again",
                "no longer", "closed down", "goodbye to my", "goodbye to our", "had to say goodbye", "said goodbye",
                "saying goodbye", "farewell", "go wrong", "goes wrong", "went wrong",
                "going wrong"),
    # blameworthy acts of others and reproach (OCC anger = reproach + distress)
    "anger": ("lied", "lying to", "liar*", "cheated", "betray*", "stole", "stolen", "ripped off", "rip-off",
              "overcharg*", "charged me", "broke his promise", "broke her promise", "broke their promise",
              "broke your promise", "you promised", "ignored", "ignoring", "for no reason", "without telling me",
              "without asking", "behind my back", "cut in line", "cut me off", "disrespect*", "rude",
              "insult*", "punish*", "revenge", "lies", "every single time", "without notice",
              "without any notice", "without permission", "without an apology", "without any explanation",
              # aversion: anger unless the object is revolting (a disgust cue then outweighs it)
              "i hate", "hate it when", "can't stand", "cannot stand"),
    # threats: danger signs and harm to come (OCC fear = prospect of an undesirable event)
    "fear": ("intruder", "stranger", "following me", "following us", "strange noise", "strange sound",
             "strange man", "call the police", "lock the door*", "stay inside", "emergency", "biopsy", "lump",
             "test results", "surgery", "layoff*", "lose my job", "losing my job", "get away from", "take cover",
             "run for", "evacuat*", "growl*", "snarl*"),
    # contaminants: decay, body products, vermin (Rozin's core disgust)
    "disgust": ("rotten", "rotting", "gone off", "gone bad", "went off", "went bad", "gone sour", "turned sour",
                "curdled", "mould*", "mold", "moldy", "slime", "slimy", "greasy", "grimy", "filth*", "dirty",
                "stained", "mucus", "snot", "phlegm", "spat", "spit", "spitting", "drool*", "sneezed on",
                "sneezed right on", "vomit*", "puke*", "threw up", "throw up", "throwing up", "barf*", "urine",
                "poop", "feces", "faeces", "excrement", "diaper", "nappy", "pus", "maggot*", "worm",
                "worms", "cockroach*", "roach*", "rats", "lice", "fleas", "germs", "sewage", "carcass",
                "roadkill", "hair in", "smelled of", "smells of", "smelled like", "smells like", "smelled off",
                "smells off", "smelled bad", "smells bad"),
})
"""Appraisal cues per category (weight `APPRAISAL_WEIGHT`): events and objects, not stated feelings."""

_NRC_TO_CATEGORY = {"joy": "happiness", "sadness": "sadness", "anger": "anger", "fear": "fear",
                    "disgust": "disgust", "surprise": "surprise"}
_NEGATIVE = ("sadness", "fear", "anger", "disgust", "contempt")
_TOKEN = re.compile(r"[a-z]+(?:['’][a-z]+)*|[!?.,;:—–]")


def _cue_regex(cues: tuple[str, ...]) -> re.Pattern:
    """One alternation of the cues, longest first, on word boundaries (see `CUES` for "*")."""
    parts = []
    for cue in sorted(cues, key=len, reverse=True):
        body = r"\s+".join(re.escape(w) for w in cue.rstrip("*").split())
        tail = r"[a-z'-]*" if cue.endswith("*") else (r"(?![a-z])" if cue[-1].isalpha() else "")
        parts.append(body + tail)
    return re.compile(r"(?<![a-z'])(?:" + "|".join(parts) + ")")


_CUE_RE = {e: _cue_regex(c) for e, c in CUES.items()}
_APPRAISAL_RE = {e: _cue_regex(c) for e, c in APPRAISALS.items()}
_PROSPECT_PATTERNS = [re.compile(r"(?<![a-z])" + re.escape(p) + r"(?![a-z])") for p in _PROSPECT_PHRASES]
# Constructions: (category, weight, pattern, name).
_CONSTRUCTIONS = (
    # second-person confrontation: an imperative telling the listener off, or a reproach
    ("anger", CUE_WEIGHT, re.compile(
        r"(?:^|[.!?,;]\s*)(?:stop|quit|enough|get out|leave me alone|don't you|don't ever|never (?:speak|talk))\b"
        r"|\bwhy (?:do|did|would|can't|won't) you (?:keep|always|never|even)\b|\byou (?:always|never|keep)\b"),
     "confrontation"),
    # frustration at a thing: an insult aimed at an object is anger, not contempt for a person
    ("anger", CUE_WEIGHT, re.compile(r"\b(?:this|that|these|those)\s+(?:stupid|damn|damned|bloody|freaking|"
                                     r"fucking|useless|idiotic|ridiculous)\b"), "frustration"),
    # repetition as a reproach ("again!", "three times", "the third time")
    ("anger", APPRAISAL_WEIGHT, re.compile(
        r"\bagain\s*!|\b(?:two|three|four|five|ten|twenty|fifty|a hundred|a thousand|so many|how many)\s+times\b"
        r"|\bthe\s+(?:second|third|fourth|fifth|tenth|hundredth|last)\s+time\b"), "repetition"),
    # a negated expectation is belief revision ("I never thought …", "didn't realise")
    ("surprise", CUE_WEIGHT, re.compile(
        r"\b(?:never|didn't|did not|hadn't|had not|wouldn't have|would never have)\s+(?:have\s+)?(?:expect|"
        r"thought|imagin|realis|realiz|guess|dream|predict)[a-z]*"), "negated expectation"),
    # an unknown agent doing something nearby is a threat ("someone is following me")
    ("fear", APPRAISAL_WEIGHT, re.compile(
        r"\b(?:someone|somebody|something|a stranger|some guy)\s+(?:(?:is|was|has been|had been|keeps|kept)\s+)?"
        r"(?:following|watching|trying|breaking|banging|knocking|calling|scratching|lurking|hiding|prowling|creeping|"
        r"staring|chasing|climbing|moving|coming for|tapping|rattling|standing outside)\b"), "unknown agent"),
    # a loss of ability or meaning: "can barely walk anymore", "nothing matters anymore"
    ("sadness", APPRAISAL_WEIGHT, re.compile(
        r"\b(?:can't|cannot|can|couldn't|barely|hardly|nothing|nobody|no one|never)\b[^.!?,;]*\b(?:anymore|any longer)\b"),
     "no more"),
    # dismissal opening a sentence: "Typical, …", "Typical politician, …"
    ("contempt", CUE_WEIGHT, re.compile(r"(?:^|[.!?]\s+)typical\b"), "typical"),
    # omission as a reproach: "nobody will even answer", "you didn't even call"
    ("anger", APPRAISAL_WEIGHT, re.compile(
        r"\b(?:(?:won't|wouldn't|didn't|doesn't|don't|will not|did not|never|couldn't)"
        r"|(?:nobody|no one)\s+(?:will|would|could|can|did))\s+even\s+(?!bother)"),
     "omission"),
    # loneliness: nobody attends to the speaker ("nobody understands me", "no one called")
    ("sadness", APPRAISAL_WEIGHT, re.compile(
        r"\b(?:nobody|no one)\s+(?:(?:cares|understands|listens|loves|likes|wants|notices)\b|(?:remembered|remembers|"
        r"called|calls|visited|visits|came|asked|noticed)\s+(?:me|my|to see me)\b)"), "nobody attends"),
    # separation: "I haven't seen my kids since …"
    ("sadness", APPRAISAL_WEIGHT, re.compile(
        r"\b(?:haven't|hasn't|have not|has not|hadn't|had not)\s+(?:seen|heard from|spoken to|talked to)\s+"
        r"(?:my|our|him|her|them|his|their)\b"),
     "separation"),
    # admission, a desirable event: "I got into the university", "got accepted to college"
    ("happiness", APPRAISAL_WEIGHT, re.compile(
        r"\b(?:got|get|been|was|were)\s+(?:into|in to|accepted\s+(?:to|into|at|by))\s+(?:the\s+|a\s+|my\s+|her\s+|his\s+)?"
        r"(?:[a-z]+\s+)?(?:university|college|school|program|programme|course|team|final|finals|band|club)\b"),
     "admission"),
    # sensory disgust at bodily acts
    ("disgust", APPRAISAL_WEIGHT, re.compile(r"\bpick(?:s|ed|ing)?\s+(?:his|her|their|your|my)\s+nose\b"),
     "nose picking"),
    # a prohibition shouted at the listener: "Don't talk to me like that!"
    ("anger", APPRAISAL_WEIGHT, re.compile(r"(?:^|[.!?]\s+)(?:don't|do not|never)\s+[a-z][^.!?]*!"), "prohibition"),
    # belittling comparison: "a child could do that", "a monkey could do her job"
    ("contempt", CUE_WEIGHT, re.compile(
        r"\b(?:a|any|even a)\s+(?:child|monkey|toddler|chimp|five-year-old|six-year-old|trained monkey)\s+could\b"),
     "belittling comparison"),
    # a desirable outcome obtained: "got his dream job", "got the scholarship"
    ("happiness", APPRAISAL_WEIGHT, re.compile(
        r"\bgot\s+(?:his|her|their|my|our|the|a|an)\s+(?:dream\s+|new\s+|first\s+)?(?:job|house|flat|visa|"
        r"scholarship|promotion|contract|offer|place)\b"), "goal obtained"),
    # superiority: "she thinks she's better than …", "thinks he's so clever"
    ("contempt", CUE_WEIGHT, re.compile(
        r"\bthinks?\s+(?:he's|she's|they're|he is|she is|they are|you're|you are)\s+(?:so\s+)?"
        r"(?:better|smarter|superior|special|clever|above|important)\b"), "superiority"),
    # euthanasia of a pet ("we had to put our dog to sleep"): a bereavement
    ("sadness", APPRAISAL_WEIGHT, re.compile(r"\bput\s+(?:[a-z']+\s+){0,3}to\s+sleep\b"), "put to sleep"),
    # sarcasm: "like your advice was ever useful"
    ("contempt", CUE_WEIGHT, re.compile(
        r"\blike\s+(?:[a-z']+\s+){1,4}(?:was|were|is|are|has|had|did|does|could|would|will)\s+ever\b"), "sarcasm"),
)


_LISTENER_ANGER = frozenset({"confrontation", "prohibition", "repetition", "omission"})
"""Constructions that read anger at the listener: not applied to the agent's own replies."""

ROLES = (None, "user", "reply")
"""Who speaks a text (`analyse`): unknown, the user, or the agent replying."""


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
    probabilities: Mapping[str, float] = field(default_factory=dict)

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
                         ("ment", ("",)), ("ish", ("", "e"))):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            out += [stem + e for e in ends]
            if len(stem) >= 4 and stem[-1] == stem[-2]:  # "stopped" → stop
                out.append(stem[:-1])
            if stem.endswith("ck"):  # "panicked" → panic
                out.append(stem[:-1])
            break
    if word.endswith(("ed", "es")) and len(word) >= 4:  # "lied" → lie, "smiled" → smile
        out.append(word[:-1])
    return out


def _nrc_categories(word: str, nrc: Mapping[str, list[str]]) -> list[str]:
    for candidate in _lemma_candidates(word):
        if candidate in nrc:
            return [_NRC_TO_CATEGORY[c] for c in nrc[candidate] if c in _NRC_TO_CATEGORY]
    return []


def _valence(word: str, lexicon: Mapping[str, float]) -> float:
    """VADER's mean rating of the word or its lemma (−4..4; 0 when VADER does not rate it)."""
    for candidate in _lemma_candidates(word):
        if candidate in lexicon:
            return float(lexicon[candidate])
    return 0.0


def _backed(category: str, valence: float) -> bool:
    """Whether VADER's valence of a word agrees with an NRC category of it. Surprise has no valence
    sign, so VADER never backs it: NRC's surprise words are mostly evaluations ("amazing") or events
    ("guess", "married"), while surprise is read from its own cues and constructions."""
    if category == "happiness":
        return valence > 0
    if category == "surprise":
        return False
    return valence < 0


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


def _negated_tokens(tokens: list[str], clause: list[int]) -> set[int]:
    """Indices in a negation's scope (module doc: negation)."""
    out: set[int] = set()
    for i, t in enumerate(tokens):
        if not _is_negator(t) or i + 1 >= len(tokens) or tokens[i + 1] in _NEGATION_IDIOMS:
            continue
        raising = tokens[i + 1] in _NEG_RAISERS
        scope = _QUANTIFIER_SCOPE if t in _QUANTIFIER_NEGATORS else _NEGATION_SCOPE
        for j in range(i + 1, len(tokens)):
            if clause[j] != clause[i] or (not raising and (j - i > scope or tokens[j] in _SCOPE_BREAKS)):
                break
            out.add(j)
    return out


_SECOND_PERSON = frozenset({"you", "you've", "you'd", "you'll"})


def _second_person_reproach(tokens: list[str], clause: list[int], negated: set[int], covered: set[int],
                            lexicon: Mapping[str, float]) -> int | None:
    """Index of an unpleasant word (VADER ≤ `REPROACH_VALENCE`) whose subject is "you" (within two
    words after it, same clause, not negated): the listener blamed for something, anger (OCC
    reproach). None when there is none or a cue already read the word."""
    for i, t in enumerate(tokens):
        if t not in _SECOND_PERSON:
            continue
        for j in range(i + 1, min(i + 4, len(tokens))):
            if clause[j] != clause[i] or tokens[j] in _PUNCT:
                break
            if j not in negated and j not in covered and _valence(tokens[j], lexicon) <= REPROACH_VALENCE:
                return j
    return None


def _opener(word: str) -> bool:
    return word in _QUESTION_OPENERS or word.split("'")[0] in _QUESTION_OPENERS  # "what's" opens like "what"


def _declarative_question(text: str) -> bool:
    """A question phrased as a statement ("you won?"): incredulity, not a request for information."""
    for sentence in re.findall(r"[^.!?]*\?", text.lower().replace("’", "'")):
        words = re.findall(r"[a-z]+(?:'[a-z]+)*", sentence)
        if not words:
            continue
        # the clause that carries the question: after an opening interjection ("wait, you're …?")
        last = re.findall(r"[a-z]+(?:'[a-z]+)*", re.split(r"[,;:]", sentence)[-1])
        if len(words) >= 3 and last and not _opener(last[0]) and not _opener(words[0]):
            return True
    return False


def analyse(text: str, role: str | None = None) -> Affect:
    """The `Affect` of a text: the category the learned model (`affect_model`) reads on top of the
    rules, with intensity, valence and arousal from the rules' evidence; `InputError` for empty,
    huge or non-string text, ``role`` as in `analyse_rules`."""
    rules = analyse_rules(text, role)
    from .affect_model import load_default_model

    probabilities = load_default_model().probabilities(text, role, rules)
    emotion = max(EMOTIONS, key=lambda e: probabilities[e])
    if role == "reply" and emotion == "anger" and rules.emotion != "anger":
        # the agent does not confront its user: the model learnt imperatives and "you" sentences as
        # anger from users; in a reply only the rules' stated anger counts (`analyse_rules`)
        emotion = max((e for e in EMOTIONS if e != "anger"), key=lambda e: probabilities[e])
    if emotion == rules.emotion:
        return replace(rules, probabilities=MappingProxyType(probabilities))
    exclaims, shouted = text.count("!"), sum(1 for w in re.findall(r"[A-Za-z]{3,}", text) if w.isupper())
    intensifiers = sum(t in INTENSIFIERS for t in _TOKEN.findall(text.lower()))
    emphasis = min(1.0, 0.15 * intensifiers + 0.15 * min(exclaims, 3) + 0.2 * min(shouted, 2))
    if emotion == "neutral":
        intensity = 0.0
    else:  # the model's confidence stands in for the rules' score of a category they did not pick
        intensity = min(1.0, 0.5 * probabilities[emotion] + 0.3 * abs(rules.valence) + 0.3 * emphasis)
    _, arousal = valence_arousal(emotion)
    arousal = max(-1.0, min(1.0, arousal * max(intensity, 0.3) + 0.4 * emphasis))
    return replace(rules, emotion=emotion, intensity=intensity, arousal=arousal,
                   probabilities=MappingProxyType(probabilities))


def analyse_rules(text: str, role: str | None = None) -> Affect:
    """The `Affect` of a text by the rules alone (see the module doc); `InputError` for empty, huge
    or non-string text.

    ``role`` is who speaks: None or "user" (anyone), or "reply" (the agent answering the user). An
    agent does not confront its user: in a reply, imperatives and "you" sentences are advice or
    information ("Don't open the door to strangers!", "You missed a call"), so the listener-directed
    anger constructions (`_LISTENER_ANGER`) do not apply.
    """
    text = _check_text(text)
    if role not in ROLES:
        raise InputError(f"role: expected one of {', '.join(repr(r) for r in ROLES)}, got {role!r}")
    reply = role == "reply"
    vader, nrc = _lexicons()
    lower = text.lower().replace("’", "'")
    matches = list(_TOKEN.finditer(lower))
    tokens = [m.group() for m in matches]
    starts = [m.start() for m in matches]
    clause, clause_weight = _clauses(tokens)
    negated = _negated_tokens(tokens, clause)
    scores = dict.fromkeys(EMOTIONS, 0.0)
    cues: list[str] = []

    def position(char: int) -> int:
        return max(0, sum(1 for s in starts if s <= char) - 1)

    prospect = {clause[position(m.start())] for p in _PROSPECT_PATTERNS for m in p.finditer(lower)}
    prospect |= {clause[i] for i, t in enumerate(tokens) if t in _PROSPECT}
    covered: set[int] = set()  # tokens inside a cue: NRC does not count them again

    def add(category: str, weight: float, start: int, end: int, name: str, negatable: bool) -> None:
        i = position(start)
        covered.update(range(i, position(end - 1) + 1))
        w = weight * clause_weight[clause[i]]
        if negatable and i in negated:
            if category == "happiness":  # "not glad" is unhappy
                scores["sadness"] += w
            elif category == "fear":  # "not worried": relief, a mild pleasure (OCC)
                scores["happiness"] += 0.5 * w
            return
        scores[category] += w
        cues.append(name)

    for table, weight in ((_CUE_RE, CUE_WEIGHT), (_APPRAISAL_RE, APPRAISAL_WEIGHT)):
        for category, pattern in table.items():
            for m in pattern.finditer(lower):
                cue = m.group()
                # a cue with its own negator, a question, or a phrase of three words or more is an
                # idiom: a negator before it does not undo it ("couldn't find his way out of a paper bag")
                idiom = any(_is_negator(t) for t in cue.split()) or cue.endswith("?") or len(cue.split()) >= 3
                add(category, weight, m.start(), m.end(), cue, not idiom)
    for category, weight, pattern, name in _CONSTRUCTIONS:
        if reply and name in _LISTENER_ANGER:
            continue
        for m in pattern.finditer(lower):
            add(category, weight, m.start(), max(m.start() + 1, m.end()), name, False)
    for i, token in enumerate(tokens):
        if i in covered or token in _POLITENESS or token in _PUNCT or token in _PERSON_NOUNS:
            continue
        categories = _nrc_categories(token, nrc)
        valence = _valence(token, vader.lexicon)
        w = clause_weight[clause[i]]
        if i in negated:  # a negated pleasant word is unpleasant; a negated unpleasant one is nothing
            if token in _SAFETY:
                scores["fear"] += w
            elif "happiness" in categories or valence > 0:
                # a clearly pleasant word (VADER ≥ 1.5 of 4) negated counts as one backed NRC word
                scores["sadness"] += w * max(1.0 / len(categories) if "happiness" in categories else 0.0,
                                             min(1.0, valence / 1.5))
            continue
        for category in categories:
            share = w / len(categories) * (1.0 if _backed(category, valence) else UNBACKED_NRC)
            if clause[i] in prospect and category in ("sadness", "anger", "disgust"):
                category = "fear"  # an undesirable prospect is feared (OCC)
            scores[category] += share
    if _declarative_question(text):
        scores["surprise"] += CUE_WEIGHT
        cues.append("declarative question")
    reproach = None if reply else _second_person_reproach(tokens, clause, negated, covered, vader.lexicon)
    if reproach is not None:
        scores["anger"] += APPRAISAL_WEIGHT * clause_weight[clause[reproach]]
        cues.append("second-person reproach")

    plain = " ".join(w for w in re.findall(r"\S+", text)
                     if re.sub(r"\W", "", w.lower()) not in _POLITENESS | _PERSON_NOUNS)
    compound = float(vader.polarity_scores(plain or text)["compound"])
    # VADER sums every rated word, also those naming people and things ("my best friend is moving
    # away"); a cue of the opposite sign names the feeling itself and halves the sentence valence
    negative_cue = any(scores[e] >= APPRAISAL_WEIGHT for e in _NEGATIVE)
    if compound > 0:
        scores["happiness"] += 1.5 * compound * (OPPOSED_VALENCE if negative_cue else 1.0)
    elif compound < 0:  # unpleasantness backs the leading negative category, or reads as sadness
        leading = max(_NEGATIVE, key=lambda e: scores[e])
        opposed = OPPOSED_VALENCE if scores["happiness"] >= APPRAISAL_WEIGHT else 1.0
        scores[leading if scores[leading] > 0 else "sadness"] += abs(compound) * opposed

    question = text.rstrip().endswith("?")
    intensifiers = sum(t in INTENSIFIERS for t in tokens)
    exclaims = text.count("!")
    shouted = sum(1 for w in re.findall(r"[A-Za-z]{3,}", text) if w.isupper())
    emotion = max(EMOTIONS[1:], key=lambda e: scores[e])  # max keeps the first of equals
    # a weak lead that the whole sentence's valence agrees with is enough ("that's a real shame")
    agrees = abs(compound) >= AGREEING_VALENCE and (compound > 0) == (emotion == "happiness") and emotion != "surprise"
    if scores[emotion] < MIN_SCORE * (AGREEING_SCALE if agrees else 1.0) and not cues:
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
        reply = analyse(_check_text(reply_text, "reply text"), role="reply") if reply_text is not None else None
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
