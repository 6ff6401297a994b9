"""Atomic writes: all or nothing, and the permissions a normal write would give."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from engine.atomic import atomic_path, write_bytes_atomic


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "photo.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("encoder failed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["photo.png"]


def test_new_file_gets_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "new.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o644


def test_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "kept.bin"
    target.write_bytes(b"a")
    target.chmod(0o640)
    write_bytes_atomic(target, b"b")
    assert target.read_bytes() == b"b"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_symbolic_link_is_followed_and_stays_a_link(tmp_path):
    real = tmp_path / "photos" / "real.jpg"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "link.jpg"
    link.symlink_to(real)
    write_bytes_atomic(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    assert sorted(p.name for p in real.parent.iterdir()) == ["real.jpg"]  # no temporary file left beside it


def test_a_read_only_file_is_not_replaced(tmp_path):
    target = tmp_path / "locked.png"
    target.write_bytes(b"keep")
    target.chmod(0o444)
    with pytest.raises(PermissionError, match="read-only"):
        write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"keep" and [p.name for p in tmp_path.iterdir()] == ["locked.png"]


def test_a_link_to_a_device_is_not_replaced(tmp_path):
    """Issue 17 #5: an output linked to /dev/null was replaced by a regular file."""
    link = tmp_path / "out.png"
    link.symlink_to("/dev/null")
    with pytest.raises(OSError, match="not a regular file"):
        write_bytes_atomic(link, b"data")
    assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


@pytest.mark.parametrize("hard_links", [True, False])
def test_without_replace_a_file_that_appears_during_the_write_is_kept(tmp_path, monkeypatch, hard_links):
    if not hard_links:  # a file system without hard links: the exclusive create must hold the line
        def no_link(*_args):
            raise OSError(errno.EPERM, "Operation not permitted")
        monkeypatch.setattr(os, "link", no_link)
    target = tmp_path / "out.png"
    with pytest.raises(FileExistsError, match="was kept"), atomic_path(target, replace=False) as tmp:
        tmp.write_bytes(b"mine")
        target.write_bytes(b"theirs")  # another program, while this one was still writing
    assert target.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    write_bytes_atomic(tmp_path / "free.png", b"mine", replace=False)
    assert (tmp_path / "free.png").read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["free.png", "out.png"]


def test_of_two_writers_to_one_new_name_only_one_succeeds(tmp_path):
    target = tmp_path / "out.png"
    with pytest.raises(FileExistsError), atomic_path(target, replace=False) as first:
        first.write_bytes(b"first")
        write_bytes_atomic(target, b"second", replace=False)  # the other writer finishes first
    assert target.read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
