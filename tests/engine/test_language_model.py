"""The language model the line ships is py3langid's own, narrowed to English and Spanish: the
same arrays, and the same decisions as the whole model restricted to the two."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from py3langid.langid import MODEL_FILE, LanguageIdentifier
from py3langid.modelio import load_model

from service.flowengine.language import (
    MODEL_PATH,
    _model,
    restricted_model,
    save_restricted_model,
)
from service.flowengine.wordlists import LANGUAGES

# Written for this test, not taken from the probes or the marker lists.
TEXTS = (
    "my daughter will drive me to the appointment on tuesday",
    "can someone tell me what papers i need to bring",
    "mi esposo tiene cancer de pulmon y queremos otra opinion",
    "no entiendo lo que dijo el doctor sobre la biopsia",
    "hello is this the right place for a second look at my scans",
    "buenas tardes quisiera saber si aceptan mi seguro",
    "the oncologist said chemo but i am not sure",
    "gracias por llamarme ayer, todavia tengo preguntas",
)


def test_the_shipped_model_is_the_wheels_narrowed_to_the_lines_languages() -> None:
    shipped = load_model(MODEL_PATH)
    made = restricted_model()
    assert sorted(shipped[2]) == sorted(LANGUAGES)
    for ours, theirs in zip(shipped, made, strict=True):
        assert np.array_equal(np.asarray(ours), np.asarray(theirs)), (
            "service/flowengine/language-en-es.npz.xz is stale: run `make language-model`"
        )


def test_it_decides_as_the_whole_model_restricted_to_english_and_spanish() -> None:
    whole = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    whole.set_languages(list(LANGUAGES))
    for text in TEXTS:
        assert _model().classify(text) == whole.classify(text), text


def test_making_it_again_writes_the_same_model(tmp_path: Path) -> None:
    path = tmp_path / "model.npz.xz"
    save_restricted_model(path)
    for ours, again in zip(load_model(MODEL_PATH), load_model(path), strict=True):
        assert np.array_equal(np.asarray(ours), np.asarray(again))
