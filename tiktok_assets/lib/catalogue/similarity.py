"""Near-duplicate and re-upload groups across videos, and "which videos look like this one".

A video's signature has three parts, each used when present:

- **frames** (model-free, offline): a 64-bit DCT perceptual hash (pHash) of each kept frame. A re-encode at another size or bitrate changes a few bits of each hash;
  a trim only drops frames, so the set of hashes still matches. ``visual`` = the share of the shorter
  video's frames that have a frame within :data:`FRAME_MATCH_BITS` bits in the other video.
- **audio**: the Chromaprint fingerprint of music_recognition, compared by the best bit error rate over
  alignments (:func:`tiktok_assets.lib.audio.music.fingerprint_similarity`: a trim is a shift).
- **clip**: the cosine of the videos' mean CLIP image embeddings (same CLIP model only).

Two videos are duplicates when the frames match (``visual >= VISUAL_DUPLICATE``), or when the soundtrack
is the same and the pictures partly agree (``audio >= SAME_SOUNDTRACK`` and ``visual >= VISUAL_SUPPORT``
or ``clip >= CLIP_SUPPORT``). The soundtrack alone never makes a duplicate (many videos share a sound)
and neither does CLIP alone (it says what is shown, not that it is the same footage).

:class:`SimilarityStore` keeps the signatures, the duplicate pairs and the groups in a SQLite database
under ``data/similarity/`` and two usearch HNSW indexes (frame hashes by Hamming distance, mean CLIP
embeddings by cosine). Adding a video queries the indexes for the k nearest frames / embeddings, compares
only those candidate videos exactly, then adds the video: the work per video is bounded by k, not by the
catalogue. Groups are the connected components of the duplicate pairs, named by the key of their first
added video, so a video's ``duplicate_group`` only changes when its group merges into an older one (or
a member is forgotten). Several processes may add videos at once: every change happens under a file
lock, in one database transaction, and each process first brings its in-memory indexes up to date with
the rows the others added (the database is the truth; the saved indexes are a checkpoint of it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import cv2
import numpy as np
from filelock import FileLock
from usearch.index import Index

from tiktok_assets.lib import atomic
from tiktok_assets.lib.audio.music import SAME_SOUNDTRACK, fingerprint_similarity
from tiktok_assets.lib.layout import DataLayout, VideoLayout
from tiktok_assets.lib.media.frame_filter import load_analysis_gray, read_filter_result
from tiktok_assets.lib.status import read_status, stage_done
from tiktok_assets.lib.table import table_dataset

HASH_BYTES = 8  # 64-bit pHash
FRAME_MATCH_BITS = 10  # two frames are the same picture when their hashes differ in at most this many bits
MIN_MATCHED_FRAMES = 2  # ...and a visual match needs this many such frames (or all of a shorter video's)
VISUAL_DUPLICATE = 0.5  # share of matched frames that alone makes a duplicate
VISUAL_SUPPORT = 0.25  # share of matched frames that, with the same soundtrack, makes a duplicate
CLIP_SUPPORT = 0.95  # mean CLIP cosine that, with the same soundtrack, makes a duplicate
FLAT_STD = 2.0  # a frame this flat (grey levels' std) has no picture to hash
K_NEAREST = 8  # nearest neighbours asked per frame hash and per embedding
WEIGHTS = {"visual": 0.5, "audio": 0.25, "clip": 0.25}  # of the score that ranks similar videos

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS videos (
        id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE NOT NULL, group_id INTEGER NOT NULL,
        hashes BLOB NOT NULL, chromaprint BLOB, clip BLOB, clip_model TEXT)""",
    "CREATE TABLE IF NOT EXISTS frames (id INTEGER PRIMARY KEY AUTOINCREMENT, video_id INTEGER NOT NULL, hash BLOB)",
    "CREATE INDEX IF NOT EXISTS frames_video ON frames(video_id)",
    "CREATE TABLE IF NOT EXISTS clips (id INTEGER PRIMARY KEY AUTOINCREMENT, video_id INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS clips_video ON clips(video_id)",
    """CREATE TABLE IF NOT EXISTS pairs (a INTEGER NOT NULL, b INTEGER NOT NULL, visual REAL, audio REAL,
        clip REAL, PRIMARY KEY (a, b))""",
    "CREATE INDEX IF NOT EXISTS pairs_b ON pairs(b)",
    "CREATE INDEX IF NOT EXISTS videos_group ON videos(group_id)",
]


# --- signatures -------------------------------------------------------------------------------------


def phash(gray: np.ndarray) -> np.ndarray:
    """64-bit DCT perceptual hash (8 packed bytes): the 8x8 lowest frequencies of the 32x32 DCT of the
    picture, each bit = coefficient above their median."""
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].ravel()
    return np.packbits(low > np.median(low))


def frame_hashes(paths: Sequence[str | Path]) -> np.ndarray:
    """(n, 8) uint8: the pHash of each whole frame, in the given order; flat frames are left out. (Not of
    the content box inside bars: the box found in a slowly zooming shot differs between encodes of it.)"""
    hashes = []
    for path in paths:
        gray = load_analysis_gray(path)
        if float(gray.std()) >= FLAT_STD:
            hashes.append(phash(gray))
    return np.asarray(hashes, dtype=np.uint8).reshape(-1, HASH_BYTES)


@dataclass(frozen=True)
class Signature:
    """What a video is compared by. ``chromaprint`` empty: no audio fingerprint; ``clip`` None: no CLIP."""

    key: str
    hashes: np.ndarray  # (n, 8) uint8 frame pHashes
    chromaprint: np.ndarray  # uint32 Chromaprint items
    clip: np.ndarray | None = None  # L2-normalised mean CLIP image embedding
    clip_model: str | None = None

    @classmethod
    def build(cls, key: str, hashes: np.ndarray, chromaprint: Iterable[int] = (),
              clip: np.ndarray | None = None, clip_model: str | None = None) -> Signature:
        vector = None
        if clip is not None and float(np.linalg.norm(clip)) > 0:
            vector = (np.asarray(clip, dtype=np.float32).ravel() / np.linalg.norm(clip)).astype(np.float32)
        return cls(key, np.asarray(hashes, dtype=np.uint8).reshape(-1, HASH_BYTES),
                   np.asarray(list(chromaprint), dtype=np.uint32), vector, clip_model if vector is not None else None)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) bit distances between the packed hashes ``a`` (n, 8) and ``b`` (m, 8)."""
    return np.unpackbits(np.bitwise_xor(a[:, None, :], b[None, :, :]), axis=2).sum(axis=2)


def visual_similarity(a: np.ndarray, b: np.ndarray) -> float | None:
    """Share of the shorter video's frames with a frame at most FRAME_MATCH_BITS away in the other (0 when
    fewer than MIN_MATCHED_FRAMES match); None when either has no frame hash."""
    if not len(a) or not len(b):
        return None
    near = hamming(a, b) <= FRAME_MATCH_BITS
    matched = near.any(axis=1) if len(a) <= len(b) else near.any(axis=0)
    if matched.sum() < min(MIN_MATCHED_FRAMES, matched.size):
        return 0.0
    return round(float(matched.mean()), 4)


@dataclass(frozen=True)
class Match:
    """How ``key`` compares with a video: each signal's similarity in [0, 1] (None: not comparable)."""

    key: str
    visual: float | None
    audio: float | None
    clip: float | None

    @property
    def duplicate(self) -> bool:
        if self.visual is not None and self.visual >= VISUAL_DUPLICATE:
            return True
        supported = (self.visual or 0.0) >= VISUAL_SUPPORT or (self.clip or 0.0) >= CLIP_SUPPORT
        return self.audio is not None and self.audio >= SAME_SOUNDTRACK and supported

    @property
    def score(self) -> float:
        """The signals' weighted mean over those both videos have (WEIGHTS)."""
        present = {name: value for name, value in self.signals().items() if value is not None}
        if not present:
            return 0.0
        return round(sum(WEIGHTS[n] * v for n, v in present.items()) / sum(WEIGHTS[n] for n in present), 4)

    def signals(self) -> dict[str, float | None]:
        return {"visual": self.visual, "audio": self.audio, "clip": self.clip}

    def matched(self) -> list[str]:
        """The signals that say "same": frames, soundtrack, CLIP (at their thresholds)."""
        limits = {"visual": VISUAL_SUPPORT, "audio": SAME_SOUNDTRACK, "clip": CLIP_SUPPORT}
        return [n for n, v in self.signals().items() if v is not None and v >= limits[n]]


def compare(a: Signature, b: Signature) -> Match:
    """``b`` as seen from ``a``: visual, audio and CLIP similarity."""
    audio = fingerprint_similarity(a.chromaprint.tolist(), b.chromaprint.tolist()) \
        if a.chromaprint.size and b.chromaprint.size else None
    clip = None
    if a.clip is not None and b.clip is not None and a.clip_model == b.clip_model and a.clip.size == b.clip.size:
        clip = round(float(np.clip(a.clip @ b.clip, 0.0, 1.0)), 4)
    return Match(b.key, visual_similarity(a.hashes, b.hashes), audio, clip)


# --- the store --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddResult:
    key: str
    group: str  # the video's duplicate group: the key of the group's first video (its own key if alone)
    duplicates: list[Match]  # the videos it was found a duplicate of, this time
    compared: int  # videos compared exactly (the index's candidates): at most k per frame hash and embedding
    regrouped: dict[str, str]  # other videos whose group changed (merged into an older group): key -> group


class SimilarityStore:
    """Signatures, duplicate pairs and groups in ``folder`` (see the module docstring). Use as a context
    manager, or call :meth:`close`: closing saves the indexes when this process changed them.
    ``on_regroup(changes)`` is called under the lock with the other videos whose group an add or forget
    changed (key -> group), so what mirrors the groups elsewhere is updated in the same order."""

    def __init__(self, folder: str | Path, k: int = K_NEAREST,
                 on_regroup: Callable[[dict[str, str]], None] | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.k = k
        self._on_regroup = on_regroup
        self._lock = FileLock(self.folder / "similarity.lock")
        self._frames = Index(ndim=HASH_BYTES * 8, metric="hamming", dtype="b1")
        self._clips: Index | None = None
        self._frames_upto = self._clips_upto = 0
        self._dirty = False
        with self._session(sync=False) as conn:
            self._load_checkpoint(conn)

    @property
    def db_path(self) -> Path:
        return self.folder / "similarity.sqlite3"

    @property
    def index_dir(self) -> Path:
        return self.folder / "index"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._dirty:
            with self._session():
                self._save_checkpoint()

    # -- public operations --

    def add(self, signature: Signature, record: Callable[[AddResult], None] | None = None) -> AddResult:
        """Compare the video with its nearest neighbours in the index, record the duplicates and groups,
        and add it (replacing what an earlier run recorded for the same key). ``record(result)`` is called
        under the lock, before ``on_regroup``, to write the video's own result."""
        with self._session() as conn:
            old = conn.execute("SELECT id FROM videos WHERE key = ?", (signature.key,)).fetchone()
            before = self._members(conn, old[0]) if old else {}
            if old:
                self._detach(conn, old[0])
            candidates = self._candidates(conn, signature, radius=True)
            duplicates = [m for m in self._verify(conn, signature, candidates) if m.duplicate]
            video_id = self._insert(conn, signature, old[0] if old else None)
            others = {m.key: conn.execute("SELECT id, group_id FROM videos WHERE key = ?", (m.key,)).fetchone()
                      for m in duplicates}
            target = min({group for _, group in others.values()} | {video_id})
            for m in duplicates:
                a, b = sorted((video_id, others[m.key][0]))
                conn.execute("INSERT OR REPLACE INTO pairs VALUES (?, ?, ?, ?, ?)", (a, b, m.visual, m.audio, m.clip))
            for _, group in others.values():
                if group != target:
                    before = {**self._members(conn, group), **before}
                    conn.execute("UPDATE videos SET group_id = ? WHERE group_id = ?", (target, group))
            conn.execute("UPDATE videos SET group_id = ? WHERE id = ?", (target, video_id))
            result = AddResult(signature.key, self._named(conn, [signature.key])[signature.key], duplicates,
                               len(candidates), self._changed(conn, before, skip=signature.key))
            if record:
                record(result)
            if result.regrouped and self._on_regroup:
                self._on_regroup(result.regrouped)
            return result

    def forget(self, keys: Iterable[str]) -> dict[str, str]:
        """Remove videos (e.g. deleted from the project); their groups are split where they were the only
        link. Returns the other videos whose group changed: key -> group."""
        changed: dict[str, str] = {}
        with self._session() as conn:
            for key in keys:
                row = conn.execute("SELECT id FROM videos WHERE key = ?", (key,)).fetchone()
                if row is None:
                    continue
                before = self._members(conn, row[0])
                self._detach(conn, row[0])
                conn.execute("DELETE FROM videos WHERE id = ?", (row[0],))
                changed.pop(key, None)
                changed.update(self._changed(conn, before, skip=key))
            if changed and self._on_regroup:
                self._on_regroup(changed)
            return changed

    def group_of(self, key: str) -> str | None:
        with self._session(sync=False) as conn:
            return self._named(conn, [key]).get(key)

    def signature(self, key: str) -> Signature | None:
        with self._session(sync=False) as conn:
            return self._signature(conn, key)

    def similar(self, key: str, n: int = 10, allowed: set[str] | None = None) -> list[Match]:
        """The ``n`` videos most like ``key`` among the index's nearest neighbours of its frame hashes and
        embedding (k doubled while they are fewer than ``n`` videos), duplicates first, then by score
        (``allowed``: only these keys, e.g. the registered videos)."""
        with self._session() as conn:
            signature = self._signature(conn, key)
            if signature is None:
                raise KeyError(key)
            k = max(self.k, n)
            candidates = self._candidates(conn, signature, radius=False, k=k)
            while len(candidates) < n + 1 and k < len(self._frames):  # near copies can fill the first k
                k *= 2
                candidates = self._candidates(conn, signature, radius=False, k=k)
            if allowed is not None:
                candidates = [c for c in candidates if c in allowed]
            matches = self._verify(conn, signature, candidates)
        return sorted(matches, key=lambda m: (not m.duplicate, -m.score, m.key))[:n]

    def __len__(self) -> int:
        with self._session(sync=False) as conn:
            return conn.execute("SELECT count(*) FROM videos").fetchone()[0]

    @property
    def indexed_frames(self) -> int:
        """Frame hashes in this process's in-memory index (after the last sync)."""
        return len(self._frames)

    # -- internals --

    @contextmanager
    def _session(self, sync: bool = True) -> Iterator[sqlite3.Connection]:
        """The file lock and one database transaction; the in-memory indexes caught up with the database."""
        with self._lock, closing(sqlite3.connect(self.db_path, timeout=60)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            with conn:
                for statement in _SCHEMA:
                    conn.execute(statement)
                if sync:
                    self._sync(conn)
                yield conn

    def _load_checkpoint(self, conn: sqlite3.Connection) -> None:
        """The saved indexes, unless they cover rows the database never had (a database deleted or
        restored from elsewhere): then the indexes are rebuilt from the database by the next sync."""
        state_path = self.index_dir / "state.json"
        if not state_path.exists():
            return
        state = atomic.read_json(state_path)
        issued = dict(conn.execute("SELECT name, seq FROM sqlite_sequence"))
        if state["frames_upto"] > issued.get("frames", 0) or state["clips_upto"] > issued.get("clips", 0):
            return
        self._frames.load(str(self.index_dir / "frames.usearch"))
        self._frames_upto = state["frames_upto"]
        if state.get("clip_ndim"):
            self._clips = Index(ndim=state["clip_ndim"], metric="cos", dtype="f32")
            self._clips.load(str(self.index_dir / "clip.usearch"))
            self._clips_upto = state["clips_upto"]

    def _save_checkpoint(self) -> None:
        """Both indexes and what they cover, replaced together (called under the lock, after a sync)."""
        with atomic.atomic_dir(self.index_dir) as tmp:
            self._frames.save(str(tmp / "frames.usearch"))
            if self._clips is not None:
                self._clips.save(str(tmp / "clip.usearch"))
            atomic.write_json(tmp / "state.json", {
                "frames_upto": self._frames_upto, "clips_upto": self._clips_upto,
                "clip_ndim": self._clips.ndim if self._clips is not None else None,
            })
        self._dirty = False

    def _sync(self, conn: sqlite3.Connection) -> None:
        """Add the rows other processes (or earlier runs) added since this index was saved or synced."""
        rows = conn.execute("SELECT id, hash FROM frames WHERE id > ? ORDER BY id", (self._frames_upto,)).fetchall()
        if rows:
            self._frames.add(np.array([r[0] for r in rows], dtype=np.uint64),
                             np.frombuffer(b"".join(r[1] for r in rows), dtype=np.uint8).reshape(-1, HASH_BYTES))
            self._frames_upto = rows[-1][0]
            self._dirty = True
        rows = conn.execute("SELECT c.id, v.clip FROM clips c JOIN videos v ON v.id = c.video_id WHERE c.id > ? "
                            "ORDER BY c.id", (self._clips_upto,)).fetchall()
        for clip_id, blob in rows:
            self._add_clip(clip_id, np.frombuffer(blob, dtype=np.float32))
        if rows:
            self._clips_upto = rows[-1][0]
            self._dirty = True

    def _add_clip(self, clip_id: int, vector: np.ndarray) -> None:
        if self._clips is None:
            self._clips = Index(ndim=vector.size, metric="cos", dtype="f32")
        if vector.size == self._clips.ndim:  # a CLIP of another width is compared exactly, never indexed
            self._clips.add(np.array([clip_id], dtype=np.uint64), vector.reshape(1, -1))

    def _candidates(self, conn: sqlite3.Connection, signature: Signature, radius: bool,
                    k: int | None = None) -> list[str]:
        """Keys of the videos among the k nearest neighbours of each frame hash and of the embedding
        (``radius``: only neighbours near enough to count as the same frame / a supporting embedding)."""
        k = k or self.k
        frame_ids: set[int] = set()
        if len(self._frames):
            for vector in signature.hashes:
                found = self._frames.search(vector.reshape(1, -1), k)
                frame_ids.update(int(key) for key, d in zip(found.keys, found.distances, strict=True)
                                 if not radius or d <= FRAME_MATCH_BITS)
        clip_ids: set[int] = set()
        if signature.clip is not None and self._clips is not None and len(self._clips) \
                and signature.clip.size == self._clips.ndim:
            found = self._clips.search(signature.clip.reshape(1, -1), k)
            clip_ids.update(int(key) for key, d in zip(found.keys, found.distances, strict=True)
                            if not radius or 1.0 - d >= CLIP_SUPPORT)
        keys = set(_select_keys(conn, "frames", frame_ids)) | set(_select_keys(conn, "clips", clip_ids))
        keys.discard(signature.key)
        return sorted(keys)

    def _verify(self, conn: sqlite3.Connection, signature: Signature, keys: list[str]) -> list[Match]:
        matches = []
        for key in keys:
            other = self._signature(conn, key)
            if other is not None:
                matches.append(compare(signature, other))
        return matches

    def _signature(self, conn: sqlite3.Connection, key: str) -> Signature | None:
        row = conn.execute("SELECT hashes, chromaprint, clip, clip_model FROM videos WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        hashes, chromaprint, clip, clip_model = row
        return Signature(key, np.frombuffer(hashes, dtype=np.uint8).reshape(-1, HASH_BYTES),
                         np.frombuffer(chromaprint or b"", dtype=np.uint32),
                         np.frombuffer(clip, dtype=np.float32) if clip else None, clip_model)

    def _insert(self, conn: sqlite3.Connection, signature: Signature, video_id: int | None) -> int:
        """Store the signature (keeping the video's id, so its place in group order, when it had one) and
        add its frame hashes and embedding to the index."""
        values = (signature.hashes.tobytes(), signature.chromaprint.tobytes() or None,
                  signature.clip.tobytes() if signature.clip is not None else None, signature.clip_model)
        if video_id is None:
            cursor = conn.execute("INSERT INTO videos (key, group_id, hashes, chromaprint, clip, clip_model) "
                                  "VALUES (?, 0, ?, ?, ?, ?)", (signature.key, *values))
            video_id = int(cursor.lastrowid)
        else:
            conn.execute("UPDATE videos SET hashes = ?, chromaprint = ?, clip = ?, clip_model = ? WHERE id = ?",
                         (*values, video_id))
        conn.execute("UPDATE videos SET group_id = ? WHERE id = ?", (video_id, video_id))
        if len(signature.hashes):
            conn.executemany("INSERT INTO frames (video_id, hash) VALUES (?, ?)",
                             [(video_id, h.tobytes()) for h in signature.hashes])
        if signature.clip is not None:
            conn.execute("INSERT INTO clips (video_id) VALUES (?)", (video_id,))
        self._sync(conn)
        return video_id

    def _delete_vectors(self, conn: sqlite3.Connection, video_id: int) -> None:
        for table, index in (("frames", self._frames), ("clips", self._clips)):
            ids = [r[0] for r in conn.execute(f"SELECT id FROM {table} WHERE video_id = ?", (video_id,))]
            if index is not None:
                for row_id in ids:
                    if row_id in index:
                        index.remove(row_id)
            conn.execute(f"DELETE FROM {table} WHERE video_id = ?", (video_id,))
        self._dirty = True

    def _detach(self, conn: sqlite3.Connection, video_id: int) -> None:
        """Take the video out of its group (its pairs and index entries go; the row stays, alone) and
        regroup the rest by the remaining pairs: each connected part is named by its first video."""
        group = conn.execute("SELECT group_id FROM videos WHERE id = ?", (video_id,)).fetchone()[0]
        conn.execute("DELETE FROM pairs WHERE a = ? OR b = ?", (video_id, video_id))
        self._delete_vectors(conn, video_id)
        conn.execute("UPDATE videos SET group_id = ? WHERE id = ?", (video_id, video_id))
        members = [r[0] for r in conn.execute("SELECT id FROM videos WHERE group_id = ? AND id != ? ORDER BY id",
                                              (group, video_id))]
        edges: dict[int, set[int]] = {m: set() for m in members}
        for a, b in conn.execute("SELECT p.a, p.b FROM pairs p JOIN videos v ON v.id = p.a WHERE v.group_id = ?",
                                 (group,)):
            edges[a].add(b)
            edges[b].add(a)
        seen: set[int] = set()
        for start in members:  # in id order: each part's first member names it
            if start in seen:
                continue
            part, todo = {start}, [start]
            while todo:
                for nxt in edges[todo.pop()] - part:
                    part.add(nxt)
                    todo.append(nxt)
            seen |= part
            conn.executemany("UPDATE videos SET group_id = ? WHERE id = ?", [(start, m) for m in part])

    def _members(self, conn: sqlite3.Connection, video_id: int) -> dict[str, str]:
        """key -> group name of the members of the video's group (itself included)."""
        return dict(conn.execute("SELECT v.key, g.key FROM videos v JOIN videos g ON g.id = v.group_id "
                                 "WHERE v.group_id = (SELECT group_id FROM videos WHERE id = ?)", (video_id,)))

    def _named(self, conn: sqlite3.Connection, keys: Iterable[str]) -> dict[str, str]:
        """key -> group name (the key of the group's first video) of the given videos that are stored."""
        names = {}
        for key in keys:
            row = conn.execute("SELECT g.key FROM videos v JOIN videos g ON g.id = v.group_id WHERE v.key = ?",
                               (key,)).fetchone()
            if row:
                names[key] = row[0]
        return names

    def _changed(self, conn: sqlite3.Connection, before: dict[str, str], skip: str) -> dict[str, str]:
        """The videos of ``before`` (key -> group name) still stored whose group name is now another."""
        after = self._named(conn, [k for k in before if k != skip])
        return {k: g for k, g in after.items() if g != before[k]}


def _select_keys(conn: sqlite3.Connection, table: str, row_ids: set[int]) -> list[str]:
    """Keys of the videos that own ``row_ids`` of ``table`` (rows a later run replaced are gone)."""
    ids = sorted(row_ids)
    keys: list[str] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        keys += [r[0] for r in conn.execute(
            f"SELECT DISTINCT v.key FROM {table} t JOIN videos v ON v.id = t.video_id "
            f"WHERE t.id IN ({','.join('?' * len(chunk))})", chunk)]
    return keys


# --- the project's store and per-video artifacts ------------------------------------------------------


def video_signature(key: str, video: VideoLayout) -> Signature:
    """The video's signature from its artifacts: the kept frames (filtered_frames), the Chromaprint
    (music_recognition) and the mean CLIP embedding (representative_frames), each when its stage ran."""
    kept = read_filter_result(video.filtered_frames_json).kept
    hashes = frame_hashes([video.frames_dir / f.file for f in kept])
    chromaprint: list[int] = []
    if stage_done(video, "music_recognition") and video.music_json.exists():
        chromaprint = (atomic.read_json(video.music_json).get("fingerprint") or {}).get("chromaprint") or []
    clip, clip_model = None, None
    mean = video.vision_dir / "mean_embedding.npy"
    if stage_done(video, "representative_frames") and mean.exists():
        clip, clip_model = np.load(mean), read_status(video, "representative_frames").model
    return Signature.build(key, hashes, chromaprint, clip, clip_model)


def write_similarity(video: VideoLayout, group: str, result: AddResult | None = None) -> None:
    """The video's similarity.json: its group and, from its own run, what it was found a duplicate of."""
    document = atomic.read_json(video.similarity_json) if result is None and video.similarity_json.exists() else {}
    document["duplicate_group"] = group
    if result is not None:
        document["duplicates"] = [{"key": m.key, **m.signals()} for m in result.duplicates]
        document["compared"] = result.compared
    atomic.write_json(video.similarity_json, document)


def project_store(layout: DataLayout, k: int = K_NEAREST) -> SimilarityStore:
    """The store in ``data/similarity/``: a video whose group another video's run changes has its
    similarity.json updated and its table row marked for rebuild."""

    def regrouped(changes: dict[str, str]) -> None:
        for key, group in changes.items():
            write_similarity(layout.video(key), group)
        table_dataset.mark_changed(layout, list(changes))

    return SimilarityStore(layout.similarity_dir, k, on_regroup=regrouped)
