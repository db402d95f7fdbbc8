"""Build tiny, randomly initialised checkpoints in the real Hugging Face layout, for offline tests and demos.

`python -m inverse_dvs.testing.tiny [--out checkpoints]` (or the short `python -m inverse_dvs.tiny`) writes
- `tiny-cogvideox-i2v/`: a `CogVideoXImageToVideoPipeline` of the real classes (rotary + learned positional
  embeddings, 8× spatial / 4× temporal VAE, T5 encoder + tokenizer, CogVideoXDDIMScheduler with the 5B-I2V
  settings) sized for 96×144×49 videos;
- `tiny-cogvideox15-i2v/`: the same pipeline class with CogVideoX1.5-I2V's architecture (rotary embeddings only,
  `patch_size_t` 2, an `ofs` embedding, `invert_scale_latents`), sizes 128 × up to 224 and 1 + 16k frames (33);
- `tiny-depth-anything/`: a `DepthAnythingForDepthEstimation` with a tiny DINOv2 backbone and its processor;
- `tiny-smolvlm/`: an `Idefics3ForConditionalGeneration` (SmolVLM's architecture) with a byte-level tokenizer, chat
  template and image processor made here, for the caption stage;
- `tiny-clip/`: a `CLIPModel` with a byte-level tokenizer and image processor made here, for the evaluation stage;
- `tiny-lora/`: a LoRA for the tiny transformer (`tiny_lora.safetensors`, attention projections, random non-zero
  weights) in the layout `load_lora_weights` reads, standing in for Go-with-the-Flow's.
Outputs of these models are noise; they exist to exercise the real `from_pretrained` code paths.
"""

from __future__ import annotations

import argparse
import logging
from functools import partial
from pathlib import Path

# The real CogVideoX-5B-I2V scheduler settings (snr_shift_scale 1.0 is the 5B value; the class default 3.0 is 2B's).
SCHEDULER_5B_I2V = dict(
    beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
    prediction_type="v_prediction", rescale_betas_zero_snr=True, snr_shift_scale=1.0, timestep_spacing="trailing",
    set_alpha_to_one=True, clip_sample=False, steps_offset=0,
)

TINY_HEIGHT, TINY_WIDTH, TINY_FRAMES = 96, 144, 49
TINY_VERSION = "2"  # bump when the tiny architectures change, so existing builds are rebuilt
_TINY_TEXT_LEN = 16


def _tiny_tokenizer():
    from transformers import T5Tokenizer

    # A Unigram vocabulary made here (no download): specials, then characters and a few word pieces.
    pieces = ["<pad>", "</s>", "<unk>", "▁"] + list("abcdefghijklmnopqrstuvwxyz0123456789.,")
    pieces += ["▁a", "▁the", "▁of", "▁and", "▁in", "▁dog", "▁cat", "▁man", "▁camera"]
    vocab = [(p, 0.0 if i < 3 else -float(i)) for i, p in enumerate(pieces)]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=_TINY_TEXT_LEN)


_LATENT_CHANNELS = 4
TINY_LORA_FILE = "tiny_lora.safetensors"


# CogVideoX1.5's architecture at toy size: rotary embeddings only, temporal patch 2, an ofs embedding, the image
# condition divided by the VAE scale. Its positional table is 400 px (50 latent cells) a side, 1/6 of the real
# 2400 px, so its sizes are the real rule scaled (core.backbone): shorter side 128, longer side up to 224
# (real: 768 and 1360); 1 + 16k frames, 33 by default (real: 81).
TINY15_TABLE, TINY15_FRAMES = 50, 33


def _tiny_transformer(**family):
    """The tiny transformer; `family`: the keys that make it another family's (default: CogVideoX-5B-I2V's)."""
    from diffusers import CogVideoXTransformer3DModel

    arch = dict(sample_width=TINY_WIDTH // 8, sample_height=TINY_HEIGHT // 8, sample_frames=TINY_FRAMES,
                use_rotary_positional_embeddings=True, use_learned_positional_embeddings=True) | family
    return CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=32, in_channels=2 * _LATENT_CHANNELS,
        out_channels=_LATENT_CHANNELS, time_embed_dim=32, text_embed_dim=32, num_layers=2, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=_TINY_TEXT_LEN, **arch)


def build_tiny_cogvideox(out: Path, seed: int = 0) -> Path:
    """The tiny CogVideoX-5B-I2V (learned positional embeddings: 96×144×49 only)."""
    return _build_tiny_pipeline(out, seed, _tiny_transformer, {})


def build_tiny_cogvideox15(out: Path, seed: int = 0) -> Path:
    """The tiny CogVideoX1.5-5B-I2V (rotary only, patch_size_t 2, ofs embedding, invert_scale_latents)."""
    transformer = partial(_tiny_transformer, sample_width=TINY15_TABLE, sample_height=TINY15_TABLE,
                          sample_frames=TINY15_FRAMES, use_learned_positional_embeddings=False, patch_size_t=2,
                          ofs_embed_dim=32)
    return _build_tiny_pipeline(out, seed, transformer, {"invert_scale_latents": True})


def _build_tiny_pipeline(out: Path, seed: int, transformer, vae_family: dict) -> Path:
    import torch
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXImageToVideoPipeline
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    latent_channels = _LATENT_CHANNELS
    transformer = transformer()
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, block_out_channels=(4, 4, 4, 4), latent_channels=latent_channels,
        layers_per_block=1, norm_num_groups=4, temporal_compression_ratio=4, sample_height=TINY_HEIGHT,
        sample_width=TINY_WIDTH, scaling_factor=0.7, **vae_family,
    )
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=64, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4, relative_attention_num_buckets=8,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    ))
    pipe = CogVideoXImageToVideoPipeline(
        tokenizer=_tiny_tokenizer(), text_encoder=text_encoder, vae=vae, transformer=transformer,
        scheduler=CogVideoXDDIMScheduler(**SCHEDULER_5B_I2V),
    )
    pipe.save_pretrained(out, safe_serialization=True)
    return out


# What differs between the real CogVideoX-5B-I2V and CogVideoX1.5-5B-I2V (their transformer and VAE configs); the
# rest of the architecture is shared.
REAL_FAMILIES = {
    "5b": ({"sample_width": 90, "sample_height": 60, "sample_frames": 49, "use_learned_positional_embeddings": True},
           {"invert_scale_latents": True}),  # timing only: the condition's scale does not change the cost
    "1.5": ({"sample_width": 300, "sample_height": 300, "sample_frames": 81, "use_learned_positional_embeddings": False,
             "patch_size_t": 2, "ofs_embed_dim": 512}, {"invert_scale_latents": True}),
}


def cogvideox_5b_i2v_pipeline(dtype, device="cpu", text_encoder: bool = True, family: str = "5b"):
    """CogVideoX-5B-I2V's real architecture (transformer 42 × 48 heads × 64, VAE, T5-XXL encoder) with random weights,
    for timing and memory: speed does not depend on weight values; `family="1.5"`: CogVideoX1.5-5B-I2V's
    (`REAL_FAMILIES`). Built without initialisation (empty tensors filled with N(0, 0.02)), so it takes seconds. The
    tokenizer is the tiny one with the real length (226), since the real T5 vocabulary cannot be made offline.
    `text_encoder=False` uses a 1-layer T5 of the real width."""
    import torch
    from accelerate import init_empty_weights
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    arch, vae_arch = REAL_FAMILIES[family]
    with init_empty_weights():
        transformer = CogVideoXTransformer3DModel(
            num_attention_heads=48, attention_head_dim=64, in_channels=32, out_channels=16, time_embed_dim=512,
            text_embed_dim=4096, num_layers=42, patch_size=2, temporal_compression_ratio=4, max_text_seq_length=226,
            use_rotary_positional_embeddings=True, **arch)
        vae = AutoencoderKLCogVideoX(scaling_factor=0.7, latent_channels=16, **vae_arch)
        t5 = T5EncoderModel(T5Config(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240,
                                     num_layers=24 if text_encoder else 1, num_heads=64,
                                     feed_forward_proj="gated-gelu"))
    modules = []
    for m in (transformer, vae, t5):
        buffers = {n: b.clone() for n, b in m.named_buffers()}  # real tables (e.g. positions): keep them
        m = m.to(dtype).to_empty(device=device)  # cast while still empty: no full-precision copy is ever allocated
        with torch.no_grad():
            for name, p in m.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
                elif "norm" in name and p.ndim == 1:
                    p.fill_(1.0)
                else:
                    p.normal_(0.0, 0.02)
            for name, b in m.named_buffers():
                b.copy_(buffers[name])
        modules.append(m.eval())
    transformer, vae, t5 = modules
    tokenizer = _tiny_tokenizer()
    tokenizer.model_max_length = 226
    return CogVideoXImageToVideoPipeline(tokenizer=tokenizer, text_encoder=t5, vae=vae, transformer=transformer,
                                         scheduler=CogVideoXDDIMScheduler(**SCHEDULER_5B_I2V))


def build_tiny_depth_anything(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, DPTImageProcessor
    from transformers.models.dinov2 import Dinov2Config

    torch.manual_seed(seed)
    backbone = Dinov2Config(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, patch_size=14,
        image_size=98, out_features=["stage1", "stage2", "stage3", "stage4"],
        out_indices=[1, 2, 3, 4], reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=32, patch_size=14, neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16, head_hidden_size=8, depth_estimation_type="relative",
    )
    model = DepthAnythingForDepthEstimation(config).eval()
    processor = DPTImageProcessor(
        do_resize=True, size={"height": 98, "width": 98}, keep_aspect_ratio=True, ensure_multiple_of=14,
        resample=3, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], do_pad=False,
    )
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return out


def build_tiny_lora(out: Path, seed: int = 0) -> Path:
    """A LoRA (rank 4, attention q/k/v/out) for the tiny transformer, saved as the pipeline's LoRA loader expects."""
    import torch
    from diffusers import CogVideoXImageToVideoPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    transformer = _tiny_transformer()
    # init_lora_weights=False: random A and B, so the adapter really changes the model (B = 0 would be a no-op)
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                       target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    out.mkdir(parents=True, exist_ok=True)
    CogVideoXImageToVideoPipeline.save_lora_weights(out, transformer_lora_layers=get_peft_model_state_dict(transformer),
                                                    weight_name=TINY_LORA_FILE, safe_serialization=True)
    return out


def build_tiny_smolvlm(out: Path, seed: int = 0) -> Path:
    """SmolVLM's architecture (Idefics3: SigLIP-style vision encoder, pixel shuffle, Llama decoder) at toy size, with
    a byte-level BPE tokenizer (its image tokens as special tokens) and a chat template written here."""
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3Processor,
        PreTrainedTokenizerFast,
    )
    from transformers.models.idefics3 import Idefics3ImageProcessorPil

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_byte_level_tokenizer(["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<image>",
                                                "<fake_token_around_image>", "<global-img>"]),
        bos_token="<|im_start|>", eos_token="<end_of_utterance>", pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<image>", "fake_image_token": "<fake_token_around_image>",
                              "global_image_token": "<global-img>", "end_of_utterance_token": "<end_of_utterance>"})
    torch.manual_seed(seed)
    ids = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
               eos_token_id=tokenizer.eos_token_id)
    config = Idefics3Config(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=56, patch_size=14),
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048, **ids),
        scale_factor=2, image_token_id=tokenizer.convert_tokens_to_ids("<image>"), **ids)
    model = Idefics3ForConditionalGeneration(config).eval()
    template = (
        "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}: "
        "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
        "{% elif part['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
        "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}")
    images = Idefics3ImageProcessorPil(size={"longest_edge": 112}, max_image_size={"longest_edge": 56},
                                       do_image_splitting=False)
    processor = Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=4, chat_template=template)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return out


def _byte_level_tokenizer(specials: list[str]):
    """A tokenizers BPE over the 256 byte symbols (no merges) with the given special tokens: any text tokenizes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))},
                               merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    return tok


def build_tiny_clip(out: Path, seed: int = 0) -> Path:
    """CLIP's architecture (ViT image tower, text transformer, projections) at toy size, 32 px images."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor, PreTrainedTokenizerFast
    from transformers.models.clip import CLIPImageProcessorPil

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=_byte_level_tokenizer(["<|startoftext|>", "<|endoftext|>"]),
                                        bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                                        pad_token="<|endoftext|>", model_max_length=32)
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16)
    CLIPModel(config).eval().save_pretrained(out, safe_serialization=True)
    images = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(out)
    return out


def build_all(root: Path, force: bool = False) -> list[Path]:
    """Build the tiny checkpoints under `root`; skip a folder that already has a complete build."""
    done = []
    for name, fn in (("tiny-cogvideox-i2v", build_tiny_cogvideox), ("tiny-cogvideox15-i2v", build_tiny_cogvideox15),
                     ("tiny-depth-anything", build_tiny_depth_anything),
                     ("tiny-lora", build_tiny_lora), ("tiny-smolvlm", build_tiny_smolvlm),
                     ("tiny-clip", build_tiny_clip)):
        target = root / name
        marker = target / ".complete"
        if marker.exists() and marker.read_text().strip() == TINY_VERSION and not force:
            done.append(target)
            continue
        tmp = root / f".{name}.building"
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp)
        fn(tmp)
        (tmp / ".complete").write_text(TINY_VERSION + "\n")
        if target.exists():
            import shutil

            shutil.rmtree(target)
        tmp.rename(target)
        done.append(target)
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m inverse_dvs.testing.tiny", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="checkpoints", help="folder that receives tiny-cogvideox-i2v/, "
                                                          "tiny-cogvideox15-i2v/, tiny-depth-anything/, tiny-lora/, "
                                                          "tiny-smolvlm/, tiny-clip/")
    p.add_argument("--force", action="store_true", help="rebuild even when a complete build exists")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    for path in build_all(Path(args.out), force=args.force):
        logging.getLogger("inverse_dvs").info("tiny checkpoint ready: %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
