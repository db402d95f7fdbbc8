"""Video reading/writing and the one resize policy shared by every stage.

Resize policy (`camera.resize`):
- `crop` (default): scale so the frame covers H×W, keeping its aspect, then cut the centre.
- `pad`: scale so the frame fits inside H×W, then pad the borders with black (letterbox).
- `stretch`: scale each axis to H×W independently (the official code: a 16:9 video becomes 3:2 at 480×720, a
  squeeze of 0.84 in width; un-squeeze an output with `ffmpeg -i output.mp4 -vf scale=853:480,setsar=1 wide.mp4`).
Frames are decoded directly at the scaled size, so a 4K video never sits in memory at full resolution.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .artifacts import atomic_path
from .errors import UnresolvedAuto, UserError


@dataclass(frozen=True)
class FrameSelection:
    num_frames: int | None  # None: every frame from `start` on, at `stride`
    start: int = 0
    stride: int = 1
    pad_short: bool = False
    min_frames: int = 1  # num_frames None: fewer frames are an error, or padded to this many (pad_short)

    @classmethod
    def of(cls, cfg) -> FrameSelection:
        """The frames `camera.num_frames/start/stride/pad_short` of a config (config.Config) select; `num_frames:
        all` takes every frame, and at least one `camera.window` (UserError while either is an unresolved `auto`)."""
        camera = cfg.camera
        for key in ("num_frames",) + (("window",) if camera.num_frames == "all" else ()):
            if getattr(camera, key) == "auto":
                raise UnresolvedAuto(f"camera.{key}", cfg.inversion.model, getattr(cfg, "resolved", True))
        n = None if camera.num_frames == "all" else camera.num_frames
        return cls(n, camera.start, camera.stride, camera.pad_short, camera.window if n is None else 1)

    def available(self, n_available: int) -> int:
        """Frames a video of `n_available` frames has from `start` on, at `stride`."""
        return max(0, -(-(n_available - self.start) // self.stride))

    def count(self, n_available: int) -> int:
        """Frames selected from a video of `n_available` frames (before any error for a short video)."""
        if self.num_frames is not None:
            return self.num_frames
        have = self.available(n_available)
        return max(have, self.min_frames) if self.pad_short else have


@dataclass(frozen=True)
class Clip:
    frames: np.ndarray  # [T, H, W, 3] uint8 RGB
    fps: float
    source_size: tuple[int, int]  # (height, width) of the file


def scaled_size(src_hw: tuple[int, int], dst_hw: tuple[int, int], policy: str) -> tuple[int, int]:
    """(height, width) the source is resized to before centre crop (`crop`) or padding (`pad`)."""
    (h0, w0), (h, w) = src_hw, dst_hw
    if policy == "stretch":
        return h, w
    s = max(h / h0, w / w0) if policy == "crop" else min(h / h0, w / w0)
    sh, sw = round(h0 * s), round(w0 * s)
    if policy == "crop":
        return max(sh, h), max(sw, w)
    return min(sh, h), min(sw, w)


def fit_frames(frames: np.ndarray, dst_hw: tuple[int, int], policy: str) -> np.ndarray:
    """Apply the resize policy to frames [T, h, w, C] (any dtype) already decoded at `scaled_size`."""
    h, w = dst_hw
    t, fh, fw = frames.shape[:3]
    if (fh, fw) == (h, w):
        return frames
    if policy == "crop":
        y0, x0 = (fh - h) // 2, (fw - w) // 2
        return frames[:, y0:y0 + h, x0:x0 + w]
    out = np.zeros((t, h, w, *frames.shape[3:]), dtype=frames.dtype)
    y0, x0 = (h - fh) // 2, (w - fw) // 2
    out[:, y0:y0 + fh, x0:x0 + fw] = frames
    return out


def resize_frames(frames: np.ndarray, dst_hw: tuple[int, int], policy: str, interpolation: int | None = None
                  ) -> np.ndarray:
    """Resize frames [T, h, w, C] or arrays [T, h, w] with the shared policy. `interpolation` is a cv2 flag
    (default INTER_AREA; depth uses INTER_NEAREST_EXACT so no depth is invented across edges)."""
    import cv2

    flag = cv2.INTER_AREA if interpolation is None else interpolation
    sh, sw = scaled_size(frames.shape[1:3], dst_hw, policy)
    if (sh, sw) != frames.shape[1:3]:
        out = np.stack([cv2.resize(f, (sw, sh), interpolation=flag) for f in frames])
        frames = out[..., None] if frames.ndim == 4 and out.ndim == 3 else out  # cv2 drops a single channel
    return fit_frames(frames, dst_hw, policy)


RESIZES = ("round", "reference")  # camera.render_resize
MASK_RESIZES = ("area", "reference")  # camera.mask_resize


def to_model_size(render: np.ndarray, visible: np.ndarray, hw: tuple[int, int], render_mode: str = "round",
                  mask_mode: str = "area") -> tuple[np.ndarray, np.ndarray]:
    """A render warped at another size → the model's size.

    render [T, h, w, 3]: uint8 for `render_mode: round` (bilinear on the 8-bit colours), float in [0, 1] for
    `reference` (the official code: float bilinear, align_corners=False, then ×255 truncated to 8 bits). visible bool
    [T, h, w]: `mask_mode: area` averages it over each output pixel's footprint with fractional coverage (fp32);
    `reference` is the official bf16 `F.interpolate(mode="area")`, an adaptive average over whole-pixel windows.
    Returns (render [T, H, W, 3] uint8, visibility float32 [T, H, W] in [0, 1]).
    """
    import cv2
    import torch
    import torch.nn.functional as F

    H, W = hw
    same = render.shape[1:3] == tuple(hw)
    if render_mode == "reference":
        x = torch.from_numpy(np.ascontiguousarray(render, dtype=np.float32)).permute(0, 3, 1, 2)
        if not same:
            x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)
        out = (x * 255.0).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # truncation, as the official uint8 cast
    elif render_mode == "round":
        out = render if same else np.stack([cv2.resize(f, (W, H), interpolation=cv2.INTER_LINEAR) for f in render])
    else:
        raise ValueError(f"unknown render resize {render_mode!r}; one of {RESIZES}")
    if same:
        return out, visible.astype(np.float32)
    if mask_mode == "reference":
        m = torch.from_numpy(np.ascontiguousarray(visible)).to(torch.bfloat16)[:, None]
        vis = F.interpolate(m, size=(H, W), mode="area")[:, 0].float().numpy()
    elif mask_mode == "area":
        vis = np.stack([cv2.resize(m.astype(np.float32), (W, H), interpolation=cv2.INTER_AREA) for m in visible])
    else:
        raise ValueError(f"unknown mask resize {mask_mode!r}; one of {MASK_RESIZES}")
    return out, np.clip(vis, 0.0, 1.0)


def frame_indices(n_available: int, sel: FrameSelection, path: str | Path) -> list[int]:
    if sel.num_frames is None and sel.available(n_available) < sel.min_frames and not sel.pad_short:
        raise UserError(
            f"video '{path}' has {n_available} frames, which with camera.start={sel.start} and "
            f"camera.stride={sel.stride} gives {sel.available(n_available)}, fewer than one window of "
            f"camera.window={sel.min_frames} (camera.num_frames: all). Use a longer video, lower camera.stride/start, "
            "or set camera.pad_short: true to repeat its last frame up to one window.")
    idx = [sel.start + sel.stride * i for i in range(sel.count(n_available))]
    if idx[-1] >= n_available:
        if not sel.pad_short:
            raise UserError(
                f"video '{path}' has {n_available} frames, but camera.num_frames={sel.num_frames} with "
                f"camera.start={sel.start} and camera.stride={sel.stride} needs frame {idx[-1]}. Use a longer "
                "video, lower camera.stride/start, or set camera.pad_short: true to repeat the last frame.")
        if sel.start >= n_available:
            raise UserError(f"video '{path}' has {n_available} frames; camera.start={sel.start} is past its end.")
        idx = [min(i, n_available - 1) for i in idx]
    return idx


def _container(path: Path) -> str | None:
    """The video container named by the file's first bytes, None when it is none we know."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[4:8] == b"ftyp":
        return "MP4/MOV"
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "Matroska/WebM"
    if head.startswith(b"RIFF") and head[8:11] == b"AVI":
        return "AVI"
    for magic, name in ((b"FLV", "FLV"), (b"\x00\x00\x01\xba", "MPEG-PS"), (b"OggS", "Ogg")):
        if head.startswith(magic):
            return name
    if head[:1] == b"G" and path.suffix.lower() in (".ts", ".mts", ".m2ts"):
        return "MPEG-TS"
    return None


def _unreadable(path: Path) -> UserError:
    """One line on why a file gives no frames: empty, not a video, or a corrupt/truncated video."""
    if path.stat().st_size == 0:
        return UserError(f"video '{path}' is an empty file (0 bytes); re-export or re-copy it, or remove it from the "
                         "config.")
    kind = _container(path)
    if kind is None:
        return UserError(f"'{path}' is not a video file (no known video container); point the config's 'videos' entry "
                         "at an .mp4/.mov/.mkv/.webm/.avi file.")
    return UserError(f"video '{path}' ({kind}) is corrupt or truncated: no frame can be decoded. Re-export it, or "
                     "re-encode what is readable with `ffmpeg -err_detect ignore_err -i in.mp4 -c:v libx264 out.mp4`.")


def upscaled(src_hw: tuple[int, int], dst_hw: tuple[int, int], policy: str) -> str | None:
    """The warning for a source smaller than the model's size (it is scaled up: more pixels, no more detail), or
    None. Sizes are height × width, as everywhere in messages."""
    (h0, w0), (sh, sw) = src_hw, scaled_size(src_hw, dst_hw, policy)
    if sh * sw <= 1.02 * h0 * w0:
        return None
    return (f"the video is {h0}×{w0} (height × width) and is scaled up to {sh}×{sw} for the model's {dst_hw[0]}×"
            f"{dst_hw[1]}, {sh * sw / (h0 * w0):.1f}× its pixels: the model computes at that size but sees no detail "
            "the source lacks. A source at least that large avoids it; with CogVideoX1.5 and `auto` sizes, "
            "camera.height and camera.width can set a smaller allowed size.")


def _notes(path: Path, src_hw: tuple[int, int], dst_hw: tuple[int, int], policy: str, sel: FrameSelection, n: int,
           log) -> None:
    """Say how the input is reinterpreted (one INFO/WARNING line each): alpha, audio, aspect, repeated frames."""
    import imageio_ffmpeg

    try:
        gen = imageio_ffmpeg.read_frames(str(path))
        meta = next(gen)
        gen.close()
    except Exception:  # the probe is informational only
        meta = {}
    pix = str(meta.get("pix_fmt", ""))
    if re.search(r"yuva|rgba|argb|bgra|abgr|gbrap|^ya", pix):
        log.info("video '%s': its alpha channel (%s) is dropped; transparent pixels show their stored colour.",
                 path, pix.split("(")[0])
    if meta.get("audio_codec"):
        log.info("video '%s': its audio (%s) is not carried over to the outputs.", path, meta["audio_codec"])
    (h0, w0), (h, w) = src_hw, dst_hw
    sh, sw = scaled_size(src_hw, dst_hw, policy)
    reshaped = abs(h0 / w0 - h / w) > 0.01
    if policy == "crop" and reshaped:
        lost = 100 * (1 - (h * w) / (sh * sw))
        side = "width" if sw > w else "height"
        log.warning("video '%s' is %d×%d (height × width, aspect %.2f) but the model takes %d×%d (%.2f): %.0f %% of "
                    "its %s is cropped (camera.resize: crop); camera.resize: pad keeps it all.", path, h0, w0, w0 / h0,
                    h, w, w / h, lost, side)
    elif policy == "pad" and reshaped:
        log.warning("video '%s' is letterboxed to %d×%d (height × width): %.0f %% of each frame is black padding "
                    "(camera.resize: pad).", path, h, w, 100 * (1 - sh * sw / (h * w)))
    elif policy == "stretch" and reshaped:
        log.warning("video '%s' (%d×%d, height × width) is stretched to %d×%d: widths scale by %.2f relative to "
                    "heights (camera.resize: stretch).", path, h0, w0, h, w, (w / w0) / (h / h0))
    if upscale := upscaled(src_hw, dst_hw, policy):
        log.warning("%s", upscale.replace("the video", f"video '{path}'", 1))
    count = sel.count(n)
    if sel.pad_short and sel.start + sel.stride * (count - 1) + 1 > n:
        repeated = sum(1 for i in range(count) if sel.start + sel.stride * i >= n)
        log.warning("video '%s' has %d frames: its last frame is repeated %d time(s) to reach %d frames "
                    "(camera.pad_short).", path, n, repeated, count)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (ffmpeg/decord print straight to it), restoring it afterwards."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _not_a_file(path: Path) -> str:
    """What a path that is no readable file is: a folder, a broken or looping link, or nothing."""
    if path.is_dir():
        return "is a folder, not a video file (to take every video in it, use a pattern like 'folder/*.mp4')"
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except (RuntimeError, OSError) as exc:  # a loop: RuntimeError up to Python 3.12, OSError ELOOP after
            if isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP:
                return "is a symbolic link that loops back on itself"
            return f"is a symbolic link to '{os.readlink(path)}', which does not exist"
        return "is a link to something that is not a file"
    return "does not exist"


class VideoInfo(NamedTuple):
    frames: int
    fps: float
    size: tuple[int, int]  # (height, width)
    intervals: tuple[float, float] = (0.0, 0.0)  # shortest and longest time between frames, seconds

    @property
    def variable_rate(self) -> bool:
        """Frame intervals that differ by more than timestamp rounding (1–2 ms): a variable-frame-rate video."""
        lo, hi = self.intervals
        return hi - lo > 0.002 and hi > 1.05 * lo


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count, fps and size, decoding the first frame only; UserError (one line: missing, empty, not a video,
    corrupt) when it has no decodable frame."""
    import decord

    path = Path(path)
    if not path.is_file():
        raise UserError(f"video '{path}' {_not_a_file(path)}; fix its 'videos' entry (relative paths are looked up "
                        "in the config's folder, then the project root).")
    if path.stat().st_size == 0 or _container(path) is None:
        raise _unreadable(path)
    try:
        with _quiet_stderr():
            probe = decord.VideoReader(str(path), num_threads=1)
            n = len(probe)
            src_hw = tuple(probe[0].shape[:2]) if n > 0 else (0, 0)
            fps = float(probe.get_avg_fps()) or 30.0
            gaps = np.diff(probe.get_frame_timestamp(range(n))[:, 0]) if n > 2 else np.zeros(1)
            del probe
    except Exception:  # decord raises bare DECORDError/RuntimeError for corrupt files: say why in one line
        raise _unreadable(path) from None
    if n == 0 or min(src_hw) == 0:
        raise _unreadable(path)
    return VideoInfo(n, fps, src_hw, (float(gaps.min()), float(gaps.max())))


def video_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of a video (`probe_video`), probed once per version of the file in a process: the `auto`
    model size of a video is asked for by every stage and each studio preview."""
    if not Path(path).is_file():
        return probe_video(path).size  # its one-line error
    st = Path(path).stat()
    return _probed_size(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _probed_size(path: str, mtime_ns: int, size: int) -> tuple[int, int]:
    return probe_video(path).size


def read_clip(path: str | Path, sel: FrameSelection, size_hw: tuple[int, int], policy: str, log=None) -> Clip:
    """Decode the selected frames of `path` at `size_hw` with the resize policy. Raises UserError on unreadable
    input. With a logger, says once how the input is reinterpreted (alpha, audio, crop/pad/stretch, repeats)."""
    import decord

    path = Path(path)
    info = probe_video(path)
    n, fps, src_hw = info.frames, info.fps, info.size
    idx = frame_indices(n, sel, path)
    if log is not None:
        _notes(path, src_hw, size_hw, policy, sel, n, log)
        if info.variable_rate:
            log.info("video '%s' has a variable frame rate (%.0f to %.0f ms between frames): frames are taken by index "
                     "(camera.start/stride) and the outputs play at its average %.2f fps, so their timing follows the "
                     "frame count, not the source's clock.", path, 1000 * info.intervals[0], 1000 * info.intervals[1],
                     fps)
    sh, sw = scaled_size(src_hw, size_hw, policy)
    try:
        with _quiet_stderr():
            vr = decord.VideoReader(str(path), width=sw, height=sh, num_threads=0)
            frames = vr.get_batch(idx).asnumpy()
    except Exception:
        raise UserError(f"video '{path}' could not be decoded at frames {idx[0]}..{idx[-1]} (corrupt or truncated "
                        "there); re-encode it with ffmpeg, or choose other frames with camera.start/stride.") from None
    if frames.shape[1:3] != (sh, sw):  # some decoders ignore the requested size: resize ourselves
        return Clip(resize_frames(frames, size_hw, policy), fps, src_hw)
    return Clip(np.ascontiguousarray(fit_frames(frames, size_hw, policy)), fps, src_hw)


def write_video(path: str | Path, frames: np.ndarray, fps: float, crf: int = 16) -> None:
    """Write frames [T, H, W, 3] uint8 RGB (or [T, H, W] → gray) as H.264 mp4, atomically."""
    import imageio_ffmpeg

    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    frames = np.ascontiguousarray(frames.astype(np.uint8))
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:  # yuv420p needs even sizes
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        h, w = frames.shape[1:3]
    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp), (w, h), fps=fps, codec="libx264", quality=None, macro_block_size=1, pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p", output_params=["-crf", str(crf), "-preset", "medium", "-fflags", "+bitexact",
                                                  "-map_metadata", "-1"],
            ffmpeg_log_level="error")
        writer.send(None)
        for f in frames:
            writer.send(f)
        writer.close()


def read_frames(path: str | Path) -> np.ndarray:
    """Frames [T, H, W, 3] uint8 stored losslessly (`frames` of an .npz, e.g. the render); UserError naming the file
    when it is missing or unreadable."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            frames = z["frames"]
    except FileNotFoundError:
        raise UserError(f"'{path}' is missing; rerun the warp stage (`python -m inverse_dvs.warp`).") from None
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise UserError(f"'{path}' is damaged or not a frames file ({type(exc).__name__}); rerun the warp stage with "
                        "--force.") from None
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise UserError(f"'{path}' holds {frames.dtype} {frames.shape}, not frames [T, H, W, 3] uint8; rerun the warp "
                        "stage with --force.")
    return frames


def titled_side_by_side(videos: list[np.ndarray], titles: list[str], bar: int = 24) -> np.ndarray:
    """Stack equal-sized clips [T, H, W, 3] left to right under a title bar: returns [T, H + bar, n·W, 3]."""
    import cv2

    t, h, w, _ = videos[0].shape
    out = np.zeros((t, h + bar, w * len(videos), 3), np.uint8)
    scale = max(0.35, min(0.8, bar / 40))
    for i, (v, title) in enumerate(zip(videos, titles, strict=True)):
        out[:, bar:, i * w:(i + 1) * w] = v
        header = np.zeros((bar, w, 3), np.uint8)
        cv2.putText(header, title, (6, bar - 7), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        out[:, :bar, i * w:(i + 1) * w] = header
    return out


def colorize_depth(depth: np.ndarray) -> np.ndarray:
    """Depth [T, H, W] float (larger = farther) → [T, H, W, 3] uint8 preview, near = bright, one scale per video."""
    import cv2

    disp = 1.0 / np.maximum(depth, 1e-6)
    lo, hi = np.percentile(disp, [1, 99])
    norm = np.clip((disp - lo) / max(hi - lo, 1e-8), 0, 1)
    u8 = (norm * 255).astype(np.uint8)
    return np.stack([cv2.cvtColor(cv2.applyColorMap(f, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB) for f in u8])
