"""The voice store: one SQLite file (stdlib ``sqlite3``, WAL mode) under the data folder.

A voice is its name (unique), the reference clip as uploaded, its text and language, optional
auxiliary clips, the model it is bound to, and the features computed from it per model
(``features`` rows keyed by a model identity, see ``voices.features``), so a process that
starts again reads them back instead of encoding the clip again.

Every write is one ``BEGIN IMMEDIATE`` transaction: a voice, its clips and its features appear
together or not at all, even when the writing process is killed half-way (SQLite's journal
rolls the unfinished transaction back when the file is opened next). Several processes may
write at once (the server, the CLI, the WebUI): writers wait for each other up to
``BUSY_TIMEOUT_S``. A connection is opened per operation, so a store is safe to share between
threads. Nothing is pickled: features are safetensors bytes.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from fastsovits.errors import CapacityError, InvalidInput, MissingResource

STORE_FILE = "voices.sqlite3"
DATA_DIR_ENV = "FASTSOVITS_DATA_DIR"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0
MAX_VOICES = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS voices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    text TEXT,
    language TEXT,
    model TEXT,
    audio BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS aux_clips (
    voice_id INTEGER NOT NULL REFERENCES voices(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    audio BLOB NOT NULL,
    PRIMARY KEY (voice_id, position)
);
CREATE TABLE IF NOT EXISTS features (
    voice_id INTEGER NOT NULL REFERENCES voices(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    data BLOB NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (voice_id, model)
);
"""


class VoiceExists(InvalidInput):
    """A voice of that name is already stored."""

    status = 409


class VoiceNotFound(InvalidInput):
    """No voice of that name is stored."""

    status = 404


def default_data_dir() -> Path:
    """``$FASTSOVITS_DATA_DIR``, else the platform's user data folder (``$XDG_DATA_HOME/fastsovits``,
    ``~/.local/share/fastsovits``; ``%LOCALAPPDATA%\\fastsovits``; ``~/Library/Application Support/fastsovits``)."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "fastsovits"


@dataclass(frozen=True)
class VoiceSummary:
    """A stored voice without its audio (what listings return)."""

    id: int  # never reused: a replaced voice gets a new id, so (id, model) names one set of features
    name: str
    text: str | None
    language: str | None
    model: str | None
    created: float
    audio_bytes: int
    aux: int
    features: tuple[str, ...]  # model identities that have features stored


@dataclass(frozen=True)
class StoredVoice:
    id: int
    name: str
    audio: bytes
    text: str | None
    language: str | None
    aux: tuple[bytes, ...]
    model: str | None
    created: float


@dataclass(frozen=True)
class NewVoice:
    """What a caller stores; validate it first (``voices.validate.check_voice``)."""

    name: str
    audio: bytes
    text: str | None = None
    language: str | None = None
    aux: tuple[bytes, ...] = ()
    model: str | None = None


class VoiceStore:
    """``VoiceStore.open(data_dir)``; every method opens its own connection (thread- and process-safe)."""

    def __init__(self, path: str | Path, max_voices: int = MAX_VOICES) -> None:
        self.path = Path(path)
        self.max_voices = max_voices
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")  # persistent: readers never block the writer
                if conn.execute("PRAGMA user_version").fetchone()[0] > SCHEMA_VERSION:
                    raise MissingResource(f"the voice store {self.path} was written by a newer fastsovits")
                with self._write(conn):
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as e:
            raise MissingResource(f"the voice store {self.path} cannot be opened: {e}") from e

    @classmethod
    def open(cls, data_dir: str | Path | None = None, **options) -> VoiceStore:
        """The store ``voices.sqlite3`` in ``data_dir`` (default: :func:`default_data_dir`), created if absent."""
        folder = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        return cls(folder / STORE_FILE, **options)

    # ----------------------------------------------------------------------------- connections
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=FULL")  # a committed voice survives a power cut too
            yield conn
        finally:
            conn.close()

    @staticmethod
    @contextmanager
    def _write(conn: sqlite3.Connection) -> Iterator[None]:
        """One transaction; the write lock is taken at its start, so two writers never interleave."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # ----------------------------------------------------------------------------- writes
    def add(self, voice: NewVoice, features: Mapping[str, bytes] | None = None, replace: bool = False) -> VoiceSummary:
        """Store a voice with its clips and any features already computed, in one transaction.

        Raises ``VoiceExists`` when the name is taken (unless ``replace``), ``CapacityError`` when the
        store holds ``max_voices``."""
        now = time.time()
        with self._connect() as conn, self._write(conn):
            old = conn.execute("SELECT id FROM voices WHERE name = ?", (voice.name,)).fetchone()
            if old is not None:
                if not replace:
                    raise VoiceExists(
                        f"voice {voice.name!r} exists; delete it first or replace it (replace=true, --replace)"
                    )
                conn.execute("DELETE FROM voices WHERE id = ?", (old[0],))
            elif conn.execute("SELECT COUNT(*) FROM voices").fetchone()[0] >= self.max_voices:
                raise CapacityError(f"the voice store holds its limit of {self.max_voices} voices")
            try:
                cur = conn.execute(
                    "INSERT INTO voices (name, text, language, model, audio, created) VALUES (?, ?, ?, ?, ?, ?)",
                    (voice.name, voice.text, voice.language, voice.model, voice.audio, now),
                )
            except sqlite3.IntegrityError:  # unreachable under BEGIN IMMEDIATE; kept as the last word
                raise VoiceExists(f"voice {voice.name!r} exists") from None
            voice_id = int(cast(int, cur.lastrowid))  # set by every INSERT
            conn.executemany(
                "INSERT INTO aux_clips (voice_id, position, audio) VALUES (?, ?, ?)",
                [(voice_id, i, clip) for i, clip in enumerate(voice.aux)],
            )
            self._insert_features(conn, voice_id, features or {}, now)
        return self.summary(voice.name)

    def _insert_features(
        self, conn: sqlite3.Connection, voice_id: int, features: Mapping[str, bytes], now: float
    ) -> None:
        conn.executemany(
            "INSERT OR REPLACE INTO features (voice_id, model, data, created) VALUES (?, ?, ?, ?)",
            [(voice_id, model, data, now) for model, data in features.items()],
        )

    def put_features(self, voice_id: int, model: str, data: bytes) -> bool:
        """Keep the features of voice ``voice_id`` for ``model``; False when the voice is gone meanwhile."""
        with self._connect() as conn, self._write(conn):
            if conn.execute("SELECT 1 FROM voices WHERE id = ?", (voice_id,)).fetchone() is None:
                return False
            self._insert_features(conn, voice_id, {model: data}, time.time())
        return True

    def remove(self, name: str) -> None:
        with self._connect() as conn, self._write(conn):
            if conn.execute("DELETE FROM voices WHERE name = ?", (name,)).rowcount == 0:
                raise VoiceNotFound(f"voice {name!r} does not exist")

    # ----------------------------------------------------------------------------- reads
    def id_of(self, name: str) -> int | None:
        with self._connect() as conn:
            row = conn.execute("SELECT id FROM voices WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.id_of(name) is not None

    def __len__(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM voices").fetchone()[0])

    def get(self, name: str) -> StoredVoice:
        with self._connect() as conn:
            conn.execute("BEGIN")  # one snapshot: the voice and its clips as committed together
            row = conn.execute(
                "SELECT id, name, audio, text, language, model, created FROM voices WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                conn.execute("ROLLBACK")
                raise VoiceNotFound(f"voice {name!r} does not exist")
            aux = conn.execute("SELECT audio FROM aux_clips WHERE voice_id = ? ORDER BY position", (row[0],))
            clips = tuple(bytes(a) for (a,) in aux.fetchall())
            conn.execute("ROLLBACK")
        return StoredVoice(int(row[0]), row[1], bytes(row[2]), row[3], row[4], clips, row[5], float(row[6]))

    def features(self, voice_id: int, model: str) -> bytes | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT data FROM features WHERE voice_id = ? AND model = ?", (voice_id, model)
            ).fetchone()
        return None if row is None else bytes(row[0])

    _SUMMARY = (
        "SELECT v.id, v.name, v.text, v.language, v.model, v.created, length(v.audio), "
        "(SELECT COUNT(*) FROM aux_clips a WHERE a.voice_id = v.id), "
        "(SELECT group_concat(f.model, char(10)) FROM features f WHERE f.voice_id = v.id) FROM voices v"
    )

    @staticmethod
    def _summary(row: tuple) -> VoiceSummary:
        models = tuple(sorted(row[8].split("\n"))) if row[8] else ()
        return VoiceSummary(
            int(row[0]), row[1], row[2], row[3], row[4], float(row[5]), int(row[6]), int(row[7]), models
        )

    def summary(self, name: str) -> VoiceSummary:
        with self._connect() as conn:
            row = conn.execute(self._SUMMARY + " WHERE v.name = ?", (name,)).fetchone()
        if row is None:
            raise VoiceNotFound(f"voice {name!r} does not exist")
        return self._summary(row)

    def list(self) -> list[VoiceSummary]:
        with self._connect() as conn:
            rows = conn.execute(self._SUMMARY + " ORDER BY v.name").fetchall()
        return [self._summary(r) for r in rows]

    def check(self) -> str:
        """SQLite's own integrity check of the file: ``"ok"`` when sound."""
        with self._connect() as conn:
            return "\n".join(r[0] for r in conn.execute("PRAGMA integrity_check").fetchall())
