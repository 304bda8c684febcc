"""Text affect: the sentence tables of ``data/`` (their headers say when they were written), negation scope, the
appraisal constructions, neutral information, intensifiers, questions, bad input, ``bench affect --table``, and the
conversation rules (calm when tense, surprise at unexpected information)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from facewire.bench import affect as bench_affect
from facewire.bench.affect import load_rows, load_table, text_agreement
from facewire.errors import InputError
from facewire.expression.affect import MAX_TEXT_CHARS, ConversationAffect, analyse
from facewire.expression.emotion import EMOTIONS
from facewire.expression.face_affect import confusion

DATA = Path(__file__).parent / "data"
SENTENCES = load_table(DATA / "affect_original.tsv")  # before the first analyser; its cues came from it
HELDOUT = load_table(DATA / "affect_heldout.tsv")  # after the first analyser's cues, never tuned on by it
FRESH = load_table(DATA / "affect_fresh.tsv")  # before this analyser (seen while developing it)
BLIND = load_table(DATA / "affect_blind.tsv")  # run once on the previous analyser (71 %); seen in the generalisation pass
DEV = load_table(DATA / "affect_dev.tsv")  # written during the generalisation pass, tuned on
BLIND2 = load_table(DATA / "affect_blind2.tsv")  # written blind, measured once after the generalisation pass (76 %)
BLIND3 = load_table(DATA / "affect_blind3.tsv")  # written blind, measured once on the learned model (94 %)


def _agreement(table):
    agreement, truth, seen = text_agreement(table)
    return agreement, confusion(truth, seen)


@pytest.mark.parametrize("table, floor", [
    (SENTENCES, 0.8),  # before the first analyser; its cues came from it
    (HELDOUT, 0.8),
    (FRESH, 0.8),
    (BLIND, 0.8),  # 71 % when the previous analyser was frozen; its misses were then seen
    (BLIND2, 0.8),  # the rules alone: 76 % when measured blind; the learned model on top reads more
    (BLIND3, 0.9),  # 94 % when measured once, blind, on the learned model; a floor against regressions
    (DEV, 0.8),
], ids=["original", "heldout", "fresh", "blind", "blind2", "blind3", "dev"])
def test_sentence_tables(table, floor):
    assert len(table) >= 24 and {e for _, e in table} >= set(EMOTIONS) - {"neutral", "contempt"}
    agreement, matrix = _agreement(table)
    print(f"\n{agreement:.0%} agreement\n{matrix}")
    assert agreement >= floor


def test_blind_tables_cover_every_category():
    for table in (FRESH, BLIND2, BLIND3, DEV):
        assert len(table) >= 80 and {e for _, e in table} == set(EMOTIONS)


@pytest.mark.parametrize("text, expected", [
    # negation: a neg-raising verb carries it into its complement; a negated pleasant word is sadness
    ("I don't think things will ever get better.", "sadness"),
    # a negated safety word is a threat; the plain one is not
    ("I'm not sure I'm safe here.", "fear"),
    # a quantifier negates its own phrase only: the belittling rest of the clause stands
    ("Nobody cares about your little hobby.", "contempt"),
    # relief: a negated fear
    ("I'm not worried at all, things are looking up.", "happiness"),
    # an unknown agent acting nearby is a threat; a stranger doing an errand is not
    ("Someone is following me.", "fear"),
    ("Someone is coming to fix the heater tomorrow.", "neutral"),
    # an insult aimed at a thing is frustration (anger); at people, contempt
    ("This stupid printer jammed again!", "anger"),
    ("People who believe that are simply stupid.", "contempt"),
    ("Sure, like your advice was ever useful.", "contempt"),
    ("She thinks she's better than everyone else.", "contempt"),
    # the listener blamed for something unpleasant; an informational "you" sentence is not a reproach
    ("You ruined the whole evening.", "anger"),
    ("You missed a call from the dentist.", "neutral"),
    # a negated expectation is belief revision
    ("I never expected to see her there.", "surprise"),
    # a contaminant is disgust even when VADER reads the sentence as pleasant
    ("There were maggots in the bin.", "disgust"),
    # people named in a sentence are its topic, not its feeling
    ("My best friend is moving to another country.", "sadness"),
])
def test_appraisals_and_constructions(text, expected):
    affect = analyse(text)
    assert affect.emotion == expected, (affect.emotion, dict(affect.scores), affect.cues)


@pytest.mark.parametrize("text", [
    "What's the weather going to be like tomorrow?",  # "what's" opens an information question
    "How many ounces are in a pound?",  # NRC's "pound" → anger is not backed by VADER
    "Tell me a joke.",
    "I haven't seen that film yet.",
    "The typical commute takes forty minutes.",
    "Please say goodbye to the guests for me.",
    "Your order has shipped and should arrive on Friday.",
])
def test_plain_information_and_requests_are_neutral(text):
    affect = analyse(text)
    assert affect.emotion == "neutral", (affect.emotion, dict(affect.scores), affect.cues)


def test_the_agent_does_not_confront_its_user():
    # the same words read as anger from the user and as advice or information from the agent's reply
    for text in ("Don't ever go near that wire again!", "You ruined the whole evening.", "Stop, the floor is wet!"):
        assert analyse(text).emotion == analyse(text, role="user").emotion == "anger"
        assert analyse(text, role="reply").emotion != "anger"
    with pytest.raises(InputError, match="role: expected one of"):
        analyse("Hello.", role="agent")


def test_table_rows_carry_the_speaker(tmp_path):
    table = tmp_path / "roles.tsv"
    table.write_text("anger\tuser\tStop it!\nfear\treply\tStop, the floor is wet!\nneutral\t-\tHi.\n", encoding="utf-8")
    assert [role for _, _, role in load_rows(table)] == ["user", "reply", None]
    assert text_agreement(load_rows(table))[2][:2] == ["anger", analyse("Stop, the floor is wet!", role="reply").emotion]


def test_bench_measures_an_extra_table(tmp_path, capsys):
    table = tmp_path / "outside.tsv"
    table.write_text("# a table kept outside the data folder\nhappiness\tuser\tI'm so glad you came!\n"
                     "neutral\treply\tThe bus leaves at six.\nfear\tuser\tThe bus leaves at six.\n", encoding="utf-8")
    args = argparse.Namespace(tables=tmp_path / "none", takes=None, seed=0, table=[table], text_only=True)
    assert bench_affect.main(args) == 0
    out = capsys.readouterr().out
    assert f"{table}: 66.7% agreement (2/3;" in out and "(a table kept outside the data folder)" in out
    assert "all tables: 66.7% agreement (2/3)" in out and "== face" not in out
    args.table = [tmp_path / "missing.tsv"]
    assert bench_affect.main(args) == 2
    assert "--table: expected a sentence table file" in capsys.readouterr().err


def test_clauses_negation_idioms_and_constructions():
    assert analyse("It was a bit scary at first, but in the end we had a great time.").emotion == "happiness"
    assert analyse("I can't stop worrying about it.").emotion == "fear"  # "can't stop" negates nothing
    assert analyse("You sold the house?").emotion == "surprise"  # a declarative question
    assert analyse("Where is the house?").emotion == "neutral"  # an information question
    assert analyse("Why do you keep doing this?").emotion == "anger"
    assert analyse("What if the bridge falls?").emotion == "fear"
    assert analyse("Sure, please send it.").emotion == "neutral"  # politeness is no feeling


def test_table_loader_refuses_a_malformed_row(tmp_path):
    bad = tmp_path / "t.tsv"
    bad.write_text("# header\nhappy\tuser\tI am glad.\n", encoding="utf-8")
    with pytest.raises(InputError, match="t.tsv:2"):
        load_table(bad)


def test_negation_intensifiers_and_questions():
    assert analyse("I am happy.").emotion == "happiness"
    assert analyse("I am not happy.").emotion == "sadness"
    assert analyse("I'm not afraid of anything.").emotion != "fear"
    assert analyse("Things will get better.").emotion != "sadness"  # only the negated one is hopeless
    plain, strong = analyse("I am happy."), analyse("I am SO VERY happy!!!")
    assert strong.intensity > plain.intensity and strong.arousal > plain.arousal
    assert analyse("Really?").emotion == "surprise" and analyse("Really?").question
    assert not analyse("Fine.").question
    affect = analyse("The train leaves at nine.")
    assert affect.emotion == "neutral" and affect.intensity == 0.0
    assert -1 <= analyse("I hate this!").valence < 0 < analyse("I love this!").valence


@pytest.mark.parametrize("text, match", [("", "empty"), ("   ", "empty"), (None, "string"),
                                         ("a" * (MAX_TEXT_CHARS + 1), "at most")])
def test_bad_text_is_refused(text, match):
    with pytest.raises(InputError, match=match):
        analyse(text)


def test_calm_when_the_conversation_becomes_tense():
    talk = ConversationAffect()
    assert talk.respond("Thanks, that was really kind of you!").emotion == "happiness"
    angry = talk.respond("This is the third time it broke. I'm furious with you!", "I'm sorry, let me fix it.")
    assert angry.emotion not in ("anger", "contempt", "disgust") and angry.intensity <= 0.3
    assert "tense" in angry.reason
    talk.respond("Whatever, your support is pathetic.")
    assert talk.tension >= talk.tense_at
    follow_up = talk.respond("So what now.")  # a flat turn while tension lingers stays calm
    assert follow_up.emotion == angry.emotion and "tension" in follow_up.reason
    hostile_reply = ConversationAffect().respond("Tell me about it.", "That idea is pathetic and ridiculous.")
    assert hostile_reply.emotion not in ("anger", "contempt", "disgust")


def test_surprise_at_unexpected_information():
    talk = ConversationAffect()
    news = talk.respond("Actually, it turns out the meeting was cancelled, I didn't know that.")
    assert news.emotion == "surprise" and "unexpected" in news.reason
    good = ConversationAffect().respond("Wow, I just won a wonderful prize!")
    assert good.emotion == "surprise" and good.blend is not None and good.blend[0] == "happiness"
    assert ConversationAffect().respond("The report has twelve pages.").emotion == "neutral"
