"""A segment file's descriptor is let go of once: closing it again must not close whatever the
process opened since under the same number (another thread's socket to Twilio or the database;
a replayed orphan is removed and then closed, and so is a written segment at shutdown)."""

from __future__ import annotations

import os
from pathlib import Path

from service.spool.segments import Directory


def test_a_removed_segment_closed_again_leaves_the_next_file_under_its_number_open(
    tmp_path: Path,
) -> None:
    segment = Directory(tmp_path / "spool").create("records")
    number = segment.fd
    segment.remove()
    other = os.open(tmp_path / "someone-elses", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert other == number  # the lowest free number: the one just let go of
        segment.close()
        os.write(other, b"still mine")  # EBADF if the segment closed it
    finally:
        os.close(other)
    assert (tmp_path / "someone-elses").read_bytes() == b"still mine"


def test_orphans_taken_and_replayed_are_closed_once(tmp_path: Path) -> None:
    directory = Directory(tmp_path / "spool")
    left = directory.create("records")
    os.close(left.fd)  # its process is gone: the lock went with the descriptor
    [orphan] = directory.take_orphans(own=set())
    orphan.remove()
    other = os.open(tmp_path / "someone-elses", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        orphan.close()
        os.fstat(other)
        os.write(other, b"x")
    finally:
        os.close(other)
