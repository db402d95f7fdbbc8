"""Stochastic Latent Modulation (paper §4.3): fill occluded latent cells with values drawn from visible background.

Pure tensor function; randomness only from the `torch.Generator` passed in.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .errors import UserError


class SLMResult(NamedTuple):
    x0: torch.Tensor  # [B, t, C, h, w]
    eps: torch.Tensor  # [B, t, C, h, w]


def _sample(pool_size: int, n: int, generator: torch.Generator, device) -> torch.Tensor:
    return torch.randint(0, pool_size, (n,), generator=generator).to(device)


def stochastic_latent_modulation(x0: torch.Tensor, eps: torch.Tensor, occluded: torch.Tensor,
                                 background: torch.Tensor, generator: torch.Generator,
                                 mode: str = "reference") -> SLMResult:
    """Replace every occluded cell of x0 and eps by values sampled from the source set S = (1 − M)·D.

    Args:
        x0, eps: [B, t, C, h, w] latents (the render's latent and the inverted latent); not modified.
        occluded: bool M, [B, t, 1, h, w] (broadcast over channels) or [B, t, C, h, w].
        background: bool D, same shape rules as `occluded`.
        generator: CPU torch.Generator (seeded by the run seed).
        mode: `reference` — element-wise draws with replacement from S over the whole video, each channel from
            its own channel's pool (as the paper's code); `frame` — whole C-vectors drawn from S in the same latent
            frame. The same draw fills x0 and eps, so each filled cell keeps a matching (x0, ε_inv) pair.
    If S is empty (no visible background) the visible cells are used; no visible cell at all is an error.
    """
    if x0.shape != eps.shape or x0.ndim != 5:
        raise ValueError(f"x0 and eps must both be [B, t, C, h, w], got {tuple(x0.shape)} and {tuple(eps.shape)}")
    full = x0.shape
    occ = occluded.to(torch.bool).expand(full)
    visible = ~occ
    source = visible & background.to(torch.bool).expand(full)
    x_out, e_out = x0.clone(), eps.clone()
    B, T, C = full[:3]
    for b in range(B):
        vis_frames = visible[b].flatten(1).any(1)
        if not bool(vis_frames.all()):
            t = int((~vis_frames).nonzero()[0])
            px = "0" if t == 0 else f"{4 * t - 3}–{4 * t}"
            raise UserError(f"latent frame {t} (video frames {px}) is fully occluded after warping: nothing is "
                            "visible to fill it from. Use a gentler trajectory (smaller angles/radius), or check "
                            "the depth for that frame.")
        if mode == "reference":
            for c in range(C):
                src = source[b, :, c]
                if not bool(src.any()):
                    src = visible[b, :, c]
                tgt = occ[b, :, c]
                n = int(tgt.sum())
                if n == 0:
                    continue
                pick = _sample(int(src.sum()), n, generator, x0.device)
                x_out[b, :, c][tgt] = x0[b, :, c][src][pick]
                e_out[b, :, c][tgt] = eps[b, :, c][src][pick]
        elif mode == "frame":
            cell_occ = occ[b].any(1)  # [t, h, w]: a cell is filled as a whole C-vector
            cell_src = source[b].all(1)
            cell_vis = visible[b].all(1)
            for t in range(T):
                n = int(cell_occ[t].sum())
                if n == 0:
                    continue
                src = cell_src[t] if bool(cell_src[t].any()) else cell_vis[t]
                if not bool(src.any()):
                    src = ~cell_occ[t]
                pick = _sample(int(src.sum()), n, generator, x0.device)
                xs, es = x0[b, t].permute(1, 2, 0), eps[b, t].permute(1, 2, 0)  # [h, w, C]
                xo, eo = x_out[b, t].permute(1, 2, 0), e_out[b, t].permute(1, 2, 0)
                xo[cell_occ[t]] = xs[src][pick]
                eo[cell_occ[t]] = es[src][pick]
        else:
            raise ValueError(f"unknown SLM mode {mode!r}")
    return SLMResult(x_out, e_out)
