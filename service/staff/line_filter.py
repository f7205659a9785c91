"""Which line a staff page shows: `?line=SLUG` on every list, page and export, remembered for
the browser session (a cookie) once chosen; `?line=` (empty) or nothing chosen yet: every line.

A slug no line has is a 400 when given, and forgotten when only remembered (a line renamed
since). Rows say their line by its title (`LineChoice.title_of`)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from service.lines.book import LineBook, LineView
from service.staff.web import LINE_COOKIE, PageError


@dataclass(frozen=True)
class LineChoice:
    line: LineView | None
    """None: every line."""
    lines: tuple[LineView, ...]
    """The lines to choose from."""

    @property
    def slug(self) -> str:
        return self.line.slug if self.line is not None else ""

    @property
    def line_id(self) -> int | None:
        """The chosen line's id as records keep it (None: every line, or a line read from a
        file, which no record names)."""
        return self.line.id if self.line is not None and self.line.id > 0 else None

    @property
    def numbers(self) -> frozenset[str] | None:
        """The chosen line's numbers (None: every line)."""
        return frozenset(self.line.numbers) if self.line is not None else None

    def title_of(self, line_id: int | None) -> str:
        for line in self.lines:
            if line.id == line_id:
                return line.title
        return ""

    def params(self) -> dict[str, str]:
        return {"line": self.slug} if self.line is not None else {}


def chosen_line(request: Request) -> LineChoice:
    book: LineBook = request.app.state.book
    given = request.query_params.get("line")
    if given is None:
        remembered = request.cookies.get(LINE_COOKIE, "")
        line = book.by_slug(remembered) if remembered else None
    else:
        given = given.strip()
        line = book.by_slug(given) if given else None
        if given and line is None:
            raise PageError(
                400, "Check the filters", "There is no line by that name: choose one from the list."
            )
        request.state.line_cookie = given
    return LineChoice(line, tuple(sorted(book.lines, key=lambda item: item.title)))
