"""CogVideoX's T5 text encoder: prompt embeddings, each text encoded on its own in one visit of a parked encoder to
the GPU, with one warning for a prompt longer than the encoder reads."""

from __future__ import annotations

import contextlib
import logging

import torch

from .placement import execution_device, visiting


@contextlib.contextmanager
def _library_warnings_off():
    """transformers and diffusers warn per call about truncated prompts; we say it once per prompt instead."""
    loggers = [logging.getLogger(n) for n in ("transformers", "diffusers")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)

def encode_texts(pipe, texts: list[str], log: logging.Logger | None = None) -> list[torch.Tensor]:
    """T5 embeddings [1, L, D] of each text, in one visit of a parked text encoder to the GPU. Each text is encoded
    on its own, as the pipeline encodes a prompt or a negative prompt. A text longer than the model's text length
    is truncated by the pipeline; `log` gets one warning saying what is dropped."""
    max_len = pipe.transformer.config.max_text_seq_length
    dev = execution_device(pipe)
    with _library_warnings_off():
        for text in texts:
            ids = pipe.tokenizer(text, add_special_tokens=True).input_ids
            if log is not None and len(ids) > max_len:
                dropped = pipe.tokenizer.decode(ids[max_len - 1:-1], skip_special_tokens=True)
                log.warning("the prompt %r is %d tokens long; the text encoder reads %d, so this end is ignored: %r",
                            text[:40] + ("…" if len(text) > 40 else ""), len(ids), max_len, dropped[:200])
        with torch.inference_mode(), visiting(pipe.text_encoder, dev):
            return [pipe.encode_prompt(text, do_classifier_free_guidance=False, max_sequence_length=max_len,
                                       device=dev)[0].clone() for text in texts]
