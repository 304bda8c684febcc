"""espeak-ng pronunciations as ARPABET alternates for the aligner."""

from __future__ import annotations

from facewire.audio.g2p import espeak_pronunciations
from facewire.audio.phones import ARPABET


def test_pronunciations_are_arpabet_and_dialects_differ():
    prons = espeak_pronunciations("neighbour")
    assert len(prons) == 2  # American and British (non-rhotic) differ at the end
    for pron in prons:
        assert pron.split() and all(p in ARPABET for p in pron.split())
    assert any(p.split()[-1] != "ER" for p in prons)


def test_invented_words_get_a_pronunciation():
    (pron, *_) = espeak_pronunciations("blorfington")
    assert pron.split()[0] == "B" and len(pron.split()) >= 6
