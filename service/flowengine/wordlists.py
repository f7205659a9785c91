"""Lists of phrases people write or say, kept as data: `words/<language>/<list>.txt`.

The line recognises a few kinds of free text itself (a crisis, a medical emergency, thanks, a
question about the line, a request to stop texts or to be called, words that show a language).
Those phrases are lists a clinician or a coordinator can read and extend without a programmer;
this module reads them once, when it is imported, and matches texts against them.

How a list file reads (each file says it again at its top):

- one phrase a line; `#` starts a comment; blank lines are ignored;
- a phrase is matched on whole words, without case, accents or apostrophes ("Can't" is
  "cant", "médico" is "medico"), and letters repeated three times or more count once
  ("stooop" is "stop");
- `a|b|c` is any one of these words; `[a|b]` is one of them or nothing; `_` joins the words of
  one choice ("por_favor" is "por favor");
- `word*` is any word that starts with `word` ("suicid*": suicide, suicidal);
- `...` is up to three other words ("want ... die": "want to die", "want to just die");
- a line `anywhere:` or `whole text:` starts a section. A phrase of `anywhere:` (the default)
  counts wherever it is in a text; the phrases of `whole text:` count only when the whole text
  is made of them ("ok thanks", "stop please").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Final

WORDS_DIR: Final = Path(__file__).with_name("words")
LANGUAGES: Final = ("en", "es")
LIST_NAMES: Final = (
    "self_harm",
    "emergency",
    "polite",
    "about_line",
    "opt_out",
    "call_me",
    "markers",
)
GAP_WORDS: Final = 3
"""How many other words `...` stands for, at most."""

_APOSTROPHES = "'\u2019\u2018`\u00b4"  # straight, curly, grave and acute apostrophes
_IGNORED = {0xFE0F, 0xFE0E, 0x200D}  # emoji variation selectors and joiner
_REPEATS = re.compile(r"([a-z])\1{2,}")


@lru_cache(maxsize=1024)
def fold(text: str) -> str:
    """`text` as the lists are matched: lower case, no accents or apostrophes, letters repeated
    three times or more once, each word (and each emoji) separated by one space. Remembered:
    one text is folded for each list it is matched against."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    kept: list[str] = []
    for char in decomposed:
        if unicodedata.combining(char) or ord(char) in _IGNORED or char in _APOSTROPHES:
            continue
        category = unicodedata.category(char)
        if category == "So":
            kept.append(f" {char} ")  # an emoji is a word of its own ("👍")
        elif category == "Sk":
            continue  # an emoji's skin tone
        else:
            kept.append(char if char.isascii() and char.isalnum() else " ")
    plain = _REPEATS.sub(r"\1", "".join(kept))
    return " ".join(plain.split())


class WordListError(ValueError):
    """A list file has a phrase that cannot be read (the message names the file and line)."""


def _choice(word: str) -> str:
    prefix = word.endswith("*")
    folded = fold(word.rstrip("*").replace("_", " "))
    if not folded:
        raise ValueError(f"{word!r} has no letters")
    return re.escape(folded) + (r"[a-z0-9]*" if prefix else "")


def _phrase(line: str) -> str:
    """The regular expression of one phrase, each word with a space before it."""
    parts: list[str] = []
    required = False
    for token in line.split():
        if token == "...":
            parts.append(rf"(?: \S+){{0,{GAP_WORDS}}}")
            continue
        optional = token.startswith("[") and token.endswith("]")
        body = token[1:-1] if optional else token
        choices = "|".join(_choice(word) for word in body.split("|"))
        parts.append(f"(?: (?:{choices}))" + ("?" if optional else ""))
        required = required or not optional
    if not required:
        raise ValueError("a phrase needs at least one word that is not optional")
    return "".join(parts)


@dataclass(frozen=True)
class WordList:
    """One list of phrases in one language."""

    name: str
    lang: str
    anywhere: re.Pattern[str] | None
    whole: re.Pattern[str] | None

    def found_in(self, folded: str) -> bool:
        """Some phrase of the list is in the text (folded by `fold`)."""
        return self.anywhere is not None and self.anywhere.search(f" {folded} ") is not None

    def count_in(self, folded: str) -> int:
        """How many times phrases of the list are in the text."""
        if self.anywhere is None:
            return 0
        return len(self.anywhere.findall(f" {folded} "))

    def is_whole(self, folded: str) -> bool:
        """The whole text is made of the list's whole-text phrases."""
        if not folded or self.whole is None:
            return False
        return self.whole.fullmatch(f" {folded} ") is not None


def parse(name: str, lang: str, source: str, file: str = "<text>") -> WordList:
    sections: dict[str, list[str]] = {"anywhere": [], "whole text": []}
    section = "anywhere"
    for number, raw in enumerate(source.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.endswith(":") and line[:-1] in sections:
            section = line[:-1]
            continue
        try:
            sections[section].append(_phrase(line))
        except (ValueError, re.error) as error:
            raise WordListError(f"{file}:{number}: {error}") from None
    anywhere = sections["anywhere"]
    whole = sections["whole text"]
    return WordList(
        name,
        lang,
        re.compile(f"(?:{'|'.join(anywhere)})(?= )") if anywhere else None,
        re.compile(f"(?:{'|'.join(whole)})+ ") if whole else None,
    )


@cache
def word_list(name: str, lang: str) -> WordList:
    path = WORDS_DIR / lang / f"{name}.txt"
    return parse(name, lang, path.read_text(encoding="utf-8"), str(path))


def found(name: str, text: str) -> tuple[str, ...]:
    """The languages whose list `name` has a phrase in `text`."""
    folded = fold(text)
    return tuple(lang for lang in LANGUAGES if word_list(name, lang).found_in(folded))


def whole(name: str, text: str) -> tuple[str, ...]:
    """The languages whose list `name` the whole of `text` is made of."""
    folded = fold(text)
    return tuple(lang for lang in LANGUAGES if word_list(name, lang).is_whole(folded))


def load_all() -> None:
    """Read every list now (a broken list fails at import, not on a patient's text)."""
    for lang in LANGUAGES:
        for name in LIST_NAMES:
            word_list(name, lang)


load_all()
