"""Temporaries of atomic writes: short names, and the stale ones a killed write left are removed."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from engine import temp_files
from engine.atomic import atomic_path, write_bytes_atomic


def _killed_write(folder) -> str:
    """Run a write in another process and kill -9 it half-way; returns the temporary it left."""
    code = ("import os,signal,sys;from engine.atomic import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'x' * 1000)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(folder / "photo.png")], capture_output=True)
    assert proc.returncode == -9, proc.stderr
    left = [p.name for p in folder.iterdir()]
    assert len(left) == 1 and temp_files.is_ours(left[0]) is not None, left
    return left[0]


@pytest.mark.skipif(os.name != "posix", reason="kill -9 and pids are POSIX here")
def test_the_next_write_removes_what_a_killed_write_left(tmp_path, monkeypatch):
    monkeypatch.setattr(temp_files, "_SWEPT", set())
    left = tmp_path / _killed_write(tmp_path)
    other = tmp_path / ".photo.abc12345.tmp.png"  # not this program's name: never touched
    other.write_bytes(b"someone else's")
    old = time.time() - temp_files.DEAD_GRACE_S - 5
    os.utime(left, (old, old))
    os.utime(other, (old - 10 * temp_files.STALE_S, old - 10 * temp_files.STALE_S))
    write_bytes_atomic(tmp_path / "next.png", b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".photo.abc12345.tmp.png", "next.png"]


def test_a_temporary_of_a_running_writer_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(temp_files, "_SWEPT", set())
    with atomic_path(tmp_path / "busy.png") as tmp:  # this process, still writing
        tmp.write_bytes(b"half")
        old = time.time() - temp_files.DEAD_GRACE_S - 5
        os.utime(tmp, (old, old))
        assert temp_files.remove_stale(tmp_path, once=False) == []
        young = tmp_path / f"{temp_files.PREFIX}999999999-abcdefgh-x.tmp.png"  # dead pid, but just written
        young.write_bytes(b"x")
        assert temp_files.remove_stale(tmp_path, once=False) == []
        os.utime(young, (time.time() - temp_files.STALE_S - 1,) * 2)
        assert temp_files.remove_stale(tmp_path, once=False) == [young]
        assert tmp.exists()


def test_a_255_byte_output_name_can_be_written(tmp_path):
    name = "a" * 251 + ".png"
    assert len(name.encode()) == 255
    write_bytes_atomic(tmp_path / name, b"data")
    assert (tmp_path / name).read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == [name]
    prefix, suffix = temp_files.name_parts(tmp_path / ("é" * 120 + ".png"))
    assert len((prefix + "abcdefgh" + suffix).encode()) < 100 and suffix.endswith(".tmp.png")
