"""Chunks follow text boundaries, measured in the embedding model's own tokens."""

import re

from backend.memory.chunking import chunk_text, estimate_tokens
from backend.memory.ingest import Chunker

PROSE = ("Biscuit is a very familiar dog who likes long walks. " * 6 + "\n\n"
         + "The report is at https://example.com/a/very/long/path/to/the/quarterly-report-final-version.pdf?download=1 "
           "and the data at sandbox:/mnt/data/quarterly_numbers.csv for later. " * 5 + "\n\n"
         + "Pneumonoultramicroscopicsilicovolcanoconiosis " * 40 + "\n\n"
         + "A closing paragraph with an important fact: the meeting moved to Thursday.")


def words(text):
    return text.split()


def test_no_chunk_splits_a_word_or_a_url(embedder):
    chunker = Chunker.for_embedder(embedder)
    chunks = chunk_text(PROSE, chunker.max_tokens, count=chunker.count)
    assert len(chunks) > 3
    vocabulary = set(words(PROSE))
    for chunk in chunks:
        assert set(words(chunk)) <= vocabulary, set(words(chunk)) - vocabulary  # every word whole, every URL whole
    assert any("https://example.com/a/very/long/path/to/the/quarterly-report-final-version.pdf?download=1" in c for c in chunks)


def test_chunks_fit_the_embedding_window_in_its_own_tokens(embedder):
    chunker = Chunker.for_embedder(embedder)
    assert chunker.max_tokens <= embedder.max_tokens - 2
    for chunk in chunk_text(PROSE, chunker.max_tokens, count=chunker.count):
        assert embedder.count_tokens(chunk) <= chunker.max_tokens


def test_paragraphs_stay_whole_when_they_fit_and_neighbours_overlap():
    first = "Alpha sentence one. Alpha sentence two."
    second = " ".join(f"Beta sentence number {i} is here." for i in range(60))
    chunks = chunk_text(f"{first}\n\n{second}", max_tokens=60, overlap_tokens=12)
    assert chunks[0].startswith(first)
    for before, after in zip(chunks, chunks[1:]):
        last_sentence = re.findall(r"[^.]+\.", before)[-1].strip()
        assert after.startswith(last_sentence) or estimate_tokens(last_sentence) > 12  # the overlap repeats whole sentences
    assert "Beta sentence number 59 is here." in chunks[-1]


def test_one_huge_word_is_kept_whole_and_short_text_is_one_chunk():
    assert chunk_text("short and sweet") == ["short and sweet"]
    blob = "x" * 5000
    assert chunk_text(f"before. {blob} after.", max_tokens=50) == ["before.", blob, "after."]
    assert chunk_text("   \n\n  ") == []
