"""Which video model a checkpoint is, read from its config files (never from its name), and what follows from it:
the sizes and frame counts it runs at, and its latent layout.

There is one `Family` description per model family. A checkpoint belongs to the family whose structure its
configs declare: the positional-embedding kind, the temporal patch (`patch_size_t`) and the `ofs` embedding.
The rest is read from the configs into a `Backbone`: VAE compression, patch size, positional table, default frame
count, `invert_scale_latents`, the scheduler.

| family | positional | patch_size_t | ofs | sizes | frames |
|---|---|---|---|---|---|
| CogVideoX-5B-I2V | learned | – | – | its table only: 480×720 | its own: 49 |
| CogVideoX1.5-5B-I2V | rotary | 2 | 2.0 | min side 768, max side ≤ 1360, multiples of 16 | 16k + 1 ≤ 161, default 81 |

The 1.5 size rule is the model card's, for the real checkpoint's 2400 px positional table (`sample_height/width`
300 latent cells). A checkpoint with a smaller table (the tiny test model) gets the same rule scaled by its table,
rounded to its patch, so its sizes keep the same proportions.

Pure Python on the JSON configs: no torch or diffusers import, so the config loader and preflight can use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Family:
    """What a model family is, as its model card and training define it; `matches` decides membership from the
    transformer's config."""

    name: str
    hub_id: str  # the real checkpoint (README, `python -m inverse_dvs.weights download`)
    positional: str  # "learned": one table of the trained size; "rotary": any size the family allows
    patch_size_t: int | None  # temporal patch: latent frames are padded to a multiple of it
    ofs: float | None  # the value of the `ofs` embedding every transformer call gets (None: no such embedding)
    fps: int
    reference_lora: bool  # the official code's LoRA (Go-with-the-Flow) exists for it
    # rotary families: the trained range (px) for a positional table of `table` px per side
    min_side: int = 0
    max_side: int = 0
    table: int = 0
    frame_step: int = 0  # frames 1 + frame_step·k, up to max_frames
    max_frames: int = 0

    def matches(self, transformer: dict[str, Any]) -> bool:
        return (positional_kind(transformer) == self.positional
                and transformer.get("patch_size_t") == self.patch_size_t
                and bool(transformer.get("ofs_embed_dim")) == (self.ofs is not None))


COGVIDEOX_5B_I2V = Family("CogVideoX-5B-I2V", "THUDM/CogVideoX-5b-I2V", positional="learned", patch_size_t=None,
                          ofs=None, fps=8, reference_lora=True)
COGVIDEOX15_5B_I2V = Family("CogVideoX1.5-5B-I2V", "THUDM/CogVideoX1.5-5B-I2V", positional="rotary", patch_size_t=2,
                            ofs=2.0, fps=16, reference_lora=False, min_side=768, max_side=1360, table=2400,
                            frame_step=16, max_frames=161)
FAMILIES = (COGVIDEOX_5B_I2V, COGVIDEOX15_5B_I2V)


def positional_kind(transformer: dict[str, Any]) -> str:
    """`learned` (a table of one size; CogVideoX-5B-I2V has rotary ones too, which do not free the size), `rotary`
    or `none`."""
    if transformer.get("use_learned_positional_embeddings"):
        return "learned"
    return "rotary" if transformer.get("use_rotary_positional_embeddings") else "none"


def _floor(x: float, m: int) -> int:
    return int(x // m) * m


def _ceil(x: float, m: int) -> int:
    return int(math.ceil(x / m - 1e-9)) * m


@dataclass(frozen=True)
class Backbone:
    """One checkpoint as the method sees it: its family and what its configs say."""

    family: Family
    spatial: int  # VAE spatial compression (8)
    temporal: int  # VAE temporal compression (4)
    patch: int  # transformer patch side, in latent cells
    table_hw: tuple[int, int]  # positional table in px (sample_height/width × spatial)
    default_frames: int  # the transformer's sample_frames
    invert_scale_latents: bool  # the image condition is divided by the VAE scale instead of multiplied
    prediction_type: str
    zero_terminal_snr: bool
    snr_shift_scale: float
    heads: int = 48  # attention heads (context parallel: Ulysses splits them)
    text_tokens: int = 226  # the prompt's tokens in each call, padded to this length

    @property
    def name(self) -> str:
        return self.family.name

    @property
    def side_step(self) -> int:
        """Sides are multiples of this many px (one patch)."""
        return self.spatial * self.patch

    @property
    def fixed(self) -> bool:
        """Whether it runs at one size and frame count only (learned positional embeddings)."""
        return self.family.positional == "learned"

    @property
    def side_range(self) -> tuple[int, int]:
        """(min side, max side) in px; a fixed family's are its table's."""
        if self.fixed:
            return min(self.table_hw), max(self.table_hw)
        s = min(self.table_hw) / self.family.table
        return _ceil(self.family.min_side * s, self.side_step), _floor(self.family.max_side * s, self.side_step)

    # frames and latent layout -----------------------------------------------------------------------------------
    def padding(self, latent_frames: int) -> int:
        """Latent frames put in front so the transformer's temporal patch divides them (as diffusers pads): 21 → 1."""
        p = self.family.patch_size_t
        return (-latent_frames) % p if p else 0

    def allowed_frames(self) -> str:
        if self.fixed:
            return str(self.default_frames)
        step, top = self.family.frame_step, self.family.max_frames
        return f"1 + {step}·k frames up to {top} ({', '.join(str(1 + step * k) for k in range(1, 6))}, …)"

    def frames_problem(self, frames: int, key: str) -> str | None:
        """Why the model cannot take `frames` per call (named by config `key`), or None."""
        if self.fixed:
            ok = frames == self.default_frames
        else:
            step = self.family.frame_step
            ok = frames > 1 and (frames - 1) % step == 0 and frames <= self.family.max_frames
        if ok:
            return None
        return (f"config key '{key}' gives the model {frames} frames per call, but {self.name} takes "
                f"{self.allowed_frames()}. Set {key} to one of those, or `auto` ({self.default_frames}).")

    def tokens(self, frames: int, height: int, width: int) -> int:
        """Text and video tokens of one transformer call on `frames` frames of height × width px."""
        latent = (frames - 1) // self.temporal + 1
        latent = (latent + self.padding(latent)) // (self.family.patch_size_t or 1)
        side = self.spatial * self.patch
        return self.text_tokens + latent * (height // side) * (width // side)

    # sizes ------------------------------------------------------------------------------------------------------
    def allowed_sizes(self) -> str:
        if self.fixed:
            h, w = self.table_hw
            return f"{h}×{w} only (learned positional embeddings)"
        lo, hi = self.side_range
        return (f"the shorter side {lo}, the longer side {lo} to {hi}, both multiples of {self.side_step} "
                f"(e.g. {lo}×{hi} landscape, {hi}×{lo} portrait, {lo}×{lo} square)")

    def size_problem(self, height: int, width: int) -> str | None:
        """Why the model cannot run at height × width (config keys camera.height/width), or None."""
        if self.fixed:
            ok = (height, width) == self.table_hw
        else:
            lo, hi = self.side_range
            ok = (min(height, width) == lo and max(height, width) <= hi and height % self.side_step == 0
                  and width % self.side_step == 0)
        if ok:
            return None
        return (f"config keys 'camera.height' × 'camera.width' are {height}×{width}, but {self.name} runs at "
                f"{self.allowed_sizes()}. Set both to `auto` (the largest allowed size at each video's aspect) or "
                "to an allowed size.")

    def auto_size(self, source_hw: tuple[int, int]) -> tuple[int, int]:
        """The size `camera.height/width: auto` gives a video of source_hw: a fixed family's own size (the resize
        policy crops to it); else the largest allowed size at the video's aspect: the shorter side at its minimum
        (the only value the family allows), the longer one at the aspect, rounded to a patch, up to the maximum."""
        if self.fixed:
            return self.table_hw
        lo, hi = self.side_range
        h0, w0 = source_hw
        long_side = min(hi, max(lo, round(lo * max(h0, w0) / min(h0, w0) / self.side_step) * self.side_step))
        return (lo, long_side) if w0 >= h0 else (long_side, lo)


class UnknownBackbone(ValueError):
    """The configs describe no known family, or a model the method cannot invert."""


def detect(transformer: dict[str, Any], vae: dict[str, Any], scheduler: dict[str, Any]) -> Backbone:
    """The Backbone of a checkpoint from its transformer, VAE and scheduler configs (dicts as in config.json)."""
    found = (f"positional embeddings {positional_kind(transformer)}, patch_size_t "
             f"{transformer.get('patch_size_t')}, ofs_embed_dim {transformer.get('ofs_embed_dim')}, in_channels "
             f"{transformer.get('in_channels')}, out_channels {transformer.get('out_channels')}")
    family = next((f for f in FAMILIES if f.matches(transformer)), None)
    if family is None or transformer.get("in_channels") != 2 * transformer.get("out_channels", -1):
        known = "; ".join(f"{f.name} ({f.positional}, patch_size_t {f.patch_size_t}, ofs "
                          f"{'yes' if f.ofs is not None else 'no'})" for f in FAMILIES)
        raise UnknownBackbone(f"its transformer config ({found}) matches no model family this tool knows "
                              f"(image-to-video CogVideoX: {known}).")
    prediction = scheduler.get("prediction_type", "epsilon")
    zero_snr = bool(scheduler.get("rescale_betas_zero_snr", False))
    if prediction != "v_prediction" or not zero_snr:
        raise UnknownBackbone(f"its scheduler has prediction_type {prediction!r} and rescale_betas_zero_snr "
                              f"{zero_snr}; the method needs a v-prediction model with zero terminal SNR (K-RNR and "
                              "the inversion end at ᾱ = 0).")
    spatial = 2 ** (len(vae.get("block_out_channels", (0, 0, 0, 0))) - 1)
    return Backbone(
        family=family, spatial=spatial, temporal=int(vae.get("temporal_compression_ratio", 4)),
        patch=int(transformer.get("patch_size", 2)),
        table_hw=(int(transformer["sample_height"]) * spatial, int(transformer["sample_width"]) * spatial),
        default_frames=int(transformer["sample_frames"]),
        invert_scale_latents=bool(vae.get("invert_scale_latents", False)), prediction_type=prediction,
        zero_terminal_snr=zero_snr, snr_shift_scale=float(scheduler.get("snr_shift_scale", 3.0)),
        heads=int(transformer.get("num_attention_heads", 48)),
        text_tokens=int(transformer.get("max_text_seq_length", 226)))


def of_pipeline(pipe) -> Backbone:
    """The Backbone of a loaded diffusers pipeline (the same description as from its files)."""
    return detect(dict(pipe.transformer.config), dict(pipe.vae.config), dict(pipe.scheduler.config))
