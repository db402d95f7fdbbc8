"""Where each artifact lives under `{work_dir}` (the on-disk contract in README.md → Outputs)."""

from __future__ import annotations

from pathlib import Path


def depth_dir(work_dir: Path, video: str) -> Path:
    return Path(work_dir) / "depths" / video


def result_dir(work_dir: Path, trajectory: str, video: str) -> Path:
    return Path(work_dir) / "results" / trajectory / video


def render_file(work_dir: Path, trajectory: str, video: str) -> Path:
    """The render's frames at the model size, lossless (`frames` uint8 [T, H, W, 3]): what invert, infer and the
    captioner read. render.mp4 beside it is for viewing."""
    return result_dir(work_dir, trajectory, video) / "render.npz"


def inversion_dir(work_dir: Path, trajectory: str, video: str) -> Path:
    return Path(work_dir) / "inversions" / trajectory / video


def inversion_file(work_dir: Path, trajectory: str, video: str, t_end: int) -> Path:
    """The inversion ending at timestep t_end (t_start, or 999 for the terminal inversion)."""
    return inversion_dir(work_dir, trajectory, video) / f"inversion_t{t_end:04d}.safetensors"


def run_dir(work_dir: Path, trajectory: str, video: str, run_tag: str) -> Path:
    return result_dir(work_dir, trajectory, video) / run_tag


def eval_dir(work_dir: Path) -> Path:
    """The evaluation's tables, report and plots, and its per-output records under `runs/`."""
    return Path(work_dir) / "eval"


def caption_dir(work_dir: Path, video: str, trajectory: str | None = None) -> Path:
    """Caption of a video's source (`caption.source: source`) or of one render (`render`: per trajectory)."""
    base = Path(work_dir) / "prompts" / video
    return base if trajectory is None else base / trajectory
