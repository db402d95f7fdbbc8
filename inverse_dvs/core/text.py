"""Caption maths: which frames a captioner sees, and shortening a caption to the text encoder's length (pure)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

import numpy as np


def even_frames(num_frames: int, k: int) -> list[int]:
    """k frame indices spread evenly over [0, num_frames − 1], first and last included (fewer if num_frames < k)."""
    if num_frames <= 0:
        raise ValueError("no frames")
    return sorted({int(round(x)) for x in np.linspace(0, num_frames - 1, max(1, min(k, num_frames)))})


class Shortened(NamedTuple):
    text: str
    truncated: bool
    tokens: int  # tokens of the returned text


def shorten_caption(text: str, count_tokens: Callable[[str], int], max_tokens: int) -> Shortened:
    """The longest prefix of `text` that ends a sentence and fits in `max_tokens` (a word boundary when not even the
    first sentence fits). `count_tokens` is the text encoder's tokenizer, special tokens included."""
    text = " ".join(text.split())
    n = count_tokens(text)
    if n <= max_tokens:
        return Shortened(text, False, n)
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", text)]
    for end in reversed(ends):
        candidate = text[:end].strip()
        k = count_tokens(candidate)
        if k <= max_tokens:
            return Shortened(candidate, True, k)
    words = text.split()
    lo, hi = 0, len(words)  # binary search for the most words that fit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_tokens(" ".join(words[:mid])) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    candidate = " ".join(words[:lo])
    return Shortened(candidate, True, count_tokens(candidate))
