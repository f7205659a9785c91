"""A flow's problems shown where staff can fix them: each at the field of the value its YAML
path names (`validate.check_text_paths`), else at the nearest section that holds it, else at
the top of the page."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


def dotted(path: Sequence[str | int]) -> str:
    """A YAML path as the pages name it: `("nodes", "main", "say", "es")` → "nodes.main.say.es"."""
    return ".".join(str(part) for part in path)


@dataclass(frozen=True)
class PlacedProblems:
    at: dict[str, list[str]] = field(default_factory=dict)
    """Messages by the dotted path of the field or section they are shown at."""
    rest: list[str] = field(default_factory=list)
    """Messages no field or section of the page holds: shown at the top."""

    def of(self, path: Sequence[str | int]) -> list[str]:
        return self.at.get(dotted(path), [])


def place_problems(
    problems: Iterable[tuple[Sequence[str | int], str]], anchors: Iterable[Sequence[str | int]]
) -> PlacedProblems:
    """Each problem at the anchor (a field's or a section's path, in page order) its path names
    exactly; else at the first anchor inside what it names (a missing translation of a label:
    the label's first field); else at the deepest anchor that holds it (too many choices: the
    menu); else in `rest`."""
    names = [dotted(anchor) for anchor in anchors]
    placed = PlacedProblems()
    for path, message in problems:
        where = dotted(path)
        inside = [name for name in names if name.startswith(where + ".")] if where else []
        holding = [name for name in names if where.startswith(name + ".")]
        if where in names:
            placed.at.setdefault(where, []).append(message)
        elif inside:
            placed.at.setdefault(inside[0], []).append(message)
        elif holding:
            placed.at.setdefault(max(holding, key=len), []).append(message)
        else:
            placed.rest.append(message)
    return placed
