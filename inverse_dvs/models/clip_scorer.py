"""CLIP image and text embeddings (transformers' CLIPModel) for CLIP-T/F/V, and LPIPS (AlexNet) through torchmetrics
when torchvision and the AlexNet weights are there."""

from __future__ import annotations

import numpy as np

from ..infra.device import resolve_device
from ..infra.hub import alexnet_weights, resolve_model
from .lazy import Lazy


def matching_torchvision(torch_version: str) -> str:
    """The pip requirement of the torchvision release built for a torch version (torch 2.x ↔ torchvision 0.(x+15))."""
    major, minor = (int(x) for x in torch_version.split("+")[0].split(".")[:2])
    return f"torchvision=={major - 2}.{minor + 15}.*" if major == 2 else "torchvision"


def lpips_available(cfg) -> str | None:
    """None when LPIPS can run here, else why not, with the fix (one line; cfg: config.Config)."""
    if not cfg.eval.lpips:
        return "eval.lpips is off"
    try:
        import torchvision  # noqa: F401
    except ImportError:
        import torch

        cpu = "+cpu" in torch.__version__ or not torch.cuda.is_available()
        index = " --index-url https://download.pytorch.org/whl/cpu" if cpu else ""
        return (f"torchvision is not installed (torchmetrics' LPIPS needs it). Install the release that matches torch "
                f"{torch.__version__}: `.venv/bin/python -m pip install '{matching_torchvision(torch.__version__)}'"
                f"{index}`" + (" (the CPU build: PyPI's wheels are CUDA builds, which break the CPU torch)" if cpu
                               else " (bash setup_env.sh does this on machines with an NVIDIA GPU)"))
    if not alexnet_weights().is_file():
        return f"the AlexNet weights are not on disk ({alexnet_weights()}); `python -m inverse_dvs.weights download`"
    return None


class ClipScorer:
    """CLIP (and LPIPS when it can run here: `lpips_available`); loads at construction — wrap it in `Lazy`
    (`clip_scorer`) to load on first use."""

    def __init__(self, cfg, state):
        import torch
        from transformers import AutoProcessor, CLIPModel

        self.torch = torch
        self.device = resolve_device(cfg.run.device, state)
        path = resolve_model(cfg.eval.clip_model)
        self._processor = AutoProcessor.from_pretrained(path)
        self._clip = CLIPModel.from_pretrained(path).to(self.device).eval()
        self._lpips = None
        if lpips_available(cfg) is None:
            from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

            self._lpips = LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True).to(self.device)

    def embed_frames(self, frames: np.ndarray):
        """frames [T, H, W, 3] uint8 → CLIP image embeddings float32 [T, D] (on the CPU)."""
        out = []
        with self.torch.inference_mode():
            for i in range(0, len(frames), 16):
                x = self._processor(images=list(frames[i:i + 16]), return_tensors="pt").to(self.device)
                out.append(self._clip.get_image_features(**x).pooler_output.float().cpu())
        return self.torch.cat(out)

    def embed_text(self, text: str):
        with self.torch.inference_mode():
            t = self._processor(text=[text], return_tensors="pt", padding=True, truncation=True).to(self.device)
            return self._clip.get_text_features(**t).pooler_output.float().cpu()[0]

    def lpips(self, a: np.ndarray, b: np.ndarray) -> float | None:
        """Mean LPIPS (AlexNet) over frames of a, b uint8 [T, H, W, 3], or None where it cannot run."""
        if self._lpips is None:
            return None
        vals = []
        with self.torch.inference_mode():
            for t in range(len(a)):
                x = self.torch.from_numpy(a[t]).permute(2, 0, 1)[None].float().div(255).to(self.device)
                y = self.torch.from_numpy(b[t]).permute(2, 0, 1)[None].float().div(255).to(self.device)
                vals.append(float(self._lpips(x, y)))
                self._lpips.reset()
        return float(np.mean(vals))


def clip_scorer(cfg, state) -> Lazy[ClipScorer]:
    """The configured CLIP (and LPIPS) on this process's device, loaded on first use (cfg: config.Config)."""
    return Lazy(lambda: ClipScorer(cfg, state), f"CLIP model {cfg.eval.clip_model}")
