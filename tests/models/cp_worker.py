"""One process of the context-parallel transformer test (test_context_parallel.py), started by torchrun: the tiny
model's transformer output for one call, unsplit and split over the launch (ulysses × ring), and the largest
difference, written by the leader to OUT (json).

Usage: torchrun --nproc_per_node N tests/models/cp_worker.py CHECKPOINT ULYSSES RING OUT [LATENT_H LATENT_W]

Ring attention merges partial attentions by their log-sum-exp, which diffusers' native backend does not return on a
CPU (its GPU kernels do, in bf16/fp16 only). For ring here the native backend's op is replaced by a float32 math op
that returns it: the split, the ring passes and the merge are diffusers' and ours, only the kernel is the test's.
"""

import json
import logging
import sys

import torch
import torch.distributed as dist


def _math_attention_with_lse(ctx, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                             enable_gqa=False, return_lse=False, _save_ctx=True, _parallel_config=None):
    q, k, v = (x.transpose(1, 2) for x in (query, key, value))  # [B, H, S, D]
    scores = (q @ k.transpose(-1, -2)) * (scale if scale is not None else q.shape[-1] ** -0.5)
    lse = torch.logsumexp(scores, dim=-1)  # [B, H, S]
    out = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2)
    return (out, lse.transpose(1, 2)) if return_lse else out


def main() -> None:
    from diffusers import CogVideoXImageToVideoPipeline
    from diffusers.models import attention_dispatch

    from inverse_dvs.models import context_parallel
    from inverse_dvs.models.attention import use_attention_backend
    from inverse_dvs.models.layout import ofs_embedding, rotary_embeddings

    ckpt, ulysses, ring, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    dist.init_process_group("gloo")
    if ring > 1:
        attention_dispatch._native_attention_forward_op = _math_attention_with_lse
        context_parallel.RING_BACKENDS = ("native",)
    pipe = CogVideoXImageToVideoPipeline.from_pretrained(ckpt)
    pipe.set_progress_bar_config(disable=True)
    t = pipe.transformer.eval()
    c = t.config
    g = torch.Generator().manual_seed(1)
    h, w = (int(sys.argv[5]), int(sys.argv[6])) if len(sys.argv) > 6 else (c.sample_height, c.sample_width)
    frames = 13 if c.patch_size_t is None else 14
    call = dict(hidden_states=torch.randn(2, frames, c.in_channels, h, w, generator=g),
                encoder_hidden_states=torch.randn(2, c.max_text_seq_length, c.text_embed_dim, generator=g),
                timestep=torch.tensor([500, 700]), image_rotary_emb=rotary_embeddings(pipe, frames, h, w, "cpu"),
                ofs=ofs_embedding(pipe, 2, "cpu"), return_dict=False)
    use_attention_backend(t, "native")
    with torch.no_grad():
        whole = t(**call)[0]
    group = context_parallel.join(ulysses, ring)
    context_parallel.enable(t, group, "native")
    seen = []  # the joint tokens the first block's attention gets in this process
    t.transformer_blocks[0].attn1.register_forward_pre_hook(
        lambda m, a, k: seen.append(k["hidden_states"].shape[1] + k["encoder_hidden_states"].shape[1]),
        with_kwargs=True)
    if group.leader:
        with torch.no_grad():
            split = t(**call)[0]
        group.end(0)
        with open(out, "w") as fh:
            json.dump({"max_abs": (split - whole).abs().max().item(), "scale": whole.abs().max().item(),
                       "shape": list(split.shape), "processes": dist.get_world_size(), "part": seen,
                       "tokens": call["encoder_hidden_states"].shape[1] + (frames // (c.patch_size_t or 1))
                       * (h // c.patch_size) * (w // c.patch_size)}, fh)
    else:
        assert context_parallel.serve(group, lambda: t, logging.getLogger("cp_worker")) == 0
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
