"""Which language a text (or a caller's words) is written in: English, Spanish, or not plain.

Two kinds of evidence. Words: the `markers` lists (`words/en/markers.txt`,
`words/es/markers.txt`), and Spanish's own letters (á, é, í, ó, ú, ñ, ¿, ¡), decide short texts
("hola", "gracias", "llámenme") that no statistical model can. A model decides the rest:
py3langid (a maintained fork of langid.py, BSD), restricted to English and Spanish, whose model
ships inside its wheel (nothing is downloaded, ever).

Why py3langid: on short patient texts (2 to 8 words, texting style) it was the most accurate of
the candidates tried (py3langid 0.4.0, langid 1.1.6, lingua-language-detector 2.1): of 50
English and 50 Spanish texts it took no English text for Spanish and missed 1 to 3 Spanish
ones, where lingua missed 3 to 17 depending on its threshold and its low-memory mode took
"my name is Carlos Rodriguez" for Spanish. Its costs, measured on this machine: a 4.5 MB
wheel plus numpy, 35 µs a text. Its model knows 97 languages; this line asks about two, so
the line ships the model's English and Spanish columns (`language-en-es.npz.xz`, 0.7 MB, made
from the wheel's own model by `make language-model`, and checked against it by
tests/engine/test_language_model.py, so that an upgrade of py3langid cannot leave it stale): it
loads in about 0.1 s instead of 0.6 s, in every process, and decides exactly as the whole model
restricted to the two would. The model is loaded once per process, the first time a text needs
it (or at start: `warm_up`, which the app calls in its lifespan so no webhook waits for it).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from service.flowengine.wordlists import LANGUAGES, fold, word_list

MODEL_MIN_WORDS = 3
"""Shorter texts are decided by their words alone: a model cannot tell "si" or "ok"."""
MODEL_CONFIDENCE = 0.8
"""The model's probability (between English and Spanish) a decision needs."""
STRONG_EVIDENCE = 2
"""Marker words of one language only, enough to decide without the model."""
_SPANISH_LETTERS = re.compile(r"[áéíóúñ¿¡]", re.IGNORECASE)


class _Identifier(Protocol):
    def classify(self, text: str) -> tuple[str, float]: ...


MODEL_PATH = Path(__file__).with_name("language-en-es.npz.xz")
"""py3langid's model restricted to `LANGUAGES` (its feature extractor whole, its table of
weights only their columns)."""


@cache
def _model() -> _Identifier:
    from py3langid.langid import LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_PATH, norm_probs=True)  # type: ignore[no-any-return]


def restricted_model() -> tuple[Any, ...]:
    """The wheel's model, its weights narrowed to `LANGUAGES` (what `MODEL_PATH` holds)."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE
    from py3langid.modelio import load_model

    ptc, pc, classes, nextmove, row, output = load_model(MODEL_DIR / MODEL_FILE)
    kept = [i for i, language in enumerate(classes) if language in LANGUAGES]
    return ptc[:, kept], pc[kept], [classes[i] for i in kept], nextmove, row, output


def warm_up() -> None:
    """Load the model now (about 0.7 s), not on the first text that needs it."""
    _model()


def evidence(text: str) -> dict[str, int]:
    """How many words of each language's markers the text has (Spanish letters count for
    Spanish)."""
    folded = fold(text)
    found = {lang: word_list("markers", lang).count_in(folded) for lang in LANGUAGES}
    if _SPANISH_LETTERS.search(text):
        found["es"] += 1
    return found


def language_of(text: str) -> str | None:
    """"en" or "es" when the text is plainly in that language, else None (digits, "ok", a
    name, a mix the model is unsure of)."""
    found = evidence(text)
    one_sided = [lang for lang, count in found.items() if count and not any(
        other_count for other, other_count in found.items() if other != lang
    )]
    if one_sided and found[one_sided[0]] >= STRONG_EVIDENCE:
        return one_sided[0]
    if len(fold(text).split()) >= MODEL_MIN_WORDS:
        guess, probability = _model().classify(text.lower())
        if probability >= MODEL_CONFIDENCE:
            return str(guess)
    return one_sided[0] if one_sided else None


def words_in(text: str) -> int:
    return len(fold(text).split())


def save_restricted_model(path: Path = MODEL_PATH) -> None:
    """Write `restricted_model()` to `path` (`make language-model`, after an upgrade of
    py3langid)."""
    from py3langid.modelio import save_model

    save_model(path, restricted_model())
