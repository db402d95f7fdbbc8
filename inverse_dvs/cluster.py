"""Run a config on a Ray cluster: the same stages, work folder, records and resume rules as run_all.sh, scheduled by
the resources each stage needs.

Usage: python -m inverse_dvs.cluster --config CONFIG [--address ADDRESS] [--evaluate] [stage options]
       bash run_all.sh CONFIG --ray[=ADDRESS]

Each (trajectory, video) item streams through depth → warp → caption → invert + infer on its own: an item moves to
its next stage as soon as the last one finished, so a slow video holds back nobody else. Every stage runs in a pool
of Ray actors (`cluster` section of the config): warp on CPU actors; depth, caption and the video model on GPU
actors that each load their model once and take one item after another; each actor takes one item at a time, and the
items wait in this driver (backpressure). A pool starts when its first item is ready and ends when no more can come,
so its GPU share goes to the next pool.

An actor calls the stages' public entries (`stages.stage_run`) with its one pipeline, so an item is computed, locked,
recorded and resumed exactly as run_all.sh does it: a run begun by one finishes with the other, and two drivers on
one work folder never compute an item twice. An actor or node that dies mid-item has the item tried again by a new
actor, `cluster.retries` times; its half-written files are never trusted (they are not recorded). An item whose
input is bad fails alone and is reported; the others go on.

Results: `{work_dir}/manifest.jsonl` and `manifest.parquet` (one row per stage item: status, folder, files, seconds,
NFE, attempts, worker, error; the run's rows also stream into `logs/runs/{run id}.manifest.jsonl` as they finish),
the usual `run_summary.json` and summary table. Actors log to `{work_dir}/logs/ray/`. Exit codes as run_all.sh's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from . import summary
from .config import Config, Selection, load_config, resolve_config, select
from .infra.artifacts import atomic_path, check_writable, read_meta
from .infra.errors import EXIT_INTERRUPTED, EXIT_ITEMS_FAILED, EXIT_OK, EXIT_USER_ERROR, DiskFull, UserError, disk_full
from .infra.layout import depth_dir, eval_dir, inversion_dir, result_dir, run_dir
from .runner.cli import build_parser, get_logger, setup_logging
from .runner.records import caption_folder
from .runner.workqueue import Item, duration, read_summary, record_section, run_id
from .stages import MODEL_STAGES, stage_run

# the pools in run order: (name, stages its actors run, config key of its GPU share or None: CPU only)
POOLS: tuple[tuple[str, tuple[str, ...], str | None], ...] = (
    ("depth", ("depth",), "depth_gpus"),
    ("warp", ("warp",), None),
    ("caption", ("caption",), "caption_gpus"),
    ("model", MODEL_STAGES, "model_gpus"),
)
EVALUATE_POOL = ("evaluate", ("evaluate",), "depth_gpus")  # --evaluate: one actor at the end, over every output
POOL_OF = {stage: name for name, stages, _ in (*POOLS, EVALUATE_POOL) for stage in stages}
MANIFEST = "manifest"


# the actor ------------------------------------------------------------------------------------------------------
class StageWorker:
    """One Ray actor: runs its stages for one item per call with one pipeline (so each model loads once per actor).

    Made with `ray.remote(StageWorker).options(...)`; it chdirs to the driver's folder where that exists (a shared file
    system at the same path), so a relative path means the same file on every node."""

    def __init__(self, cfg: Config, stages: tuple[str, ...], device: str, cwd: str, log_file: str):
        if Path(cwd).is_dir():
            os.chdir(cwd)
        # the whole log goes to a file; warnings and errors also to stderr, which Ray forwards to the driver
        log = setup_logging(quiet=True)
        for h in log.handlers:
            h.setLevel(logging.WARNING)
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        import torch
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.disable_progress_bar()  # no loading bars in the forwarded stderr

        from .pipeline import InverseDVSPipeline

        torch.set_grad_enabled(False)
        self.cfg, self.stages = cfg, stages
        self.pipe = InverseDVSPipeline(cfg, device=device, log=log) if stages != ("evaluate",) else None
        if self.pipe is not None:
            self.pipe.set_progress_bar_config(disable=True)

    def run(self, selection: Selection, force: bool) -> dict:
        """Each stage on the selected item, in order, until one fails: {worker: host:pid, stages: [{stage, exit,
        results: [ItemResult json]}]}."""
        from .runner.workqueue import collected

        out = []
        for name in self.stages:
            with collected() as results:
                code = stage_run(name)(self.cfg, selection, force=force, quiet=True, model=self.pipe)
            out.append({"stage": name, "exit": code, "results": [r.to_json() for r in results]})
            if any(r.status == "failed" for r in results):
                break
        return {"worker": f"{os.uname().nodename}:{os.getpid()}", "stages": out}


# the driver -----------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Job:
    pool: str
    video: str
    trajectory: str | None = None  # None: a per-video job (depth)
    attempts: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    started: float = 0.0
    whole: Selection | None = None  # the evaluate job's: every selected output

    @property
    def selection(self) -> Selection:
        if self.whole is not None:
            return self.whole
        return Selection(videos=(self.video,), trajectories=(self.trajectory,) if self.trajectory else None)

    @property
    def label(self) -> str:
        return Item(video=self.video, trajectory=self.trajectory).label


@dataclasses.dataclass
class _Pool:
    name: str
    stages: tuple[str, ...]
    size: int
    options: dict[str, Any]
    device: str
    queue: deque = dataclasses.field(default_factory=deque)
    idle: list = dataclasses.field(default_factory=list)
    actors: list = dataclasses.field(default_factory=list)
    expected: int = 0  # jobs that will still finish here (queued, running, or still to come from earlier pools)
    made: int = 0


def shares(cfg: Config, cluster_gpus: float) -> dict[str, dict[str, Any]]:
    """Per pool: its actor options (num_cpus, num_gpus), how many actors, and the device its pipeline uses. A CPU
    run (`run.device: cpu`) or a cluster without GPUs gives every actor 0 GPUs; `model_workers: auto` is one per
    GPU share of the cluster (`model_gpus` each), 1 without GPUs."""
    c = cfg.cluster
    gpu = cfg.run.device != "cpu" and cluster_gpus > 0
    out = {}
    for name, _, key in (*POOLS, EVALUATE_POOL):
        share = getattr(c, key) if (gpu and key) else 0.0
        if name == "model":
            size = max(1, int(cluster_gpus // c.model_gpus)) if c.model_workers == "auto" and share else (
                1 if c.model_workers == "auto" else c.model_workers)
        else:
            size = {"depth": c.depth_workers, "warp": c.warp_workers, "caption": c.caption_workers}.get(name, 1)
        out[name] = {"options": {"num_cpus": c.cpus_per_worker, "num_gpus": share}, "size": size,
                     "device": "cuda" if share else "cpu"}
    return out


class ClusterRun:
    """One run of a config on Ray (module docstring): `run()` returns the exit code."""

    def __init__(self, cfg: Config, selection: Selection, *, config_path: str, overrides: list[str],
                 force: bool = False, evaluate: bool = False, log: logging.Logger | None = None):
        self.cfg, self.selection, self.force, self.evaluate = cfg, selection, force, evaluate
        self.config_path, self.overrides = config_path, overrides
        self.log = log or get_logger()
        self.rid = run_id()
        self.rows: list[dict] = []
        self.results: dict[str, list[dict]] = {}
        self.spans: dict[str, list[float]] = {}
        self.pairs: dict[tuple[str, str], str] = {}  # (trajectory, video) → waiting | done | failed
        self.started = time.perf_counter()
        self.pools: dict[str, _Pool] = {}
        self.running: dict[Any, tuple[_Job, Any]] = {}  # object ref → (job, actor)
        self.manifest_stream = Path(cfg.work_dir) / "logs" / "runs" / f"{self.rid}.{MANIFEST}.jsonl"

    # scheduling ---------------------------------------------------------------------------------------------------
    def _plan(self, failed_preflight: list[Item]) -> None:
        videos, trajectories = select(self.cfg, self.selection)
        for v in videos:
            healthy = [t for t in trajectories if not any(f.covers(Item(video=v.name, trajectory=t.name))
                                                          for f in failed_preflight)]
            for t in trajectories:
                self.pairs[(t.name, v.name)] = "waiting" if t in healthy else "failed"
            if healthy:
                self.pools["depth"].queue.append(_Job("depth", v.name))
                self.pools["depth"].expected += 1
                for name in ("warp", "caption", "model"):
                    self.pools[name].expected += len(healthy)

    def _trajectories_of(self, video: str) -> list[str]:
        return [t for (t, v), state in self.pairs.items() if v == video and state == "waiting"]

    def _next_pool(self, pool: str) -> str | None:
        names = [p[0] for p in POOLS]
        i = names.index(pool)
        return names[i + 1] if i + 1 < len(names) else None

    def _make_actor(self, pool: _Pool):
        import ray

        pool.made += 1
        log_file = Path(self.cfg.work_dir).absolute() / "logs" / "ray" / f"{self.rid}.{pool.name}.{pool.made}.log"
        actor = ray.remote(StageWorker).options(**pool.options, max_restarts=0, max_task_retries=0).remote(
            self.cfg, pool.stages, pool.device, os.getcwd(), str(log_file))
        pool.actors.append(actor)
        pool.idle.append(actor)

    def _dispatch(self) -> None:
        for pool in self.pools.values():
            while pool.queue and not pool.idle and len(pool.actors) < pool.size:
                self._make_actor(pool)
            while pool.queue and pool.idle:
                job, actor = pool.queue.popleft(), pool.idle.pop(0)
                job.attempts += 1
                job.started = time.perf_counter()
                self.spans.setdefault(pool.name, [time.time(), time.time()])
                self.running[actor.run.remote(job.selection, self.force)] = (job, actor)

    def _retire(self) -> None:
        """End the actors of every pool that no job can reach any more (their GPU share goes to the pools after)."""
        import ray

        for pool in self.pools.values():
            if pool.expected == 0 and pool.actors:
                for actor in pool.actors:
                    ray.kill(actor)
                pool.actors.clear()
                pool.idle.clear()

    def _drop(self, pool: str, count: int) -> None:
        """`count` jobs will never reach `pool` or the pools after it."""
        while pool is not None:
            self.pools[pool].expected -= count
            pool = self._next_pool(pool)

    # results ------------------------------------------------------------------------------------------------------
    def _folder(self, stage: str, item: Item) -> Path | None:
        w = self.cfg.work_dir
        if stage == "depth":
            return depth_dir(w, item.video)
        if stage == "warp":
            return result_dir(w, item.trajectory, item.video)
        if stage == "caption":
            traj = next((t for t in self.cfg.trajectories if t.name == item.trajectory), None)
            return caption_folder(self.cfg, self.cfg.video(item.video), traj)
        if stage == "invert":
            return inversion_dir(w, item.trajectory, item.video)
        if stage == "infer" and item.run:
            return run_dir(w, item.trajectory, item.video, item.run)
        if stage == "evaluate":
            return eval_dir(w)
        return None

    def _row(self, stage: str, result: dict, job: _Job | None, worker: str) -> dict:
        item = Item.from_json(result.get("item"))
        folder = self._folder(stage, item) if result.get("status") in ("done", "skipped") else None
        meta = read_meta(folder) if folder is not None else None
        meta = meta if isinstance(meta, dict) and meta.get("stage") == stage else {}
        row = {"run_id": self.rid, "stage": stage, "video": item.video, "trajectory": item.trajectory,
               "run": item.run, "status": result.get("status"), "seconds": result.get("seconds"),
               "compute_seconds": meta.get("seconds"), "nfe": meta.get("nfe_per_output", meta.get("nfe")),
               "folder": str(folder) if folder is not None else None,
               "files": [str(folder / f) for f in meta.get("outputs", [])] if folder is not None else [],
               "attempts": job.attempts if job else 0, "worker": worker,
               "error": result.get("reason") or (f"tried again after: {job.errors[-1]}" if job and job.errors
                                                 else None),
               "bad_input": bool(result.get("user_error"))}
        self.rows.append(row)
        self.manifest_stream.parent.mkdir(parents=True, exist_ok=True)
        with open(self.manifest_stream, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        self.results.setdefault(stage, []).append(result)
        return row

    def _finished(self, job: _Job, worker: str, out: list[dict]) -> None:
        failed = None
        for part in out:
            for r in part["results"]:
                self._row(part["stage"], r, job, worker)
                if r.get("status") == "failed":
                    failed = failed or f"{part['stage']}: {r.get('reason', '')}"
        self.spans[job.pool][1] = time.time()
        self._advance(job, failed)

    def _failed(self, job: _Job, reason: str, user_error: bool, worker: str = "") -> None:
        for stage in self.pools[job.pool].stages[:1]:
            self._row(stage, {"item": Item(video=job.video, trajectory=job.trajectory).to_json(), "status": "failed",
                              "seconds": round(time.perf_counter() - job.started, 3), "reason": reason,
                              "user_error": user_error}, job, worker)
        self._advance(job, reason)

    def _advance(self, job: _Job, failed: str | None) -> None:
        pool = self.pools[job.pool]
        pool.expected -= 1
        if job.pool == "evaluate":
            return
        if job.pool == "depth":
            trajs = self._trajectories_of(job.video)
            if failed:
                for t in trajs:
                    self.pairs[(t, job.video)] = "failed"
                self._drop("warp", len(trajs))
            else:
                self.pools["warp"].queue.extend(_Job("warp", job.video, t) for t in trajs)
        elif failed:
            self.pairs[(job.trajectory, job.video)] = "failed"
            if (nxt := self._next_pool(job.pool)) is not None:
                self._drop(nxt, 1)
        elif (nxt := self._next_pool(job.pool)) is not None:
            self.pools[nxt].queue.append(_Job(nxt, job.video, job.trajectory))
        else:
            self.pairs[(job.trajectory, job.video)] = "done"
        self._progress(job, failed)

    def _progress(self, job: _Job, failed: str | None) -> None:
        states = list(self.pairs.values())
        done, bad = states.count("done"), states.count("failed")
        left = len(states) - done - bad
        elapsed = time.perf_counter() - self.started
        eta = f" · ETA {duration(elapsed / done * left)}" if done and left else ""
        busy = ", ".join(f"{p.name} {sum(j.pool == p.name for j, _ in self.running.values())}/{len(p.queue)}"
                         for p in self.pools.values() if p.queue or any(j.pool == p.name for j, _ in
                                                                        self.running.values()))
        self.log.info("[ray] %s %s: %s · items: %d done, %d failed, %d remaining of %d · %s so far%s%s", job.pool,
                      job.label, "failed" if failed else "ok", done, bad, left, len(states), duration(elapsed), eta,
                      f" · running/queued: {busy}" if busy else "")

    def _collect(self, ref) -> None:
        import ray

        job, actor = self.running.pop(ref)
        pool = self.pools[job.pool]
        try:
            answer = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the stage itself raised (not an item failure): not retried
            cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
            pool.idle.append(actor)
            if isinstance(cause, DiskFull):
                raise cause from None
            self.log.error("[ray] %s %s: %s", job.pool, job.label, cause)
            self._failed(job, f"{type(cause).__name__}: {cause}", isinstance(cause, UserError))
            return
        except ray.exceptions.RayError as exc:  # the actor or its node died: a new actor tries the item again
            ray.kill(actor)
            pool.actors.remove(actor)
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            job.errors.append(reason)
            if job.attempts <= self.cfg.cluster.retries:
                self.log.warning("[ray] %s %s: its worker died (%s); trying again (attempt %d of %d).", job.pool,
                                 job.label, reason, job.attempts + 1, self.cfg.cluster.retries + 1)
                pool.queue.appendleft(job)
            else:
                self.log.error("[ray] %s %s: its worker died %d time(s); giving up on it (cluster.retries).",
                               job.pool, job.label, job.attempts)
                self._failed(job, f"worker died {job.attempts} time(s); last: {reason}", False)
            return
        pool.idle.append(actor)
        self._finished(job, answer["worker"], answer["stages"])

    # the run ------------------------------------------------------------------------------------------------------
    def run(self) -> int:
        import ray

        stage_started = time.time()
        code = stage_run("preflight")(self.cfg, self.selection, force=self.force, quiet=False)
        self.spans["preflight"] = [stage_started, time.time()]
        if code != EXIT_OK:
            return code
        pre = read_summary(self.cfg.work_dir, self.rid).get("preflight") or {}
        failed_pre = [Item.from_json(it.get("item")) for it in pre.get("items", []) if it.get("status") == "failed"]
        for it in pre.get("items", []):
            self._row("preflight", it, None, "driver")
        res = shares(self.cfg, float(ray.cluster_resources().get("GPU", 0.0)))
        for name, stages, _ in POOLS:
            self.pools[name] = _Pool(name, stages, res[name]["size"], res[name]["options"], res[name]["device"])
        self.log.info("[ray] cluster: %s; pools: %s", _resources(ray.cluster_resources()),
                      ", ".join(f"{p.name} {p.size} × {_resources(p.options)}" for p in self.pools.values()))
        most = max((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")), default=0.0)
        if self.cfg.cluster.cpus_per_worker > most:
            self.log.warning("[ray] cluster.cpus_per_worker is %g, but no node of the cluster has that many CPUs now "
                             "(the largest has %g): the actors wait until one joins (an autoscaler may add it). "
                             "Lower it, or add a larger node.", self.cfg.cluster.cpus_per_worker, most)
        self._plan(failed_pre)
        self._loop()
        if self.evaluate:
            self._evaluate(res["evaluate"])
        return self._finish()

    def _loop(self) -> None:
        import ray

        while True:
            self._dispatch()
            self._retire()
            if not self.running:
                break
            ready, _ = ray.wait(list(self.running), num_returns=1)
            self._collect(ready[0])

    def _evaluate(self, res: dict) -> None:
        """The evaluation stage over every selected output, on one actor (its CLIP model loads once)."""
        if "done" not in self.pairs.values():
            return
        videos, trajectories = select(self.cfg, self.selection)
        pool = _Pool("evaluate", EVALUATE_POOL[1], 1, res["options"], res["device"], expected=1)
        pool.queue.append(_Job("evaluate", videos[0].name, whole=Selection(tuple(v.name for v in videos),
                                                                              tuple(t.name for t in trajectories))))
        self.pools["evaluate"] = pool
        self._loop()

    def _finish(self) -> int:
        w = Path(self.cfg.work_dir)
        for stage, results in self.results.items():
            if stage != "preflight":
                record_section(w, stage, {"processes": self.pools[POOL_OF[stage]].made, "run_id": self.rid,
                                          "backend": "ray", "items": results,
                                          "failed": sum(r.get("status") == "failed" for r in results)})
        write_manifest(w, self.rows)
        names = [s for s in ("preflight", *(p[0] for p in POOLS), "evaluate") if s in self.spans]
        argv = ["--config", self.config_path, "--stages", ",".join("+".join(MODEL_STAGES) if s == "model" else s
                                                                   for s in names),
                "--spans", ",".join(f"{self.spans[s][0]}-{self.spans[s][1]}" for s in names)]
        for o in self.overrides:
            argv += ["--set", o]
        summary.main(argv)
        sys.stdout.write(f"manifest: {w / (MANIFEST + '.jsonl')} and {w / (MANIFEST + '.parquet')}\n")
        failed = [r for r in self.rows if r["status"] == "failed"]
        if not failed:
            return EXIT_OK
        return EXIT_USER_ERROR if all(r["bad_input"] for r in failed) else EXIT_ITEMS_FAILED


def _resources(res: dict) -> str:
    return ", ".join(f"{k.removeprefix('num_')} {v:g}" for k, v in res.items()
                     if k in ("CPU", "GPU", "num_cpus", "num_gpus"))


def write_manifest(work_dir: Path, rows: list[dict]) -> None:
    """`{work_dir}/manifest.jsonl` and `manifest.parquet` (pyarrow), both written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_path(Path(work_dir) / f"{MANIFEST}.jsonl") as tmp:
        Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with atomic_path(Path(work_dir) / f"{MANIFEST}.parquet") as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA(pa)), tmp)


def MANIFEST_SCHEMA(pa):  # noqa: N802 - a constant, built once pyarrow is imported
    return pa.schema([("run_id", pa.string()), ("stage", pa.string()), ("video", pa.string()),
                      ("trajectory", pa.string()), ("run", pa.string()), ("status", pa.string()),
                      ("seconds", pa.float64()), ("compute_seconds", pa.float64()), ("nfe", pa.int64()),
                      ("folder", pa.string()), ("files", pa.list_(pa.string())), ("attempts", pa.int64()),
                      ("worker", pa.string()), ("error", pa.string()), ("bad_input", pa.bool_())])


# the command line -----------------------------------------------------------------------------------------------
FORWARDED_ENV = ("INVERSE_DVS_CHECKPOINTS", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TORCH_HOME",
                 "INVERSE_DVS_TINY_FAST")


def connect(address: str | None, log: logging.Logger) -> bool:
    """Join the Ray cluster at `address` (None: RAY_ADDRESS, else one `ray start` began on this machine, else a local
    one started now, which `ray.shutdown()` stops again); True when this call connected, False when this process was
    connected already (e.g. a test's or a notebook's cluster), which it leaves connected."""
    try:
        import ray
    except ImportError as exc:
        raise UserError("the Ray backend needs Ray, which is not installed in this environment. Install the cluster "
                        "extra: `bash setup_env.sh --cluster` (or `pip install -e '.[cluster]'`), on every node of "
                        "the cluster.") from exc
    if ray.is_initialized():
        return False
    _check_reachable(address or os.environ.get("RAY_ADDRESS"))
    root = str(Path(__file__).resolve().parents[1])
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(x for x in (root, os.environ.get("PYTHONPATH", "")) if x)
    try:
        ctx = ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                       runtime_env={"env_vars": env})
    except ConnectionError as exc:
        raise UserError(f"could not join the Ray cluster at {address or os.environ.get('RAY_ADDRESS')!r}: {exc}. "
                        "Start it with `ray start --head` (or check the address: cluster.address, --ray=ADDRESS, "
                        "RAY_ADDRESS), or leave the address out for a local cluster.") from exc
    log.info("[ray] joined the cluster at %s", ctx.address_info.get("address", "?"))
    return True


def _check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """UserError at once when the cluster's HOST:PORT does not answer: Ray itself retries an unreachable address for a
    minute or more and may then end the process."""
    import socket

    if not address or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"the Ray cluster address {address!r} is not HOST:PORT (e.g. 10.0.0.1:6379, or "
                        "ray://10.0.0.1:10001); set cluster.address, --ray=ADDRESS or RAY_ADDRESS to the head node's.")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UserError(f"could not join the Ray cluster at {address!r}: nothing answers there ({exc}). Start it with "
                        "`ray start --head` on that node (or check the address: cluster.address, --ray=ADDRESS, "
                        "RAY_ADDRESS), or leave the address out for a local cluster.") from None


def main(argv: list[str] | None = None) -> int:
    p = build_parser("cluster", __doc__.splitlines()[0])
    p.add_argument("--address", default=None, help="the Ray cluster (default: cluster.address, else RAY_ADDRESS, "
                                                   "else one `ray start` began on this machine, else a local one)")
    p.add_argument("--evaluate", action="store_true", help="then evaluate the outputs (one actor)")
    args = p.parse_args(argv)
    log = setup_logging(args.quiet)
    given = os.environ.get("INVERSE_DVS_RUN_ID")  # run_all.sh's; this run's own otherwise, for this call only
    os.environ["INVERSE_DVS_RUN_ID"] = given or f"{int(time.time())}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    started_here, cfg = False, None
    try:
        cfg = resolve_config(load_config(args.config, args.overrides))
        check_writable(cfg.work_dir, "run.work_dir")
        if cfg.run.context_parallel.degree > 1:  # an actor is one process; a group needs several, launched together
            raise UserError(f"config key 'run.context_parallel' is {cfg.run.context_parallel}, which the Ray backend "
                            "does not run yet (each actor is one process). Run `bash run_all.sh` with run.gpus "
                            "instead, or set run.context_parallel: {ulysses: 1, ring: 1} for --ray.")
        selection = Selection.parse(args.only_video, args.only_trajectory, args.shard)
        started_here = connect(args.address or cfg.cluster.address, log)
        return ClusterRun(cfg, selection, config_path=args.config, overrides=args.overrides, force=args.force,
                          evaluate=args.evaluate, log=log).run()
    except UserError as exc:
        log.error("cluster: %s", exc)
        return EXIT_USER_ERROR
    except OSError as exc:  # a write outside any item (the manifest, a summary) on a full disk
        if (full := disk_full(exc, cfg.work_dir if cfg is not None else ".")) is None:
            raise
        log.error("cluster: %s", full)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        log.error("cluster: interrupted; finished items are kept, rerun to resume (with run_all.sh or --ray).")
        return EXIT_INTERRUPTED
    finally:
        if given is None:
            del os.environ["INVERSE_DVS_RUN_ID"]
        if started_here:
            import ray

            ray.shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
