"""Stochastic Latent Modulation (paper §4.4): fill occluded latent cells of x0 and ε_inv with values drawn from
visible cells. Pure tensor function; randomness only from the `torch.Generator` passed in.

Modes (`slm.mode`), side by side in `stochastic_latent_modulation`:
- `paper`: the paper's P_S with S = (1 − M)·D, visible *background* cells. Element-wise draws with replacement over
  the whole video, each channel from its own channel's pool; one draw fills x0 and ε_inv at the same places, so
  every filled cell keeps a matching (x0, ε_inv) pair. One mask M for both.
- `reference`: the official code's sampling, written from its description: draws with replacement over *every*
  visible element of the whole [B, t, C, h, w] tensor (channels mixed, no background mask D); x0 and ε_inv are
  drawn independently, each into its own mask (`occluded` for x0, the stricter `occluded_eps` for ε_inv) from the
  complement of that mask.
- `frame`: whole C-vectors drawn from S within the same latent frame (keeps channel correlations and locality).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

SLM_MODES = ("paper", "reference", "frame")


class NothingVisible(ValueError):
    """SLM has no visible cell to draw from (a latent frame, or the whole video, is fully occluded)."""


class SLMResult(NamedTuple):
    x0: torch.Tensor  # [B, t, C, h, w]
    eps: torch.Tensor  # [B, t, C, h, w]


def _sample(pool_size: int, n: int, generator: torch.Generator, device) -> torch.Tensor:
    """n indices below pool_size, drawn on the generator's device (a CUDA generator draws there, as the official
    code's default one does), then moved to `device`."""
    return torch.randint(0, pool_size, (n,), generator=generator, device=generator.device).to(device)


def _check_frames(visible: torch.Tensor) -> None:
    """visible: bool [t, C, h, w] of one batch item; every latent frame needs at least one visible element."""
    vis_frames = visible.flatten(1).any(1)
    if not bool(vis_frames.all()):
        t = int((~vis_frames).nonzero()[0])
        px = "0" if t == 0 else f"{4 * t - 3}–{4 * t}"
        raise NothingVisible(f"latent frame {t} (video frames {px}) is fully occluded after warping: nothing is "
                             "visible to fill it from. Use a gentler trajectory (smaller angles/radius), or check the "
                             "depth for that frame.")


def _fill_from_visible(x: torch.Tensor, occ: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Reference draw: every True element of occ [B, t, C, h, w] gets a value of x at a uniformly drawn False one."""
    out = x.clone()
    n = int(occ.sum())
    if n == 0:
        return out
    pool = x[~occ]
    if pool.numel() == 0:
        raise NothingVisible("every latent cell is occluded after warping: nothing is visible to fill from. Use a "
                             "gentler trajectory (smaller angles/radius).")
    out[occ] = pool[_sample(pool.numel(), n, generator, x.device)]
    return out


def stochastic_latent_modulation(x0: torch.Tensor, eps: torch.Tensor, occluded: torch.Tensor,
                                 generator: torch.Generator, mode: str = "paper",
                                 background: torch.Tensor | None = None,
                                 occluded_eps: torch.Tensor | None = None) -> SLMResult:
    """Replace the occluded cells of x0 and eps by values sampled from visible cells (see the module docstring).

    Args:
        x0, eps: float [B, t, C, h, w] latents (the render's latent and the inverted latent); not modified.
        occluded: bool M, [B, t, 1, h, w] (broadcast over channels) or [B, t, C, h, w]; True = occluded.
        generator: torch.Generator (seeded by the run seed); the draws are made on its device.
        mode: `paper`, `reference` or `frame`.
        background: bool D, same shape rules as `occluded` (`paper`, `frame`); None = everything is background.
            If no visible background cell exists, the visible cells are used.
        occluded_eps: bool mask for eps (`reference` only; default `occluded`).
    No visible cell at all in a latent frame (`paper`, `frame`) or in the video (`reference`) is a NothingVisible error.
    """
    if x0.shape != eps.shape or x0.ndim != 5:
        raise ValueError(f"x0 and eps must both be [B, t, C, h, w], got {tuple(x0.shape)} and {tuple(eps.shape)}")
    if mode not in SLM_MODES:
        raise ValueError(f"unknown SLM mode {mode!r}; one of {SLM_MODES}")
    full = x0.shape
    occ = occluded.to(torch.bool).expand(full)
    if mode == "reference":
        occ_eps = occ if occluded_eps is None else occluded_eps.to(torch.bool).expand(full)
        # ε first, then x0: two independent draws, as the official code makes them
        eps_out = _fill_from_visible(eps, occ_eps.contiguous(), generator)
        return SLMResult(_fill_from_visible(x0, occ.contiguous(), generator), eps_out)
    visible = ~occ
    bg = torch.ones_like(occ) if background is None else background.to(torch.bool).expand(full)
    source = visible & bg
    x_out, e_out = x0.clone(), eps.clone()
    B, T, C = full[:3]
    for b in range(B):
        _check_frames(visible[b])
        if mode == "paper":
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
        else:  # frame
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
    return SLMResult(x_out, e_out)
