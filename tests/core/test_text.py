"""Tests of core.text."""

from __future__ import annotations

from inverse_dvs.core.text import even_frames, shorten_caption


def test_even_frames_and_sentence_boundary_shortening():
    assert even_frames(49, 4) == [0, 16, 32, 48] and even_frames(3, 8) == [0, 1, 2] and even_frames(49, 1) == [0]
    words = len  # a stand-in tokenizer: one token per character, so lengths are easy to read

    text = "A dog runs. It jumps over a log! Then it sleeps in the sun."
    assert shorten_caption(text, words, 100) == (text, False, len(text))
    short = shorten_caption(text, words, 40)
    assert short.text == "A dog runs. It jumps over a log!" and short.truncated and short.tokens <= 40
    first = shorten_caption("A very long first sentence without an early end.", words, 20)
    assert first.truncated and first.text == "A very long first" and first.tokens <= 20  # word boundary fallback
    assert shorten_caption("  spaced\n  out  ", words, 100).text == "spaced out"
