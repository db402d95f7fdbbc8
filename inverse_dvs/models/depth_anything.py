"""Depth Anything V2 through transformers (AutoModelForDepthEstimation), batched over frames."""

from __future__ import annotations

import numpy as np

from ..infra.device import torch_dtype
from ..infra.hub import resolve_model
from .lazy import Lazy


class DepthAnything:
    """Depth Anything V2 through transformers; loaded once per process, batched over frames."""

    def __init__(self, model: str, device, dtype):
        import torch
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        path = resolve_model(model)
        self.torch = torch
        self.processor = AutoImageProcessor.from_pretrained(path)
        self.model = AutoModelForDepthEstimation.from_pretrained(path, dtype=dtype).to(device).eval()
        self.device, self.dtype = device, dtype

    def disparity(self, frames: np.ndarray, batch_size: int, progress: bool) -> np.ndarray:
        """frames [T, H, W, 3] uint8 → relative disparity [T, H, W] float32 (larger = nearer)."""
        from tqdm import tqdm

        torch = self.torch
        out = []
        h, w = frames.shape[1:3]
        with torch.inference_mode():
            for i in tqdm(range(0, len(frames), batch_size), desc="depth", unit="batch", disable=not progress):
                inputs = self.processor(images=list(frames[i:i + batch_size]), return_tensors="pt")
                pred = self.model(pixel_values=inputs["pixel_values"].to(self.device, self.dtype)).predicted_depth
                pred = torch.nn.functional.interpolate(pred[:, None].float(), size=(h, w), mode="bilinear",
                                                       align_corners=False)[:, 0]
                out.append(pred.cpu().numpy())
        return np.concatenate(out).astype(np.float32)


def depth_model(cfg, device) -> Lazy[DepthAnything]:
    """The configured depth model (cfg: config.Config) on `device` (torch.device), loaded on first use."""
    return Lazy(lambda: DepthAnything(cfg.depth.model, device, torch_dtype(cfg.run.dtype, device)),
                f"depth model {cfg.depth.model}")
