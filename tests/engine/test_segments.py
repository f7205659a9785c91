"""SMS segments are counted as carriers count them, and long replies split between lines."""

from __future__ import annotations

import pytest

from service.flowengine.segments import count_segments, pack, segment


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),  # an escape pair is never split
        ("Información", "UCS-2", 11, 1),  # one accent makes the whole text UCS-2
        ("ñ" * 160, "GSM-7", 160, 1),  # ñ is in GSM-7; á is not
        ("á" * 70, "UCS-2", 70, 1),
        ("á" * 71, "UCS-2", 71, 2),
        ("á" * 134, "UCS-2", 134, 2),
        ("á" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),  # a surrogate pair counts twice
        ("á" * 66 + "😀" + "á" * 66, "UCS-2", 134, 3),  # a surrogate pair is never split
    ],
)
def test_segments(text: str, encoding: str, units: int, segments: int) -> None:
    counted = segment(text)
    assert (counted.encoding, counted.units, counted.segments) == (encoding, units, segments)


def test_pack_keeps_short_replies_whole() -> None:
    assert pack("one\ntwo") == ["one\ntwo"]


def test_pack_splits_between_lines_and_never_over_the_limit() -> None:
    lines = [f"{n} Opción número {n} del menú" for n in range(1, 30)]
    messages = pack("\n".join(lines), max_segments=2)
    assert len(messages) > 1
    assert all(count_segments(message) <= 2 for message in messages)
    assert "\n".join(messages).split("\n") == lines


def test_pack_splits_a_long_line_between_words() -> None:
    line = " ".join(["palabra"] * 200)
    messages = pack(line, max_segments=1)
    assert all(count_segments(message) <= 1 for message in messages)
    assert " ".join(messages) == line


def test_pack_does_not_leave_the_footer_alone() -> None:
    body = "\n".join(["x" * 150] * 4)
    messages = pack(body + "\nReply # to go back.", max_segments=2)
    assert messages[-1].count("\n") == 1 and messages[-1].endswith("Reply # to go back.")


def test_pack_leaves_a_lone_line_when_it_cannot_move_one() -> None:
    assert pack("x" * 305 + "\nend", max_segments=2) == ["x" * 305, "end"]
    long_tail = "a\n" + "x" * 290 + "\n" + "y" * 300
    assert pack(long_tail, max_segments=2) == ["a\n" + "x" * 290, "y" * 300]
