"""The stored answers' codec beside the one it replaced, on the answers of a database.

    python -m benchmarks.answer_codec --db /tmp/rpi/demo100k.sqlite3 [-n 3000]

Reads ``-n`` stored answers (every 97th row of the ``answer`` table), inflates them with
the current codec (``sr.render_bytes.AnswerCodec``: zstd with the answer dictionary) and
compresses each of them again with it and with zlib at level 1 primed with the same
dictionary (the codec before it). Prints the mean compressed size and the mean time to
compress and to inflate one answer, each the best of ``--repeat`` passes, on this thread.
The database must have been prerendered by this code (``rpi-async db prerender``).
"""

from __future__ import annotations

import argparse
import socket
import sqlite3
import statistics
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from rpi_async.sr.render_bytes import AnswerCodec, answer_dictionary, fingerprint


def _zlib(dictionary: bytes) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    deflater = zlib.compressobj(zlib.Z_BEST_SPEED, zdict=dictionary)
    inflater = zlib.decompressobj(zdict=dictionary)

    def compress(data: bytes) -> bytes:
        d = deflater.copy()
        return d.compress(data) + d.flush()

    def inflate(data: bytes) -> bytes:
        i = inflater.copy()
        return i.decompress(data) + i.flush()

    return compress, inflate


def _best(function: Callable[[bytes], bytes | None], items: list[bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for item in items:
            function(item)
        best = min(best, (time.perf_counter() - started) / len(items))
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/rpi/demo100k.sqlite3"))
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    dictionary = answer_dictionary()
    codec = AnswerCodec(dictionary)
    conn = sqlite3.connect(f"{args.db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT content FROM answer WHERE renderer = ? AND rowid % 97 = 0 LIMIT ?",
            (fingerprint(), args.n),
        ).fetchall()
    finally:
        conn.close()
    raw = [codec.inflate(content) for (content,) in rows]
    answers = [a for a in raw if a is not None]
    if not answers:
        raise SystemExit("no answer of this renderer: run rpi-async db prerender first")
    zlib_compress, zlib_inflate = _zlib(dictionary)
    print(
        f"{len(answers)} answers of {args.db}, mean {statistics.mean(map(len, answers)):.0f} "
        f"bytes inflated (best of {args.repeat}; {socket.gethostname()})"
    )
    for name, compress, inflate in (
        ("zstd + dictionary (AnswerCodec)", codec.compress, codec.inflate),
        ("zlib 1 + dictionary (before)", zlib_compress, zlib_inflate),
    ):
        packed = [compress(a) for a in answers]
        assert [inflate(p) for p in packed[:50]] == answers[:50]
        print(
            f"  {name:32s} {statistics.mean(map(len, packed)):6.0f} bytes  "
            f"compress {_best(compress, answers, args.repeat):5.1f} µs  "
            f"inflate {_best(inflate, packed, args.repeat):5.1f} µs"
        )


if __name__ == "__main__":
    main()
