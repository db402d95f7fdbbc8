"""The studio's work, without any web framework: what the page calls, and what the tests call.

A `Studio` holds one config and one `InverseDVSPipeline` over it. It opens a video (its depth through the depth
stage's public `run`, so a later `run_all.sh` finds it up to date), turns a path the user edits into cameras with
the pipeline's `cameras` (what the warp stage runs), draws them over the first frame's point cloud, previews the
pipeline's `render`, saves the path as a trajectory file in the config, and starts `run_all.sh` for it. Every path
the page names is checked against the folders the studio may read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..config import Config, Selection, TrajectorySpec, VideoSpec, load_config, model_hw, resolve_config
from ..config.paths import PROJECT_ROOT, name_from_stem
from ..config.schema import NAME_RE
from ..core.camera import PRESETS, invert_rigid
from ..infra.errors import UserError
from ..infra.layout import depth_dir, result_dir
from ..infra.trajectories import trajectory_keyframes
from ..pipeline import InverseDVSPipeline, clip_windows, visibility_report, visible_fractions
from ..runner.inputs import load_scene
from ..runner.workqueue import Item, read_summary

PREVIEW_SCALES = {"full": 1.0, "half": 0.5, "quarter": 0.25}
# what the page may read, by kind and suffix (`Studio.check_path`)
READABLE = {"video": (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".gif"), "trajectory": (".txt", ".json"),
            "config": (".yml", ".yaml")}


class Preview(NamedTuple):
    render: np.ndarray  # [T, H, W, 3] uint8
    visibility: np.ndarray  # [T, H, W] float32 in [0, 1]
    fractions: np.ndarray  # [T] visible fraction per frame
    warnings: list[str]  # what the warp stage would warn about (or the error it would stop with)
    size: tuple[int, int]  # (H, W) of the preview
    seconds: float
    windows: list = []  # the clip's windows (core.windows.Window) when it is longer than one: where each runs


class Saved(NamedTuple):
    trajectory_file: Path
    config_file: Path
    command: str


class Studio:
    """One config's studio (`config`: its path; `overrides`: `--set` values)."""

    def __init__(self, config: str | Path, overrides: tuple[str, ...] = (), device: str = "cpu"):
        self.config_path = Path(config).resolve()
        self.overrides = tuple(overrides)
        self.cfg: Config = resolve_config(load_config(self.config_path, self.overrides))
        self.device = device
        self.pipe = InverseDVSPipeline(self.cfg, device=device)
        self.pipe.set_progress_bar_config(disable=True)
        self._scenes: dict[str, object] = {}
        self._runs: dict[str, tuple[subprocess.Popen, Path, str, str]] = {}
        self._view_dir: Path | None = None

    # paths ------------------------------------------------------------------------------------------------------
    @property
    def allowed_roots(self) -> list[Path]:
        """Folders the page may read below: the project (not its hidden folders: .git, .venv) and the work folder."""
        return [PROJECT_ROOT.resolve(), self.cfg.work_dir.resolve()]

    def named_files(self) -> set[Path]:
        """Files the config names: the config, its videos, trajectory and pose files."""
        files = {self.config_path, *(Path(v.path).resolve() for v in self.cfg.videos)}
        files |= {Path(p).resolve() for t in self.cfg.trajectories for p in (t.file, t.poses) if p}
        return files

    def check_path(self, path: str | Path, kind: str = "video") -> Path:
        """The resolved path when the page may read it as a `kind` (video, trajectory: a 3-line file or a JSON pose
        file; config), else a UserError naming it and what the studio reads. The page reads only the files the
        config names, and files of those kinds (by their suffix) in the project — outside its hidden folders — or
        the work folder: never `.git/config` or a file elsewhere, not even to count its lines."""
        p = Path(path).expanduser()
        p = (p if p.is_absolute() else PROJECT_ROOT / p).resolve()
        if p in self.named_files():
            return p
        work, project = self.cfg.work_dir.resolve(), PROJECT_ROOT.resolve()
        inside = p.is_relative_to(work) or (p.is_relative_to(project) and not any(
            part.startswith(".") for part in p.relative_to(project).parts))
        if not inside:
            roots = ", ".join(str(r) for r in self.allowed_roots)
            raise UserError(f"'{path}' is outside the folders the studio may read ({roots}, not their hidden "
                            f"folders) and is not a file the config names; copy it into the project or its work "
                            f"folder, or name it in {self.config_path.name}.")
        if p.suffix.lower() not in READABLE[kind]:
            raise UserError(f"'{path}' is not a {kind} file (the studio reads {kind} files ending in "
                            f"{', '.join(READABLE[kind])} here); pick one of those.")
        return p

    # videos -----------------------------------------------------------------------------------------------------
    def video_names(self) -> list[str]:
        return [v.name for v in self.cfg.videos]

    def video(self, name_or_path: str) -> VideoSpec:
        """A video of the config by name, or any readable path (added to this studio's config, and to the saved
        config when a trajectory is saved for it)."""
        if name_or_path in self.video_names():
            return self.cfg.video(name_or_path)
        path = self.check_path(name_or_path, "video")
        if not path.is_file():
            raise UserError(f"video '{name_or_path}' is not a file; pick a video of the config or give a path to one.")
        for v in self.cfg.videos:
            if Path(v.path).resolve() == path:
                return v
        taken = set(self.video_names())
        name, i = name_from_stem(path.stem), 2
        while name in taken:
            name, i = f"{name_from_stem(path.stem)}-{i}", i + 1
        spec = VideoSpec(path=str(path), name=name)
        self.cfg = dataclasses.replace(self.cfg, videos=(*self.cfg.videos, spec))
        return spec

    def open_video(self, name_or_path: str):
        """The video's scene (`runner.inputs.Scene`): its depth is made (or found up to date) by the depth stage's
        `run` in `{work_dir}/depths/{name}/`, as `run_all.sh` would, with this studio's depth model."""
        from ..depth import run as depth_run

        video = self.video(name_or_path)
        if video.name not in self._scenes:
            if depth_run(self.cfg, Selection(videos=(video.name,)), quiet=True, model=self.pipe) != 0:
                raise UserError(self.failure("depth", video.name) or f"the depth of video '{video.name}' failed.")
            self._scenes[video.name] = load_scene(self.cfg, video)
        return self._scenes[video.name]

    def failure(self, stage: str, video: str) -> str | None:
        """The reason the stage's last run gave for an item of this very video (None when it did not fail)."""
        for it in read_summary(self.cfg.work_dir).get(stage, {}).get("items", []):
            if Item.from_json(it.get("item")).video == video and it.get("status") == "failed":
                return it.get("reason")
        return None

    # paths of the camera ----------------------------------------------------------------------------------------
    @staticmethod
    def preset(name: str, amount: float) -> TrajectorySpec:
        return TrajectorySpec(name="studio", preset=name, amount=float(amount))

    @staticmethod
    def keyframes(theta, phi, r) -> TrajectorySpec:
        return TrajectorySpec(name="studio", theta=tuple(map(float, theta)), phi=tuple(map(float, phi)),
                              r=tuple(map(float, r)))

    def from_file(self, path: str) -> TrajectorySpec:
        """A 3-line trajectory file or a JSON pose file (by its suffix) the page may read."""
        p = self.check_path(path, "trajectory")
        return TrajectorySpec(name="studio", **({"poses": str(p)} if p.suffix == ".json" else {"file": str(p)}))

    def problem(self, spec: TrajectorySpec) -> str | None:
        """What preflight would say about the path (`preflight.check_trajectory`), or None when it is usable."""
        from ..preflight import check_trajectory

        if spec.kind == "preset":
            unknown = [p for p in spec.preset.split("+") if p not in PRESETS]
            if unknown:
                return f"unknown preset '{unknown[0]}'; one of {', '.join(PRESETS)}"
        try:
            check_trajectory(self.cfg, spec)
        except UserError as exc:
            return str(exc)
        return None

    def cameras(self, video: str, spec: TrajectorySpec) -> np.ndarray:
        """source_to_target [T, 4, 4] of the path, as the warp stage computes it for this video."""
        scene = self.open_video(video)
        problem = self.problem(spec)
        if problem:
            raise UserError(problem)
        return self.pipe.cameras(spec, len(scene.clip.frames), scene.radius)

    def figure(self, video: str, spec: TrajectorySpec, points: int = 6000, every: int = 4):
        """A plotly figure: the first frame's coloured point cloud, the source camera, the pivot and the path's
        camera frustums (every `every`-th frame, and the last), in the source camera's frame (OpenCV axes)."""
        from .figure import scene_figure

        scene = self.open_video(video)
        s2t = self.cameras(video, spec)
        return scene_figure(scene.clip.frames[0], scene.depth[0], scene.K, invert_rigid(s2t), scene.radius, points,
                            every)

    def preview(self, video: str, spec: TrajectorySpec, size: str = "full") -> Preview:
        """The pipeline's render and visibility along the path (what the warp stage writes); `size` `full` (the model
        size, as the warp stage) or `half` / `quarter` (warped from the clip and depth at that fraction of the warp
        size, faster). Its warnings are the warp stage's, and the error it would stop with."""
        import cv2

        scene = self.open_video(video)
        s2t = self.cameras(video, spec)
        s = PREVIEW_SCALES[size]
        full_hw = model_hw(self.cfg, self.video(video))
        frames, depth, K, size_hw = scene.clip.frames, scene.depth, scene.K, full_hw
        if s != 1.0:
            h, w = (max(16, round(x * s)) for x in frames.shape[1:3])
            frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
            depth = np.stack([cv2.resize(d, (w, h), interpolation=cv2.INTER_NEAREST) for d in depth])
            K = K.copy()
            K[0] *= w / scene.clip.frames.shape[2]
            K[1] *= h / scene.clip.frames.shape[1]
            size_hw = (max(16, round(full_hw[0] * s)), max(16, round(full_hw[1] * s)))
        t0 = time.perf_counter()
        out = self.pipe.render(frames, depth, K, s2t, size_hw)
        seconds = time.perf_counter() - t0
        frac = visible_fractions(out.visibility)
        warnings, error = visibility_report(frac, self.cfg.warp.min_visible_warn, f"video '{video}'")
        windows = clip_windows(self.cfg, len(out.render), f"video '{video}'", logging.getLogger("inverse_dvs")) \
            if self.cfg.may_window else []
        return Preview(out.render, out.visibility, frac, warnings + ([error] if error else []), size_hw,
                       round(seconds, 3), windows if len(windows) > 1 else [])

    # files the page shows ---------------------------------------------------------------------------------------
    @property
    def view_dir(self) -> Path:
        """This studio's folder of files for the page (a temporary folder Gradio may serve; removed with the studio
        or when the process exits)."""
        if self._view_dir is None:
            import shutil
            import tempfile
            import weakref

            self._view_dir = Path(tempfile.mkdtemp(prefix="inverse-dvs-studio-"))
            weakref.finalize(self, shutil.rmtree, self._view_dir, ignore_errors=True)
        return self._view_dir

    def view_file(self, data: bytes, suffix: str) -> Path:
        """`data` as a file the page may show: named by its content and written once, atomically, so a browser
        fetching it never gets a file that is half-written or changes under it (a run writing into the work folder,
        or the page showing one image twice, never touches it)."""
        from ..infra.artifacts import atomic_path

        path = self.view_dir / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
        if not path.is_file():
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
        return path

    def still(self, image: np.ndarray) -> Path:
        """An RGB uint8 image [H, W, 3] as a PNG file for the page (`view_file`)."""
        import cv2

        ok, png = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
        if not ok:
            raise UserError("the preview image could not be encoded.")
        return self.view_file(png.tobytes(), ".png")

    def snapshot(self, path: Path) -> Path:
        """A copy of a work-folder file (e.g. a comparison.mp4 that a later run replaces) for the page (`view_file`):
        read in one go, so it is one complete version of the file."""
        return self.view_file(Path(path).read_bytes(), Path(path).suffix)

    # saving and running -----------------------------------------------------------------------------------------
    def save(self, name: str, video: str, spec: TrajectorySpec, new_config: bool = False) -> Saved:
        """Write the path as a 3-line trajectory file (`trajectories/{name}.txt` beside the config; a pose file path is
        kept as it is) and add it to the config, keeping the rest of the YAML and its comments (`new_config`: write
        `{stem}.studio.yml` beside it instead). Returns the files and the `run_all.sh` command that runs it."""
        import yaml

        from ..infra.artifacts import atomic_path
        from .config_edit import add_trajectory, add_video

        if not NAME_RE.match(name or ""):
            raise UserError(f"trajectory name {name!r} is not usable: letters, digits, '_', '-', '.', starting with a "
                            "letter or digit (it becomes a folder name).")
        problem = self.problem(spec)
        if problem:
            raise UserError(problem)
        v = self.video(video)
        base = self.config_path.parent
        target = base / f"{self.config_path.stem}.studio.yml" if new_config else self.config_path
        source = target if target.is_file() else self.config_path
        text = source.read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
        if name in (data.get("trajectories") or {}):
            raise UserError(f"trajectory '{name}' is already in {source.name}; choose another name.")
        rows = None
        if spec.kind == "poses":
            entry, traj_file = {"poses": spec.poses}, Path(spec.poses)
        else:
            rows = trajectory_keyframes(spec)  # file, preset or inline keyframes, checked
            traj_file = base / "trajectories" / f"{name}.txt"
            if traj_file.exists():
                raise UserError(f"'{traj_file}' exists already; choose another trajectory name.")
            entry = {"file": str(traj_file.relative_to(base))}
        text = add_trajectory(text, name, entry)  # only lines added: the rest of the file stays as it is
        if all(Path(x["path"]).expanduser() != Path(v.path) and x.get("name") != v.name
               for x in data.get("videos") or [] if isinstance(x, dict)):
            text = add_video(text, {"path": v.path, "name": v.name})
        if rows is not None:
            traj_file.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(traj_file) as tmp:
                tmp.write_text("\n".join(" ".join(f"{x:g}" for x in row) for row in rows) + "\n", encoding="utf-8")
        with atomic_path(target) as tmp:
            tmp.write_text(text, encoding="utf-8")
        resolve_config(load_config(target, self.overrides))  # what run_all.sh reads: a ConfigError is a bug of ours
        try:
            config_arg = target.relative_to(PROJECT_ROOT)
        except ValueError:
            config_arg = target
        return Saved(traj_file, target, f"bash run_all.sh {config_arg} --only-video {v.name} --only-trajectory {name}")

    def start_run(self, config: Path, video: str, trajectory: str) -> str:
        """Start `run_all.sh` for one video and trajectory of a saved config, after preflight; returns the run's key,
        or raises UserError with preflight's own message (no weights, no GPU, bad input), starting nothing."""
        import os

        key = f"{video}/{trajectory}"
        if key in self._runs and self._runs[key][0].poll() is None:
            raise UserError(f"a run of {key} started here is still going.")
        select = ["--only-video", video, "--only-trajectory", trajectory]
        check = subprocess.run([sys.executable, "-m", "inverse_dvs.preflight", "--config", str(config), *select,
                                *self._set_args()], cwd=PROJECT_ROOT, capture_output=True, text=True)
        if check.returncode != 0:
            raise UserError(_strip_log(check.stderr) or f"preflight failed (exit code {check.returncode}).")
        logs = self.cfg.work_dir / "studio"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"run-{video}-{trajectory}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        with open(log_path, "w", encoding="utf-8") as fh:
            proc = subprocess.Popen(["bash", str(PROJECT_ROOT / "run_all.sh"), str(config), *select,
                                     *self._set_args()], cwd=PROJECT_ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                    env=os.environ | {"PYTHONUNBUFFERED": "1"})
        self._runs[key] = (proc, log_path, video, trajectory)
        return key

    @property
    def runs(self) -> list[str]:
        """The keys (`video/trajectory`) of the runs started here."""
        return list(self._runs)

    def _set_args(self) -> list[str]:
        return [a for o in self.overrides for a in ("--set", o)]

    def run_status(self, key: str) -> dict:
        """A run started here: `stages` finished so far, the log's tail, whether it is `done`, its exit code and the
        comparison.mp4 it made (None until it has)."""
        from ..stages import STAGES

        proc, log_path, video, trajectory = self._runs[key]
        text = log_path.read_text(encoding="utf-8", errors="replace")
        finished = set(re.findall(r"INFO (\S+): finished in", text))
        done_stages = [s for s in STAGES if any(s in f.split("+") for f in finished)]
        rc = proc.poll()
        comparison = None
        if rc is not None:
            found = sorted(result_dir(self.cfg.work_dir, trajectory, video).glob("*/comparison.mp4"),
                           key=lambda p: p.stat().st_mtime)
            comparison = found[-1] if found else None
        return {"stages": done_stages, "all_stages": list(STAGES), "log": _strip_log(text)[-3000:],
                "done": rc is not None, "returncode": rc, "comparison": comparison}

    def depth_file(self, video: str) -> Path:
        return depth_dir(self.cfg.work_dir, self.video(video).name) / "depth.npz"


def _strip_log(text: str) -> str:
    """Log text without progress-bar redraws."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.splitlines() if line.strip()).strip()
