"""Dynamic view synthesis as an inverse problem, as one object over the video model, in the paper's steps:

1. encode the render into VAE latents (x0, the image condition);
2. embed the prompts;
3. DDIM-invert x0 to where sampling starts (ε_inv);
4. noise initialisation at t_start: SLM fills the occluded cells of x0 and ε_inv, then K-RNR (paper §4.3–4.4);
5. guided DDIM from t_start: region-aware CFG, guidance on occluded cells, preservation on visible ones;
6. decode.

Every decision about classifier-free guidance and every transformer pass is made here (`pipeline.denoise`), so
what the stages run is what the benchmarks time and the tests check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import numpy as np
import torch

from ..core.ddim import Inversion, ddim_invert, ddim_sample, inversion_plan, roundtrip_error
from ..core.guidance import RegionGuidance, uses_cfg
from ..core.krnr import noise_init
from ..core.masks import background_mask, latent_masks
from ..core.slm import NothingVisible, stochastic_latent_modulation
from ..core.streams import generator
from ..infra.errors import UserError
from ..models.cogvideo import (
    StepClock,
    alphas_cumprod,
    decode,
    encode_image_latents,
    encode_video,
    latent_padding,
    sampling_cache,
    sampling_latents,
    synchronize,
)
from .denoise import guided_v
from .schedule import PointPlan


class Encoded(NamedTuple):
    x0: torch.Tensor  # float [1, p + t, C, h, w]: the render's VAE latents after p padding frames (encode_video)
    image_latents: torch.Tensor  # float [1, p + t, C, h, w]: the I2V condition (the first frame, then zero frames)
    padding: int = 0  # p: latent frames in front that are no frame of the video (CogVideoX1.5: 1)


class Output(NamedTuple):
    frames: np.ndarray  # [T, H, W, 3] uint8
    t_start: int
    alpha_bar_t_start: float
    sampling_steps: int
    sampling_nfe: int
    sampling_seconds: float
    decode_seconds: float


def encode_render(pipe, frames: np.ndarray, posterior: str, seed: int) -> Encoded:
    """The render [T, H, W, 3] uint8 as VAE latents: `mode` both deterministic; `sample` both posterior samples, x0
    first, from one generator seeded with `seed`; `reference` (official) x0 the mode and the image latent a sample
    from a fresh generator seeded with `seed`, as diffusers' I2V `prepare_latents` draws it."""
    gen = generator(seed, "vae")
    pad = latent_padding(pipe, (len(frames) - 1) // pipe.vae_scale_factor_temporal + 1)
    if posterior == "reference":
        x0 = encode_video(pipe, frames, "mode")
        return Encoded(x0, encode_image_latents(pipe, frames[0], x0.shape[1], "sample", gen), pad)
    x0 = encode_video(pipe, frames, posterior, gen)
    return Encoded(x0, encode_image_latents(pipe, frames[0], x0.shape[1], posterior, gen), pad)


def inversion_tensors(enc: Encoded, inv: Inversion) -> dict[str, torch.Tensor]:
    """What an inversion file holds and `InverseDVS.generate` reads: `x0`, `eps_inv`, `image_latents`, `timesteps`
    (int64), and `trajectory` (the latent after each step) when the inversion kept it."""
    tensors = {"x0": enc.x0, "eps_inv": inv.latent, "image_latents": enc.image_latents,
               "timesteps": torch.tensor(inv.timesteps, dtype=torch.int64)}
    if inv.trajectory:
        tensors["trajectory"] = torch.stack(inv.trajectory)
    return tensors


def item_inputs(cfg, visible: np.ndarray, depth: np.ndarray, input_frames: np.ndarray,
                render_frames: np.ndarray) -> dict[str, object]:
    """What every sweep point of one (trajectory, video) reads (cfg: config.Config): latent masks
    (`core.masks.latent_masks` of the warp's visibility [T, H, W] float in [0, 1]), the background mask (of depth
    [T, H, W]) and the input and render frames [T, H, W, 3] uint8 at the model size."""
    s = cfg.slm
    return {"masks": latent_masks(visible, s.mask_pooling, s.occlusion_threshold, s.eps_rank),
            "background": background_mask(depth, s.background_threshold), "input": input_frames,
            "render": render_frames}


class InverseDVS:
    """The method on one video model (models.cogvideo.LazyPipeline, loaded on first use) with one config.

    `invert` and `generate` are what the invert and infer stages run per item; `scripts/bench_pipeline.py`,
    `scripts/check_inversion.py` and the tests run the same calls."""

    def __init__(self, model, cfg):
        self.model, self.cfg = model, cfg

    @property
    def stats(self):
        """The model's counters: loads and transformer passes (NFE)."""
        return self.model.stats

    # the CFG decisions ------------------------------------------------------------------------------------------
    @property
    def inversion_uses_cfg(self) -> bool:
        g = self.cfg.inversion.guidance_scale
        return uses_cfg(g, g, "off")

    @property
    def inversion_batch(self) -> int:
        """Latents per transformer pass during inversion: 2 with inversion CFG, else 1."""
        return 2 if self.inversion_uses_cfg else 1

    def sampling_batches(self, plans: list[PointPlan]) -> tuple[int, ...]:
        """Latents per transformer pass the sampler runs compiled: 2 for points with CFG, 1 without; none while a step
        cache is on (its hooks run the blocks uncompiled, `models.cogvideo.sampling_cache`)."""
        return () if self.cfg.inference.cache != "none" else tuple(sorted({p.batch for p in plans}))

    def inversion_nfe(self, steps: int) -> int:
        """Transformer passes of an inversion of `steps` steps: one per step, plus one per refinement iteration,
        doubled under inversion CFG."""
        return steps * (1 + self.cfg.inversion.refine_iterations) * self.inversion_batch

    # 1. encode --------------------------------------------------------------------------------------------------
    def encode(self, frames: np.ndarray, seed: int) -> Encoded:
        """The render [T, H, W, 3] uint8 as VAE latents (`encode_render` with `inversion.posterior`)."""
        return encode_render(self.model.get((self.inversion_batch,)), frames, self.cfg.inversion.posterior, seed)

    # 2. prompts -------------------------------------------------------------------------------------------------
    def embeddings(self, prompt: str, negative: str | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Prompt embeddings [1, L, D], and the negative one when CFG runs (`negative` not None); each text encoded
        once per process."""
        if negative is None:
            return self.model.embed([prompt])[0], None
        cond, uncond = self.model.embed([prompt, negative])
        return cond, uncond

    # 3. invert --------------------------------------------------------------------------------------------------
    def invert(self, enc: Encoded, prompt: str, t_end: int, progress=None) -> Inversion:
        """DDIM-invert x0 up to t_end with the configured plan (`inversion.end`, `steps`, `refine_iterations`),
        conditioned on the image latents and the prompt (against "" with inversion CFG)."""
        inv = self.cfg.inversion
        p = self.model.get((self.inversion_batch,))
        cond, uncond = self.embeddings(prompt, "" if self.inversion_uses_cfg else None)
        v_fn = guided_v(p, enc.image_latents, cond, uncond, inv.guidance_scale, self.stats)
        plan = inversion_plan(inv.end, t_end, inv.steps)
        return ddim_invert(v_fn, enc.x0.to(enc.image_latents.device), plan, alphas_cumprod(p), inv.refine_iterations,
                           inv.save_trajectory, progress)

    def roundtrip(self, enc: Encoded, prompt: str, t_start: int, steps: int, refine_iterations: int) -> float:
        """The inversion check: relative latent error ‖x0′ − x0‖ / ‖x0‖ after inverting x0 up to t_start on the
        paper's grid (`steps` steps, `refine_iterations` fixed-point iterations per step) and sampling back down
        the same grid, both without CFG."""
        p = self.model.get((1,))
        cond, _ = self.embeddings(prompt, None)
        v_fn = guided_v(p, enc.image_latents, cond, None, 1.0, self.stats)
        return roundtrip_error(v_fn, enc.x0.to(enc.image_latents.device), inversion_plan("t_start", t_start, steps),
                               alphas_cumprod(p), refine_iterations)

    # 4–6. noise initialisation, guided DDIM, decode -------------------------------------------------------------
    def generate(self, plan: PointPlan, prompt: str, inversion: dict[str, torch.Tensor], item: dict[str, object],
                 progress=None, window: int = 0) -> Output:
        """One output of one sweep point from its inversion (`inversion`: the tensors of its file) and the item's
        inputs (`item`: `item_inputs` — latent masks, background mask, render frames). `window`: the index of the
        window of a long clip (README → Long videos); windows after the first draw SLM from their own streams."""
        cfg, pt, sched = self.cfg, plan.point, plan.schedule
        p = self.model.get(self.sampling_batches([plan]))
        alphas = alphas_cumprod(p)
        a_bar = float(alphas[sched.t_start])
        x0, img = sampling_latents(p, cfg.inference.vae_latents, inversion, item["render"],
                                   generator(pt.seed, "vae"))
        dev = x0.device  # the transformer's (models.cogvideo.execution_device), where sampling runs
        eps = inversion["eps_inv"].to(dev)
        masks = item["masks"]

        def latent(mask: np.ndarray) -> torch.Tensor:  # bool [t, h, w] → [1, t, 1, h, w] on the model's device
            return torch.from_numpy(mask).to(dev)[None, :, None]

        occ = latent(masks.occluded)  # the real latent frames; x0 has `pad` padding frames in front of them
        pad = x0.shape[1] - occ.shape[1]
        if pad != latent_padding(p, occ.shape[1]) or occ.shape[-2:] != x0.shape[-2:]:
            raise UserError(f"masks {tuple(occ.shape)} do not match the latents {tuple(x0.shape)}; rerun warp and "
                            "invert with the same camera settings (--force).")
        # 4. noise initialisation: SLM fills the occluded cells of the real frames, then K-RNR over the whole layout
        fill = _real_frames(partial(
            stochastic_latent_modulation, occluded=occ,
            generator=generator(pt.seed, "slm" if window == 0 else f"slm:window{window}"), mode=cfg.slm.mode,
            background=latent(item["background"]), occluded_eps=latent(masks.occluded_eps)), pad) \
            if cfg.slm.enabled else None
        try:
            x_init = noise_init(cfg.inference.noise_init, x0, eps, a_bar, fill, k=pt.k_order,
                                delta=pt.adaptive_order, stats=cfg.inference.adain, rounds=cfg.inference.noise_rounds)
        except NothingVisible as exc:
            raise UserError(str(exc)) from None
        # 5. region-aware CFG: guidance on occluded cells, preservation on visible ones
        # (a padding frame starts as a copy of the first real frame, so its cells get that frame's scales)
        guidance = RegionGuidance(pt.guidance_scale, pt.preservation_scale, cfg.inference.dynamic_cfg,
                                  len(sched.timesteps), torch.cat([occ[:, :1]] * pad + [occ], dim=1))
        cond, uncond = self.embeddings(prompt, cfg.inference.negative_prompt if plan.uses_cfg else None)
        clock = StepClock()
        v_fn = guided_v(p, img, cond, uncond, guidance, self.stats, clock)
        nfe0 = self.stats.nfe
        synchronize(dev)
        t0 = time.perf_counter()
        with sampling_cache(p, cfg.inference.cache, clock):  # sampling only: never during inversion
            latents = ddim_sample(v_fn, x_init, sched.timesteps, sched.prev_timesteps, alphas, progress=progress)
        synchronize(dev)
        t1 = time.perf_counter()
        if not bool(torch.isfinite(latents).all()):
            raise UserError(f"sampling produced NaN or inf latents (steps {pt.steps}, strength {pt.strength}, "
                            f"guidance {pt.guidance_scale}); nothing was written. With run.dtype: fp16 this is an "
                            "overflow: use bf16 or fp32.")
        # 6. decode
        frames = decode(p, latents, pad)
        return Output(frames, sched.t_start, a_bar, len(sched.timesteps), self.stats.nfe - nfe0, round(t1 - t0, 2),
                      round(time.perf_counter() - t1, 2))


def _real_frames(fill, pad: int):
    """SLM over the real latent frames only: `fill` (x0, ε) → (x0, ε) applied after the `pad` padding frames in
    front, which are passed through untouched (no mask describes them; diffusers' pipeline treats the padding frame
    as one more latent frame and drops it after sampling)."""
    if not pad:
        return fill

    def run(x0: torch.Tensor, eps: torch.Tensor):
        x, e = fill(x0[:, pad:], eps[:, pad:])
        return torch.cat([x0[:, :pad], x], dim=1), torch.cat([eps[:, :pad], e], dim=1)

    return run


@dataclass
class StageModel:
    """What every item of a model stage (invert, infer) shares in one process: the method on the lazily loaded model
    (with its prompt-embedding cache and counters) and the stage's options."""

    method: InverseDVS
    quiet: bool
    force: bool = False  # --force: recompute everything, reuse nothing

    @property
    def cfg(self):
        return self.method.cfg

    @property
    def model(self):
        return self.method.model

    @property
    def stats(self):
        return self.method.stats
