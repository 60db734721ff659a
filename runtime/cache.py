"""The on-disk embedding cache: per (image file content SHA-256, model SHA-256 + output name).

Layout::

    <root>/<model sha256>/<output name>/<time>-<pid>-<random>.shard

Each shard holds the results of one batch: a small header (count, row shape, dtype, SHA-256 of
the payload), the 32-byte content digests of the images, then their rows. Shards are written
whole through ``fprt.io.atomic_write_bytes`` (temporary file, fsync, rename), never appended to or
rewritten, so:

- an interrupted ``fprt score`` keeps every batch it finished and resumes after it;
- concurrent runs never write the same file (unique names) and never see a half-written one;
- a shard damaged after the fact fails its checksum on read, is ignored (with one warning) and its
  images are simply computed again.

The folder listing is the index: opening a namespace reads each shard's header and keys only;
rows are read (and verified) when asked for. Re-scoring the same images with another method, or
the same model on another dataset, reuses whatever is there. Keys are content hashes, never
names: a renamed file is a hit, a changed file a miss.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fprt.io import atomic_write_bytes, sha256_bytes

log = logging.getLogger("fprt.runtime")

MAGIC = b"FPRTEMB\x01"
KEY_BYTES = 32
SHARD_SUFFIX = ".shard"
_STALE_TMP_SECONDS = 3600


def default_cache_dir() -> Path:
    """``$FPRT_CACHE_DIR/embeddings``, else ``~/.cache/fprt/embeddings`` (``$XDG_CACHE_HOME`` honoured)."""
    env = os.environ.get("FPRT_CACHE_DIR")
    if env:
        return Path(env) / "embeddings"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fprt" / "embeddings"


def encode_shard(keys: np.ndarray, rows: np.ndarray) -> bytes:
    keys = np.ascontiguousarray(keys, dtype=np.uint8)
    rows = np.ascontiguousarray(rows)
    if keys.ndim != 2 or keys.shape[1] != KEY_BYTES or len(keys) != len(rows):
        raise ValueError(f"shard keys must be N×{KEY_BYTES} uint8 for N rows; got {keys.shape} for {rows.shape}")
    payload = keys.tobytes() + rows.tobytes()
    header = json.dumps(
        {"n": int(len(rows)), "shape": list(rows.shape[1:]), "dtype": rows.dtype.str, "sha256": sha256_bytes(payload)}
    ).encode()
    return MAGIC + struct.pack("<I", len(header)) + header + payload


def _read_header(fh) -> tuple[dict, int]:
    magic = fh.read(len(MAGIC))
    if magic != MAGIC:
        raise ValueError("not an fprt cache shard (bad magic)")
    (hlen,) = struct.unpack("<I", fh.read(4))
    if not 0 < hlen < 1 << 16:
        raise ValueError("bad header length")
    header = json.loads(fh.read(hlen))
    return header, len(MAGIC) + 4 + hlen


def decode_shard(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(keys N×32 uint8, rows) of a shard's bytes; ValueError when torn or corrupt."""
    import io

    fh = io.BytesIO(data)
    header, offset = _read_header(fh)
    payload = data[offset:]
    if sha256_bytes(payload) != header["sha256"]:
        raise ValueError("checksum mismatch (torn or corrupt shard)")
    n, shape, dtype = int(header["n"]), tuple(header["shape"]), np.dtype(header["dtype"])
    row_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(payload) != n * (KEY_BYTES + row_bytes):
        raise ValueError("payload size does not match the header")
    keys = np.frombuffer(payload, dtype=np.uint8, count=n * KEY_BYTES).reshape(n, KEY_BYTES)
    rows = np.frombuffer(payload, dtype=dtype, offset=n * KEY_BYTES).reshape((n, *shape))
    return keys, rows


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    written: int = 0
    shards_written: int = 0
    corrupt_shards: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "written": self.written,
            "shards_written": self.shards_written,
            "corrupt_shards": list(self.corrupt_shards),
        }


class CacheNamespace:
    """All cached rows of one (model, output): a folder of shards and an in-memory key index."""

    def __init__(self, folder: Path, stats: CacheStats | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.stats = stats or CacheStats()
        self._index: dict[bytes, tuple[str, int]] = {}
        self._known: set[str] = set()
        self._bad: set[str] = set()
        self.refresh()

    def refresh(self) -> None:
        """Index shards written since the last look (by this or any other process)."""
        now = time.time()
        for entry in os.scandir(self.folder):
            name = entry.name
            if name.startswith(".") and name.endswith(".tmp"):
                try:  # a writer killed mid-write leaves its temporary file: drop it once clearly stale
                    if now - entry.stat().st_mtime > _STALE_TMP_SECONDS:
                        os.unlink(entry.path)
                except OSError:
                    pass
                continue
            if not name.endswith(SHARD_SUFFIX) or name in self._known or name in self._bad:
                continue
            try:
                with open(entry.path, "rb") as fh:
                    header, _ = _read_header(fh)
                    n = int(header["n"])
                    keys = fh.read(n * KEY_BYTES)
                if len(keys) != n * KEY_BYTES:
                    raise ValueError("truncated key block")
            except (OSError, ValueError, KeyError, struct.error, json.JSONDecodeError) as exc:
                self._mark_bad(name, exc)
                try:  # shards appear only whole (atomic rename): an unreadable one is damaged, set it aside
                    os.replace(entry.path, entry.path + ".corrupt")
                except OSError:
                    pass
                continue
            self._known.add(name)
            for row in range(n):
                self._index.setdefault(keys[row * KEY_BYTES : (row + 1) * KEY_BYTES], (name, row))

    def _mark_bad(self, name: str, exc: Exception) -> None:
        self._bad.add(name)
        self.stats.corrupt_shards.append(str(self.folder / name))
        log.warning("fprt cache: ignoring %s (%s); its images will be computed again", self.folder / name, exc)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: bytes) -> bool:
        return key in self._index

    def get(self, keys: list[bytes]) -> tuple[np.ndarray, np.ndarray | None]:
        """(found mask, rows for the found keys in order) — rows of corrupt shards count as not found."""
        found = np.zeros(len(keys), dtype=bool)
        by_shard: dict[str, list[tuple[int, int]]] = {}
        for i, key in enumerate(keys):
            hit = self._index.get(key)
            if hit is not None:
                by_shard.setdefault(hit[0], []).append((i, hit[1]))
        parts: dict[int, np.ndarray] = {}
        for name, wanted in by_shard.items():
            try:
                _, rows = decode_shard((self.folder / name).read_bytes())
            except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
                self._drop_shard(name, exc)
                continue
            for i, row in wanted:
                parts[i] = rows[row]
                found[i] = True
        if not parts:
            return found, None
        order = sorted(parts)
        return found, np.stack([parts[i] for i in order])

    def _drop_shard(self, name: str, exc: Exception) -> None:
        self._mark_bad(name, exc)
        # move it aside (no later run reads it again) and rebuild the index from the shards left,
        # so keys it shadowed are served by their other copies
        try:
            os.replace(self.folder / name, self.folder / (name + ".corrupt"))
        except OSError:
            pass
        self._index.clear()
        self._known.clear()
        self.refresh()

    def put(self, keys: list[bytes], rows: np.ndarray) -> Path:
        """Write one shard with ``rows`` for ``keys`` (atomically) and index it."""
        rows = np.asarray(rows)
        key_arr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES)
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SHARD_SUFFIX}"
        path = atomic_write_bytes(self.folder / name, encode_shard(key_arr, rows))
        self._known.add(name)
        for row, key in enumerate(keys):
            self._index.setdefault(key, (name, row))
        self.stats.written += len(keys)
        self.stats.shards_written += 1
        return path


class EmbeddingCache:
    """The cache of one model: a namespace per output (``embedding``, ``logits``, ...).

    ``lookup(keys)`` says which images have every output cached and returns them;
    ``store(keys, outputs)`` writes one batch. Keys are 32-byte SHA-256 digests of file contents.
    """

    def __init__(self, root: str | Path, model_sha256: str, outputs: tuple[str, ...]) -> None:
        if len(model_sha256) != 64:
            raise ValueError(f"model_sha256 must be a hex SHA-256, got {model_sha256!r}")
        self.root = Path(root)
        self.model_sha256 = model_sha256
        self.outputs = tuple(outputs)
        self.stats = CacheStats()
        self.spaces = {name: CacheNamespace(self.root / model_sha256 / _safe(name), self.stats) for name in self.outputs}

    def has(self, key: bytes, outputs: tuple[str, ...] | None = None) -> bool:
        """True when every output of ``key`` (or each of ``outputs``) is indexed (no I/O; safe from worker threads)."""
        return all(key in self.spaces[name] for name in (self.outputs if outputs is None else outputs))

    def lookup(self, keys: list[bytes]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(mask of keys with every output cached, {output: rows of those keys in order})."""
        mask = np.ones(len(keys), dtype=bool)
        for space in self.spaces.values():
            mask &= np.fromiter((k in space for k in keys), dtype=bool, count=len(keys))
        hit_keys = [k for k, m in zip(keys, mask) if m]
        rows: dict[str, np.ndarray] = {}
        if hit_keys:
            for name, space in self.spaces.items():
                found, got = space.get(hit_keys)
                if not found.all():
                    # a shard failed its checksum just now and left the index: look again, those keys are misses
                    return self.lookup(keys)
                rows[name] = got
        self.stats.hits += int(mask.sum())
        self.stats.misses += int((~mask).sum())
        return mask, rows

    def store(self, keys: list[bytes], outputs: dict[str, np.ndarray]) -> None:
        """One shard per output given (all of them, or e.g. only the pixel features of images whose
        model outputs are cached already)."""
        for name, rows in outputs.items():
            self.spaces[name].put(keys, np.asarray(rows))

    def refresh(self) -> None:
        for space in self.spaces.values():
            space.refresh()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
