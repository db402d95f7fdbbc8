"""CogVideoX attention through diffusers' attention dispatcher (`run.attention_backend`).

diffusers' own `CogVideoXAttnProcessor2_0` calls `F.scaled_dot_product_attention` directly, so neither the
dispatcher's kernels (cuDNN, flash, sage, …) nor its context parallelism reach CogVideoX. `DispatchAttnProcessor`
computes what the stock processor computes — text and video tokens joined, q/k/v, the q/k LayerNorms, rotary
embeddings on the video tokens (CogVideoX1.5, and the 5B where it has them), attention, the output projection, split
again — but in diffusers' [batch, sequence, heads, head_dim] layout and through `dispatch_attention_fn`, with the
backend `ModelMixin.set_attention_backend` gives it. A LoRA on the projections is kept (it wraps to_q, to_k, …).
`auto` keeps the stock processor: torch picks its own SDPA kernel, as before this setting existed.
"""

from __future__ import annotations

import importlib.util

import torch

# what each backend `run.attention_backend` may name needs: name → (package it imports, needs CUDA)
BACKENDS: dict[str, tuple[str | None, bool]] = {
    "native": (None, False),
    "_native_math": (None, False),
    "_native_cudnn": (None, True),
    "_native_flash": (None, True),
    "_native_efficient": (None, True),
    "flex": (None, False),
    "flash": ("flash_attn", True),
    "sage": ("sageattention", True),
    "xformers": ("xformers", True),
}


def available_backends(cuda: bool) -> list[str]:
    """The backends this machine can run (`cuda`: the run computes on a CUDA device)."""
    return [name for name, (package, needs_cuda) in BACKENDS.items()
            if (cuda or not needs_cuda) and (package is None or importlib.util.find_spec(package) is not None)]


def backend_problem(name: str, cuda: bool) -> str | None:
    """Why `run.attention_backend` cannot run here (None: it can), naming what is installed."""
    if name == "auto" or name in available_backends(cuda):
        return None
    package, needs_cuda = BACKENDS[name]
    why = "needs a CUDA device" if needs_cuda and not cuda else f"needs the `{package}` package, not installed"
    return (f"config key 'run.attention_backend' is {name!r}, which {why}. Available here: "
            f"{', '.join(['auto', *available_backends(cuda)])}.")


class DispatchAttnProcessor:
    """The stock CogVideoX attention (module docstring) through `diffusers.models.attention_dispatch`."""

    _attention_backend = None  # set by ModelMixin.set_attention_backend
    _parallel_config = None  # set by ModelMixin.enable_parallelism

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor,
                 attention_mask: torch.Tensor | None = None, image_rotary_emb=None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        from diffusers.models.attention_dispatch import dispatch_attention_fn
        from diffusers.models.embeddings import apply_rotary_emb

        text = encoder_hidden_states.size(1)
        joint = torch.cat([encoder_hidden_states, hidden_states], dim=1)  # [B, L_text + L_video, C]
        batch, length, _ = joint.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, length, batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        q, k, v = (proj(joint).unflatten(2, (attn.heads, -1)) for proj in (attn.to_q, attn.to_k, attn.to_v))
        if attn.norm_q is not None:  # LayerNorm over head_dim: the layout does not matter
            q = attn.norm_q(q)
        if attn.norm_k is not None:
            k = attn.norm_k(k)
        if image_rotary_emb is not None:
            # a table of the video tokens; under context parallel one of this process's joint part, whose text rows
            # are the identity (models/context_parallel.py)
            start = text if image_rotary_emb[0].size(0) == length - text else 0
            q[:, start:] = apply_rotary_emb(q[:, start:], image_rotary_emb, sequence_dim=1)
            if not attn.is_cross_attention:
                k[:, start:] = apply_rotary_emb(k[:, start:], image_rotary_emb, sequence_dim=1)
        out = dispatch_attention_fn(q, k, v, attn_mask=attention_mask, dropout_p=0.0, is_causal=False,
                                    backend=self._attention_backend, parallel_config=self._parallel_config)
        out = attn.to_out[1](attn.to_out[0](out.flatten(2, 3).type_as(q)))
        encoder_out, out = out.split([text, length - text], dim=1)
        return out, encoder_out


def use_attention_backend(transformer, name: str) -> None:
    """Route every attention of a CogVideoX transformer through `DispatchAttnProcessor` with backend `name`
    (`auto`: leave the stock processor)."""
    if name == "auto":
        return
    import logging

    transformer.set_attn_processor(DispatchAttnProcessor())
    diffusers_log = logging.getLogger("diffusers.models.modeling_utils")
    level = diffusers_log.level
    diffusers_log.setLevel(logging.ERROR)  # its "experimental feature" warning on every load
    try:
        transformer.set_attention_backend(name)
    finally:
        diffusers_log.setLevel(level)
