"""Evaluation metrics (pure functions over frames and embeddings; no I/O, no model loading).

Frames are uint8 [T, H, W, 3] at the model's size (480×720 for CogVideoX-5B), compared as RGB in [0, 1].
- PSNR: 10·log10(1 / MSE) per frame, MSE over all pixels and channels (or over the masked pixels); the video's PSNR is
  the mean of the per-frame values.
- SSIM: torchmetrics' structural_similarity_index_measure per frame (Gaussian window 11, σ 1.5, K1 0.01, K2 0.03,
  data range 1, RGB channels averaged); with a mask, the mean of the SSIM map over the masked pixels.
- CLIP scores (×100, as the paper): CLIP-T the mean cosine similarity of each output frame's image embedding to the
  prompt's text embedding; CLIP-F the mean cosine similarity of consecutive output frames; CLIP-V the mean cosine
  similarity of each output frame to the input frame of the same index.
"""

from __future__ import annotations

import numpy as np
import torch

EPS_MSE = 1e-10  # identical frames: PSNR capped at 100 dB instead of infinity


def _unit(frames: np.ndarray) -> torch.Tensor:
    """uint8 [T, H, W, 3] → float64 [T, 3, H, W] in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).to(torch.float64) / 255.0


def psnr_per_frame(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """PSNR in dB per frame of a, b uint8 [T, H, W, 3]; mask bool [T, H, W] restricts the pixels (a frame with no
    masked pixel gives NaN). → float64 [T]."""
    d = (_unit(a) - _unit(b)) ** 2  # [T, 3, H, W]
    if mask is None:
        mse = d.flatten(1).mean(1)
    else:
        m = torch.from_numpy(mask).unsqueeze(1).expand_as(d).to(torch.float64)
        n = m.flatten(1).sum(1)
        mse = (d * m).flatten(1).sum(1) / n.clamp_min(1)
        mse[n == 0] = float("nan")
    return (10 * torch.log10(1.0 / mse.clamp_min(EPS_MSE))).numpy()


def ssim_per_frame(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """SSIM per frame of a, b uint8 [T, H, W, 3] (torchmetrics, defaults above); with mask bool [T, H, W], the SSIM
    map averaged over the masked pixels (NaN where a frame has none). → float64 [T]."""
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    x, y = _unit(a).float(), _unit(b).float()
    out = []
    for t in range(len(x)):
        if mask is None:
            out.append(float(ssim(x[t:t + 1], y[t:t + 1], data_range=1.0)))
            continue
        _, full = ssim(x[t:t + 1], y[t:t + 1], data_range=1.0, return_full_image=True)
        m = torch.from_numpy(mask[t]).to(full.dtype)
        out.append(float((full[0].mean(0) * m).sum() / m.sum()) if m.sum() > 0 else float("nan"))
    return np.asarray(out, dtype=np.float64)


def _cos(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(x.double(), y.double(), dim=-1)


def clip_text(frames_emb: torch.Tensor, text_emb: torch.Tensor) -> float:
    """CLIP-T: frames_emb [T, D], text_emb [D] or [1, D] → 100 × mean cosine."""
    return float(100 * _cos(frames_emb, text_emb.reshape(1, -1)).mean())


def clip_frame(frames_emb: torch.Tensor) -> float:
    """CLIP-F: frames_emb [T, D] → 100 × mean cosine of consecutive frames."""
    return float(100 * _cos(frames_emb[:-1], frames_emb[1:]).mean())


def clip_view(out_emb: torch.Tensor, in_emb: torch.Tensor) -> float:
    """CLIP-V: output and input frame embeddings [T, D] → 100 × mean cosine of same-index frames."""
    return float(100 * _cos(out_emb, in_emb).mean())
