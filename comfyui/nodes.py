"""ComfyUI nodes over inverse-dvs's public Python API (`InverseDVSPipeline`): load the model, estimate depth, make a
camera path, warp (see the render before any sampling), re-render. Frames go in and out as ComfyUI IMAGE tensors
[T, H, W, 3] float in [0, 1]; the core LoadVideo → GetVideoComponents and CreateVideo → SaveVideo nodes do the
file I/O. A bad input raises an error that names the node's widget or input and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from comfy_api.latest import io

CATEGORY = "inverse-dvs"
Pipe = io.Custom("INVERSE_DVS_PIPELINE")
Depth = io.Custom("INVERSE_DVS_DEPTH")
CameraPath = io.Custom("INVERSE_DVS_CAMERA_PATH")
Warped = io.Custom("INVERSE_DVS_WARP")
DEFAULT_MODEL = "THUDM/CogVideoX-5b-I2V"
DEFAULT_DEPTH = "depth-anything/Depth-Anything-V2-Large-hf"


class InputError(ValueError):
    """A bad input of a node: the message names the node, the widget or input, and the fix."""

    def __init__(self, node: str, field: str, message: str):
        super().__init__(f"{node} · {field}: {message}")


def _frames(images: torch.Tensor, node: str, field: str = "images") -> np.ndarray:
    """IMAGE [T, H, W, C] float in [0, 1] → uint8 [T, H, W, 3]."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[-1] not in (3, 4):
        shape = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise InputError(node, field, f"expected IMAGE frames [T, H, W, 3], got {shape}; connect the IMAGE output of "
                                      "Get Video Components (after Load Video).")
    return (images[..., :3].clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def _image(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).float().div_(255.0)


def _model_folder(name: str) -> str:
    """A model named as ComfyUI users keep them (a folder in ComfyUI's `models/diffusers`), else as given: a Hugging
    Face id (found in inverse-dvs's `checkpoints/` or the Hugging Face cache) or a path."""
    try:
        import folder_paths

        for root in folder_paths.get_folder_paths("diffusers"):
            if (Path(root) / name).is_dir():
                return str(Path(root) / name)
    except Exception:  # outside ComfyUI, or no such folder kind: take the name as given
        pass
    return os.path.expanduser(name)


def _lora(name: str, file: str) -> tuple[str, str | None]:
    """(folder or id, file) of a LoRA: a file in ComfyUI's `models/loras` (e.g. `go_with_the_flow.safetensors`),
    else a folder or Hugging Face id with `file` in it."""
    try:
        import folder_paths

        found = folder_paths.get_full_path("loras", name)
    except Exception:  # outside ComfyUI: take the name as given
        found = None
    if found:
        return str(Path(found).parent), Path(found).name
    return _model_folder(name), file or None


def _checked(node: str, field: str, call):
    """Run `call`; an inverse-dvs UserError (its message names the problem and the fix) becomes a node error."""
    from inverse_dvs import UserError

    try:
        return call()
    except UserError as exc:
        raise InputError(node, field, str(exc)) from None


class LoadModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InverseDVSLoadModel", display_name="Inverse DVS · Load model", category=CATEGORY,
            description="The video model (CogVideoX-5B-I2V or 1.5) and the method. Models load on first use and stay "
                        "loaded while this node's settings are unchanged.",
            inputs=[
                io.String.Input("model", default=DEFAULT_MODEL,
                                tooltip="a folder in models/diffusers, a Hugging Face id (downloaded beforehand with "
                                        "`python -m inverse_dvs.weights download`) or a path"),
                io.Combo.Input("method", options=["reference", "paper"], default="reference",
                               tooltip="reference: the official code's settings; paper: the paper's text"),
                io.String.Input("lora", default="method default",
                                tooltip="'method default' (reference: Go-with-the-Flow's LoRA), 'none', a file in "
                                        "models/loras, or a folder / Hugging Face id (with lora_file)"),
                io.String.Input("lora_file", default="", tooltip="the LoRA's file in that folder (with a folder)"),
                io.String.Input("depth_model", default=DEFAULT_DEPTH, tooltip="Depth Anything V2 (id or folder)"),
                io.Combo.Input("frames", options=["model", "all"], default="model",
                               tooltip="model: the model's own clip (49 frames for the 5B); all: every frame of the "
                                       "video, in overlapping windows"),
                io.Combo.Input("offload", options=["none", "model", "sequential"], default="none",
                               tooltip="none: fastest (about 44 GB at 480×720×49); model, sequential: less memory"),
                io.Combo.Input("vae_tiling", options=["auto", "on", "off"], default="auto"),
                io.Combo.Input("device", options=["auto", "cuda", "cpu"], default="auto"),
                io.Combo.Input("dtype", options=["bf16", "fp16", "fp32"], default="bf16"),
            ],
            outputs=[Pipe.Output(display_name="pipeline")],
        )

    @classmethod
    def execute(cls, model, method, lora, lora_file, depth_model, frames, offload, vae_tiling, device, dtype
                ) -> io.NodeOutput:
        from inverse_dvs import InverseDVSPipeline

        node = "Inverse DVS · Load model"
        settings = {"offload": offload, "vae_tiling": vae_tiling}
        if lora.strip().lower() == "none":
            settings |= {"lora": None, "lora_weight_name": None}
        elif lora.strip() and lora.strip() != "method default":
            folder, file = _lora(lora.strip(), lora_file.strip())
            settings |= {"lora": folder, "lora_weight_name": file}
        pipe = _checked(node, "model", lambda: InverseDVSPipeline.from_pretrained(
            _model_folder(model.strip()), method, device=device, dtype=dtype, model=settings,
            depth={"model": _model_folder(depth_model.strip())}, caption={"source": "off"},
            camera={"num_frames": "auto" if frames == "model" else "all"}))
        pipe.set_progress_bar_config(disable=True)
        return io.NodeOutput(pipe)


class EstimateDepth(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InverseDVSDepth", display_name="Inverse DVS · Depth", category=CATEGORY,
            description="Per-frame depth of the clip (Depth Anything V2), for the frames the model takes "
                        "(the first 49 of the 5B, at its size).",
            inputs=[Pipe.Input("pipeline"), io.Image.Input("images")],
            outputs=[Depth.Output(display_name="depth"), io.Image.Output(display_name="preview")],
        )

    @classmethod
    def execute(cls, pipeline, images) -> io.NodeOutput:
        node = "Inverse DVS · Depth"
        clip = _checked(node, "images", lambda: pipeline.read_video(_frames(images, node)))
        depth = _checked(node, "images", lambda: pipeline.estimate_depth(clip.frames))
        near, far = np.percentile(depth, [2, 98])
        preview = 1.0 - np.clip((depth - near) / max(far - near, 1e-6), 0, 1)  # near = bright
        return io.NodeOutput(torch.from_numpy(depth), torch.from_numpy(preview).unsqueeze(-1).expand(-1, -1, -1, 3))


class MakeCameraPath(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        from inverse_dvs.core.camera import PRESETS

        return io.Schema(
            node_id="InverseDVSCameraPath", display_name="Inverse DVS · Camera path", category=CATEGORY,
            description="A camera path: a preset with an amount, a trajectory or pose file, or keyframes typed in.",
            inputs=[
                io.Combo.Input("kind", options=["preset", "file", "keyframes"], default="preset"),
                io.Combo.Input("preset", options=list(PRESETS), default="orbit_left",
                               tooltip="with kind 'preset' (several: type them in 'keyframes' as a+b)"),
                io.Float.Input("amount", default=20.0, min=-360.0, max=360.0, step=0.5,
                               tooltip="degrees; for dolly, percent of the scene radius"),
                io.String.Input("file", default="",
                                tooltip="with kind 'file': a 3-line θ/φ/r file or a JSON pose file"),
                io.String.Input("keyframes", default="theta: 0, 0\nphi: 0, -20\nr: 0, 0", multiline=True,
                                tooltip="with kind 'keyframes': three lines theta / phi (degrees) and r (fraction of "
                                        "the scene radius), values spread over the clip"),
            ],
            outputs=[CameraPath.Output(display_name="camera_path")],
        )

    @classmethod
    def execute(cls, kind, preset, amount, file, keyframes) -> io.NodeOutput:
        from inverse_dvs.pipeline import as_trajectory

        node = "Inverse DVS · Camera path"
        if kind == "preset":
            value, field = {"preset": preset, "amount": amount}, "preset"
        elif kind == "file":
            if not file.strip():
                raise InputError(node, "file", "empty; give the path of a trajectory (.txt) or pose (.json) file.")
            value, field = os.path.expanduser(file.strip()), "file"
        else:
            value, field = _keyframes(keyframes, node), "keyframes"
        return io.NodeOutput(_checked(node, field, lambda: as_trajectory(value)))


def _keyframes(text: str, node: str) -> dict[str, list[float]]:
    out = {}
    for line in text.strip().splitlines():
        key, _, values = line.partition(":")
        try:
            out[key.strip()] = [float(v) for v in values.replace(",", " ").split()]
        except ValueError:
            raise InputError(node, "keyframes", f"line {line!r} is not 'name: number, number, …'.") from None
    if sorted(out) != ["phi", "r", "theta"]:
        raise InputError(node, "keyframes", f"needs exactly the lines theta, phi and r, got {sorted(out)}; e.g. "
                                            "'theta: 0, 0' / 'phi: 0, -20' / 'r: 0, 0'.")
    return out


class Warp(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InverseDVSWarp", display_name="Inverse DVS · Warp", category=CATEGORY,
            description="The clip forward-warped into the new cameras: the render and what of it is visible (white), "
                        "to check before any sampling.",
            inputs=[Pipe.Input("pipeline"), io.Image.Input("images"), Depth.Input("depth"),
                    CameraPath.Input("camera_path")],
            outputs=[io.Image.Output(display_name="render"), io.Mask.Output(display_name="visibility"),
                     Warped.Output(display_name="warp")],
        )

    @classmethod
    def execute(cls, pipeline, images, depth, camera_path) -> io.NodeOutput:
        node = "Inverse DVS · Warp"
        clip = _checked(node, "images", lambda: pipeline.read_video(_frames(images, node)))
        depth = depth.numpy() if isinstance(depth, torch.Tensor) else np.asarray(depth)
        if depth.shape != clip.frames.shape[:3]:
            raise InputError(node, "depth", f"shape {list(depth.shape)} is not the clip's {list(clip.frames.shape[:3])}"
                                            "; connect the depth of these same images (Inverse DVS · Depth).")
        out = _checked(node, "camera_path", lambda: pipeline.warp(clip.frames, depth, camera_path))
        warp = {"render": out.render, "visibility": out.visibility, "depth": depth}
        return io.NodeOutput(_image(out.render), torch.from_numpy(out.visibility), warp)


class ReRender(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InverseDVSReRender", display_name="Inverse DVS · Re-render", category=CATEGORY,
            description="Invert the render and generate the new view (K-RNR, SLM, region-aware guidance). A clip "
                        "longer than the model's runs in overlapping windows.",
            inputs=[
                Pipe.Input("pipeline"), Warped.Input("warp"),
                io.String.Input("prompt", default="", multiline=True, tooltip="what the video shows"),
                io.Int.Input("steps", default=0, min=0, max=1000, tooltip="sampling steps; 0: the method's"),
                io.Float.Input("strength", default=0.0, min=0.0, max=0.999, step=0.01,
                               tooltip="fraction of the steps run from t_start; 0: the method's"),
                io.Float.Input("guidance_scale", default=0.0, min=0.0, max=30.0, step=0.5, tooltip="0: the method's"),
                io.Float.Input("k_order", default=0.0, min=0.0, max=100.0, step=0.5,
                               tooltip="K-RNR order; 0: the method's"),
                io.Int.Input("seed", default=42, min=0, max=2**63 - 1, control_after_generate=True),
            ],
            outputs=[io.Image.Output(display_name="images")],
        )

    @classmethod
    def execute(cls, pipeline, warp, prompt, steps, strength, guidance_scale, k_order, seed) -> io.NodeOutput:
        import comfy.utils

        from inverse_dvs.pipeline import clip_windows

        node = "Inverse DVS · Re-render"
        point = {k: v for k, v in (("steps", steps), ("strength", strength), ("guidance_scale", guidance_scale),
                                   ("k_order", k_order)) if v}
        plan = _checked(node, "steps", lambda: pipeline.plan(**point, seed=seed))
        windows = clip_windows(pipeline.config, len(warp["render"]), node, pipeline.log)
        bar = comfy.utils.ProgressBar(1 + len(windows))  # the inversion, then each window

        def window(win, compute):
            result = compute()
            bar.update(1)
            return result

        inversion = _checked(node, "warp", lambda: pipeline.invert(warp["render"][:windows[0].end], prompt,
                                                                   plan.inversion_end))
        bar.update_absolute(1)
        out = _checked(node, "warp", lambda: pipeline.generate(warp["render"], warp["visibility"], warp["depth"],
                                                               prompt, plan=plan, inversion=inversion,
                                                               on_window=window))
        bar.update_absolute(1 + len(windows))
        return io.NodeOutput(_image(out.frames))


NODES = [LoadModel, EstimateDepth, MakeCameraPath, Warp, ReRender]
