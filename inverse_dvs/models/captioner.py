"""The captioner: a vision-language model transformers supports natively (AutoModelForImageTextToText, no remote
code; default SmolVLM-Instruct) describing a few frames of a video."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..infra.device import torch_dtype
from ..infra.hub import component_config, resolve_model
from .lazy import Lazy


class Captioner:
    """The vision-language model and the video model's tokenizer (to count the caption's tokens); loads at
    construction — wrap it in `Lazy` (`captioner`) to load on first use."""

    def __init__(self, cfg, device):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

        self.cfg, self.torch = cfg, torch
        self.device = device
        dtype = torch_dtype(cfg.run.dtype, self.device)
        path = resolve_model(cfg.caption.model)
        self._processor = AutoProcessor.from_pretrained(path)
        self._model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype).to(self.device).eval()
        self._t5 = AutoTokenizer.from_pretrained(Path(resolve_model(cfg.inversion.model)) / "tokenizer")
        transformer = component_config(cfg.inversion.model, "transformer")
        self.max_tokens = int(transformer.get("max_text_seq_length", 226))

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` for the video model's text encoder (its end-of-sequence token included)."""
        return len(self._t5(text, add_special_tokens=True).input_ids)

    def caption(self, frames: np.ndarray) -> str:
        """frames [K, H, W, 3] uint8 → the model's description (greedy decoding: deterministic)."""
        from PIL import Image

        c = self.cfg.caption
        messages = [{"role": "user", "content": [*({"type": "image"} for _ in frames),
                                                 {"type": "text", "text": c.query}]}]
        text = self._processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = self._processor(text=text, images=[[Image.fromarray(f) for f in frames]], return_tensors="pt")
        inputs = {k: v.to(self.device, self._model.dtype) if v.is_floating_point() else v.to(self.device)
                  for k, v in inputs.items()}
        with self.torch.inference_mode():
            out = self._model.generate(**inputs, max_new_tokens=c.max_new_tokens, do_sample=False)
        return self._processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0].strip()


def captioner(cfg, device) -> Lazy[Captioner]:
    """The configured captioner (cfg: config.Config) on `device` (torch.device), loaded on first use."""
    return Lazy(lambda: Captioner(cfg, device), f"captioner {cfg.caption.model}")
