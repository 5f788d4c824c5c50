"""The SQLite voice store: round trips, unique names, concurrent writers, a writer killed mid-transaction."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from fastsovits.errors import CapacityError, MissingResource
from fastsovits.voices.store import (
    STORE_FILE,
    NewVoice,
    VoiceExists,
    VoiceNotFound,
    VoiceStore,
    default_data_dir,
)
from tests.voices.conftest import audio_bytes

ROOT = Path(__file__).resolve().parents[2]


def test_round_trip_and_listing(store) -> None:
    ref, aux1, aux2 = audio_bytes(3.5), audio_bytes(1.0, 16000), audio_bytes(2.0, fmt="FLAC")
    s = store.add(NewVoice("alice", ref, "Hello.", "en", (aux1, aux2), "ft"), features={"m1": b"f1"})
    assert (s.name, s.text, s.language, s.model, s.aux, s.features) == ("alice", "Hello.", "en", "ft", 2, ("m1",))
    v = store.get("alice")
    assert (v.audio, v.aux, v.id) == (ref, (aux1, aux2), s.id)
    assert store.features(v.id, "m1") == b"f1" and store.features(v.id, "m2") is None
    assert store.put_features(v.id, "m2", b"f2") and store.summary("alice").features == ("m1", "m2")
    store.add(NewVoice("bob", ref))
    assert [x.name for x in store.list()] == ["alice", "bob"] and len(store) == 2 and "bob" in store
    store.remove("alice")
    assert "alice" not in store and store.features(v.id, "m1") is None  # its clips and features went with it
    with pytest.raises(VoiceNotFound):
        store.get("alice")
    with pytest.raises(VoiceNotFound):
        store.remove("alice")
    assert store.check() == "ok"
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM aux_clips").fetchone()[0] == 0


def test_names_are_unique_and_replace_makes_a_new_voice(store) -> None:
    first = store.add(NewVoice("v", audio_bytes(3.5), "one", "en"), features={"m": b"old"})
    with pytest.raises(VoiceExists):
        store.add(NewVoice("v", audio_bytes(4.0), "two", "en"))
    second = store.add(NewVoice("v", audio_bytes(4.0), "two", "en"), replace=True)
    assert second.id != first.id and store.get("v").text == "two"
    assert store.features(first.id, "m") is None  # features of the replaced clip are gone
    assert not store.put_features(first.id, "m", b"late")  # a late writer for the old voice stores nothing


def test_voice_limit(tmp_path) -> None:
    small = VoiceStore.open(tmp_path, max_voices=2)
    for name in ("a", "b"):
        small.add(NewVoice(name, b"x"))
    with pytest.raises(CapacityError):
        small.add(NewVoice("c", b"x"))
    small.add(NewVoice("a", b"y"), replace=True)  # replacing is not adding


def test_concurrent_writers_in_threads_one_name_wins(store) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def add(i: int) -> None:
        barrier.wait()
        try:
            store.add(NewVoice("same", audio_bytes(3.2), f"writer {i}", "en"))
            results.append("ok")
        except VoiceExists:
            results.append("exists")
        store.add(NewVoice(f"own-{i}", b"x"))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["exists"] * 7 + ["ok"]
    assert len(store) == 9 and store.check() == "ok"


WRITER = textwrap.dedent("""
    import sys, time
    from fastsovits.voices.store import NewVoice, VoiceExists, VoiceStore

    store = VoiceStore.open(sys.argv[1])
    try:
        store.add(NewVoice("shared", b"clip-" + sys.argv[2].encode()))
        print("ok")
    except VoiceExists:
        print("exists")
""")


def test_concurrent_writer_processes_one_name_wins(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(i)], stdout=subprocess.PIPE, text=True, env=env
        )
        for i in range(4)
    ]
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outs == ["exists", "exists", "exists", "ok"]
    assert len(VoiceStore.open(tmp_path)) == 1


KILLED = textwrap.dedent("""
    import sys, time
    from fastsovits.voices.store import NewVoice, VoiceStore

    class Slow(VoiceStore):
        def _insert_features(self, conn, voice_id, features, now):
            super()._insert_features(conn, voice_id, features, now)
            print("inside", flush=True)  # the voice, its clips and features are written, not committed
            time.sleep(60)

    store = Slow(sys.argv[1])
    big = bytes(range(256)) * (32 * 1024)  # 8 MiB per blob: SQLite spills pages to the WAL before the commit
    store.add(NewVoice("half", big, "text", "en", (big,)), features={"model": big})
""")


def test_writer_killed_mid_transaction_leaves_no_half_voice(tmp_path) -> None:
    store = VoiceStore.open(tmp_path)
    store.add(NewVoice("kept", b"clip"), features={"m": b"f"})
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(store.path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "inside"
        assert (tmp_path / f"{STORE_FILE}-wal").stat().st_size > 8 * 2**20  # the half voice reached the disk
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    again = VoiceStore.open(tmp_path)
    assert again.check() == "ok"
    assert [v.name for v in again.list()] == ["kept"] and "half" not in again
    with sqlite3.connect(again.path) as conn:  # no orphan clips or features either
        assert conn.execute("SELECT COUNT(*) FROM aux_clips").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM features").fetchone()[0] == 1
    again.add(NewVoice("half", b"clip"))  # the name is free and the store writable


def test_not_a_store(tmp_path) -> None:
    (tmp_path / STORE_FILE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(MissingResource):
        VoiceStore.open(tmp_path)


def test_default_data_dir(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FASTSOVITS_DATA_DIR", str(tmp_path / "mine"))
    assert default_data_dir() == tmp_path / "mine"
    monkeypatch.delenv("FASTSOVITS_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert default_data_dir() == tmp_path / "xdg" / "fastsovits"
