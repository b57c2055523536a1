"""The stored answers' codec: zstd with the answer dictionary."""

from __future__ import annotations

import threading

import zstandard

from rpi_async.sr.render_bytes import MAX_ANSWER_BYTES, AnswerCodec, answer_dictionary

CODEC = AnswerCodec(answer_dictionary())
CONTENT = answer_dictionary()[-5000:]  # content items, as an answer holds them


def test_an_answer_round_trips_and_shrinks() -> None:
    data = CODEC.compress(CONTENT)
    assert CODEC.inflate(data) == CONTENT
    assert len(data) < len(CONTENT) // 10  # the dictionary holds what every answer repeats


def test_what_is_not_a_frame_of_the_codec_does_not_inflate() -> None:
    assert CODEC.inflate(b"not a zstd frame") is None
    assert CODEC.inflate(b"") is None
    assert CODEC.inflate(CODEC.compress(CONTENT)[:-3]) is None  # truncated
    # Compressed without the dictionary: a valid frame that this codec cannot read.
    other = zstandard.ZstdCompressor(write_content_size=True).compress(b"\x01" * 100)
    assert CODEC.inflate(other) in (None, b"\x01" * 100)


def test_a_frame_claiming_an_implausible_size_is_refused_before_allocating() -> None:
    huge = zstandard.ZstdCompressor(write_content_size=True).compress(
        b"\0" * (MAX_ANSWER_BYTES + 1)
    )
    assert zstandard.frame_content_size(huge) == MAX_ANSWER_BYTES + 1
    assert CODEC.inflate(huge) is None


def test_threads_share_one_codec() -> None:
    contents = [CONTENT[i:] + bytes([i]) * i for i in range(8)]
    failures: list[int] = []

    def work(i: int) -> None:
        for _ in range(200):
            data = CODEC.compress(contents[i])
            if CODEC.inflate(data) != contents[i]:
                failures.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures
