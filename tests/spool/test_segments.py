"""A segment file's descriptor is let go of once: closing it again must not close whatever the
process opened since under the same number (another thread's socket to Twilio or the database;
a replayed orphan is removed and then closed, and so is a written segment at shutdown)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.spool.segments import Directory
from tests.faults.lab import break_disk, can_mount, small_disk


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


@pytest.mark.skipif(not can_mount(), reason="needs root, mkfs.ext4 and a loop device")
def test_a_disk_gone_read_only_is_not_writable_though_its_mount_says_rw(tmp_path: Path) -> None:
    """An ext4 error (errors=remount-ro) on Linux 6.11 and newer fails every write with EROFS
    while the mount stays "rw": asking `access` said yes, so a process that had not written
    since answered /readyz with "ready"."""
    var = tmp_path / "var"
    with small_disk(var):
        directory = Directory(var / "spool")
        assert directory.writable()
        break_disk(var)
        assert not directory.writable()
    assert not list(tmp_path.rglob(".writable-*")), "the probe leaves nothing behind"


def test_asking_whether_a_directory_is_writable_leaves_nothing_in_it(tmp_path: Path) -> None:
    directory = Directory(tmp_path / "spool")
    assert directory.writable()  # the folder above, while the spool's is not made yet
    (tmp_path / "spool").mkdir()
    assert directory.writable()
    os.chmod(tmp_path / "spool", 0o500)
    try:
        assert directory.writable() == (os.geteuid() == 0)  # root writes anyway
    finally:
        os.chmod(tmp_path / "spool", 0o700)
    assert list(tmp_path.rglob("*")) == [tmp_path / "spool"]
