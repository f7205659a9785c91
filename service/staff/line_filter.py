"""Which line a staff page shows: `?line=SLUG` on every list, page and export, remembered for
the browser session (a cookie) once chosen; `?line=` (empty) or nothing chosen yet: every line
the account may see.

An account limited to some lines (`Staff.line_ids`) chooses among those only, and "every line"
means every one of them: a record of another line (or of no line) is not on its lists, exports
or overview, and its page is "not found", as if it did not exist (`visible`).

A slug no line has (or none the account may see) is a 400 when given, and forgotten when only
remembered (a line renamed since). Rows say their line by its title (`LineChoice.title_of`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request

from service.lines.book import LineBook, LineView
from service.staff.web import LINE_COOKIE, PageError, Staff


@dataclass(frozen=True)
class NumbersOf:
    """The numbers called of some lines, as the overview counts them: the lines' own numbers,
    and, when the default line is one of them, every number no line has (a call to a number
    nobody assigned reaches the default line)."""

    own: frozenset[str]
    taken: frozenset[str] | None = None
    """Every line's numbers, when the default line is among these (None: it is not)."""

    def __contains__(self, number: object) -> bool:
        return number in self.own or (self.taken is not None and number not in self.taken)


@dataclass(frozen=True)
class LineChoice:
    line: LineView | None
    """None: every line (the account may see)."""
    lines: tuple[LineView, ...]
    """The lines to choose from."""
    limited: bool = False
    """The account sees only `lines`."""
    taken: frozenset[str] = frozenset()
    """Every line's numbers (the account's or not)."""
    default_id: int | None = None
    """The line a number nobody assigned reaches."""

    @property
    def slug(self) -> str:
        return self.line.slug if self.line is not None else ""

    @property
    def line_ids(self) -> frozenset[int] | None:
        """The lines whose records show, as records keep them (None: every record)."""
        if self.line is not None:
            return frozenset({self.line.id})
        if self.limited:
            return frozenset(line.id for line in self.lines)
        return None

    @property
    def numbers(self) -> NumbersOf | None:
        """The numbers called of the shown lines (None: every number)."""
        shown = [self.line] if self.line is not None else self.lines if self.limited else None
        if shown is None:
            return None
        own = frozenset(number for line in shown for number in line.numbers)
        default = any(line.id == self.default_id for line in shown)
        return NumbersOf(own, self.taken if default else None)

    def title_of(self, line_id: int | None) -> str:
        for line in self.lines:
            if line.id == line_id:
                return line.title
        return ""

    def params(self) -> dict[str, str]:
        return {"line": self.slug} if self.line is not None else {}


def staff_of(request: Request) -> Staff | None:
    staff: Staff | None = getattr(request.state, "staff", None)
    return staff


def visible_lines(request: Request) -> tuple[LineView, ...]:
    """The lines the signed-in account may see, by title."""
    book: LineBook = request.app.state.book
    staff = staff_of(request)
    lines = [line for line in book.lines if staff is None or staff.may_see(line.id)]
    return tuple(sorted(lines, key=lambda item: item.title))


def chosen_line(request: Request) -> LineChoice:
    lines = visible_lines(request)
    by_slug = {line.slug: line for line in lines}
    given = request.query_params.get("line")
    if given is None:
        line = by_slug.get(request.cookies.get(LINE_COOKIE, ""))
    else:
        given = given.strip()
        line = by_slug.get(given) if given else None
        if given and line is None:
            raise PageError(
                400, "Check the filters", "There is no line by that name: choose one from the list."
            )
        request.state.line_cookie = given
    staff = staff_of(request)
    book: LineBook = request.app.state.book
    taken = frozenset(number for each in book.lines for number in each.numbers)
    limited = staff is not None and staff.line_ids is not None
    default = book.default
    return LineChoice(
        line, lines, limited=limited, taken=taken, default_id=default.id if default else None
    )


Record = TypeVar("Record")


def visible(request: Request, record: Record | None, line_id: int | None, what: str) -> Record:
    """`record` when it exists and is of a line the account may see; else a 404 that says
    `what` was not found (the same answer for both: a limited account learns nothing of other
    lines' records)."""
    staff = staff_of(request)
    if record is None or (staff is not None and not staff.may_see(line_id)):
        raise PageError(404, f"{what} not found", f"There is no {what.lower()} with that id.")
    return record
