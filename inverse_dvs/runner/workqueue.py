"""Work items of a stage: deterministic sharding over processes, failure isolation, and the run summary.

Every process enumerates the same items in the same order; item i belongs to process i mod N (N = accelerate's
`num_processes`, 1 without `accelerate launch`). So no two processes ever write the same item, and results do not
depend on N (seeds come from the item, never from the rank). A failing item is logged and recorded, the others go
on; at the end each process writes `{work_dir}/logs/{stage}.rank{R}[.{token}].json`, and the main process merges
them into `{work_dir}/run_summary.json` and prints one line per item.

Two runs on one work_dir (two `run_all.sh`, or machines sharing a file system) share the work: an item another live
process holds (its `.lock`), or whose input another process is computing, is put aside and the stage goes on with
the others; before it ends, it waits for each item put aside and tries it again (up to date by then, or computed here
if the other process failed or died). So a stage ends only when each of its items is complete or has failed, and a
run never reports as failed what another run was still doing. Each run_all.sh run keeps its own summary,
`{work_dir}/logs/runs/{run id}.json`; `run_summary.json` is the one of the run that wrote last.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ..infra.artifacts import ItemLock, clean_partials, run_item, write_json
from ..infra.device import end_process_group_at_exit
from ..infra.errors import EXIT_ITEMS_FAILED, EXIT_OK, EXIT_USER_ERROR, UpstreamBusy, UserError, disk_full

SUMMARY = "run_summary.json"


def run_id() -> str:
    """The id of the run_all.sh run this process belongs to ("" for a stage run alone)."""
    return os.environ.get("INVERSE_DVS_RUN_ID", "")


def _run_file(work_dir: Path, rid: str) -> Path:
    return Path(work_dir) / "logs" / "runs" / f"{rid}.json"


def read_summary(work_dir: str | Path, rid: str | None = None) -> dict:
    """The summary of run `rid` (its own file, which no other run writes), or with rid None or "" the work folder's
    `run_summary.json` (the run that wrote last); {} when there is none."""
    path = _run_file(Path(work_dir), rid) if rid else Path(work_dir) / SUMMARY
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def _summary_lock(work_dir: Path):
    path = Path(work_dir) / "logs" / ".summary.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def record_section(work_dir: str | Path, stage: str, section: dict, new_run: bool = False) -> None:
    """Put one stage's section into this run's summary (`new_run`: start it afresh, as preflight does) and make that
    `run_summary.json`; a stage run alone updates `run_summary.json` in place. Under a file lock, so processes of
    several runs finishing at once lose nothing."""
    work_dir = Path(work_dir)
    rid = run_id()
    with _summary_lock(work_dir):
        summary = {} if new_run else read_summary(work_dir, rid)
        summary[stage] = section
        if rid:
            write_json(_run_file(work_dir, rid), summary)
        write_json(work_dir / SUMMARY, summary)


_COLLECTORS: list[list[ItemResult]] = []


@contextlib.contextmanager
def collected():
    """Within this block a stage hands its item results to the list it yields instead of writing them into the run's
    summary and log files: for a driver that runs one item per stage call in many workers (`inverse_dvs.cluster`)
    and writes the summary once, for all of them. Items failed in an earlier stage are the driver's to skip."""
    results: list[ItemResult] = []
    _COLLECTORS.append(results)
    try:
        yield results
    finally:
        _COLLECTORS.remove(results)


@dataclass(frozen=True)
class Item:
    """What one stage item is: its video, trajectory and sweep point's run tag (None where the stage has none: depth
    items are videos, warp and invert items (trajectory, video) pairs, infer items add the run)."""

    video: str | None = None
    trajectory: str | None = None
    run: str | None = None

    @property
    def label(self) -> str:
        """`trajectory=… video=… run=…` (the parts it has), for messages."""
        return " ".join(f"{k}={v}" for k, v in (("trajectory", self.trajectory), ("video", self.video),
                                                  ("run", self.run)) if v is not None)

    def __str__(self) -> str:
        return self.label

    def covers(self, other: Item) -> bool:
        """Whether this item failing stands in for `other`: the same video and trajectory where this one names them
        (a failed video fails every item of that video; a failed (trajectory, video) every run of it)."""
        return self.video in (None, other.video) and self.trajectory in (None, other.trajectory)

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data) -> Item:
        """An item as a summary stores it ({video, trajectory, run}); anything else (an older summary's text) is
        an item of nothing, which covers nothing."""
        if not isinstance(data, dict):
            return cls(run=str(data))
        return cls(**{k: data.get(k) for k in ("video", "trajectory", "run")})


@dataclass(frozen=True)
class ItemResult:
    item: Item
    status: str  # done | skipped | busy (its input is another process's, not run here) | failed
    seconds: float
    reason: str = ""
    process: int = 0
    user_error: bool = False

    def to_json(self) -> dict:
        return {**asdict(self), "item": self.item.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> ItemResult:
        return cls(**{**data, "item": Item.from_json(data.get("item"))})


@dataclass(frozen=True)
class Processes:
    """This process's place in a launch of several processes (`accelerate launch`)."""

    index: int
    count: int
    device: str  # accelerate's device for this process: its own GPU (`cuda:LOCAL_RANK`), or `cpu`
    token: str  # one id shared by every process of this stage run; marks its barrier files
    per_item: int = 1  # processes that compute each item together (run.context_parallel); `index`, `count`: groups


def process_state() -> Processes | None:
    """The processes of this launch when `accelerate launch` started several, else None.

    Without CUDA the processes talk over gloo on the CPU (accelerate's MULTI_CPU), e.g. for
    `accelerate launch --multi_gpu --num_processes 2 -m inverse_dvs.infer` on a CPU-only machine. The only collective
    is one broadcast of the run token, here, while every process is still at the start of the stage; the end of the
    stage waits on files instead (`StageRunner.finish`), since processes may finish hours apart.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState(cpu=not torch.cuda.is_available())
    end_process_group_at_exit()
    token = [uuid.uuid4().hex if state.is_main_process else ""]
    broadcast_object_list(token, from_process=0)
    return Processes(state.process_index, state.num_processes, str(state.device), token[0])


def run_grouped(context_parallel, state: Processes | None, transformer_of: Callable[[], Any], log: logging.Logger,
                body: Callable[[Processes | None], int]) -> int:
    """Run a model stage's items, `body(state)`, under `run.context_parallel` (config.schema.ContextParallel): with
    degree 1 as they are; else this process joins its group (models/context_parallel.py), a group leader runs `body`
    with the group as its process (group g of G takes the items process g of G would), and the others serve its
    transformer calls (`transformer_of()` loads theirs) until it is done. Every process returns the leader's code."""
    from ..models.context_parallel import join, serve

    group = join(context_parallel.ulysses, context_parallel.ring)  # ConfigError when the launch does not fit
    if group is None:
        return body(state)
    if not group.leader:
        return serve(group, transformer_of, log)
    code = EXIT_ITEMS_FAILED
    try:
        code = body(Processes(group.index, group.count, state.device, state.token, group.size))
    except UserError:
        code = EXIT_USER_ERROR
        raise
    finally:
        group.end(code)
    return code


def duration(seconds: float) -> str:
    """12 s, 3 min 05 s, 1 h 02 min."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class StageRunner:
    """Runs the items of one stage in this process: its shard only, each failure isolated."""

    def __init__(self, stage: str, work_dir: Path, force: bool, log: logging.Logger, state: Processes | None = None,
                 poll_seconds: float = 2.0, total: int | None = None):
        """`total`: the stage's items over every process, for the progress line (item n of N, ETA)."""
        self.stage, self.work_dir, self.force, self.log, self.state = stage, Path(work_dir), force, log, state
        self.index = state.index if state is not None else 0
        self.count = state.count if state is not None else 1
        self.poll_seconds = poll_seconds
        self.results: list[ItemResult] = []
        self._next = 0
        self._mine = len(range(self.index, total, self.count)) if total is not None else None
        self._started = time.perf_counter()
        self._aside: list[_Aside] = []  # items another process holds, tried again before the stage ends
        self._collector = _COLLECTORS[-1] if _COLLECTORS else None
        self._upstream_failed = [] if self._collector is not None else self._failed_earlier()

    def _failed_earlier(self) -> list[tuple[Item, str]]:
        """(item, stage) of the items that failed in an earlier stage of this run_all.sh run."""
        rid = run_id()
        if not rid:
            return []
        out = []
        for stage, section in read_summary(self.work_dir, rid).items():
            if not isinstance(section, dict) or stage == self.stage:
                continue
            for it in section.get("items", []):
                if it.get("status") == "failed":
                    out.append((Item.from_json(it.get("item")), stage))
        return out

    def _earlier_failure(self, item: Item) -> str | None:
        for failed, stage in self._upstream_failed:
            if failed.covers(item):
                return stage
        return None

    def run(self, item: Item, folder: Path, depends: Mapping[str, Any], inputs: Callable[[], Mapping[str, str]],
            compute) -> None:
        """Run one item if it belongs to this process. `inputs` is evaluated only for owned items; a UserError or
        any other exception there or in `compute` marks the item failed. An item another process is computing, or
        whose input it is computing, is put aside and tried again when that has finished (`finish`)."""
        mine = self._next % self.count == self.index
        self._next += 1
        if not mine:
            return
        earlier = self._earlier_failure(item)
        if earlier is not None:  # reported there already; run_all.sh names it once in its summary
            self.log.info("%s %s: not run, the %s stage failed for it in this run.", self.stage, item, earlier)
            self.results.append(ItemResult(item, "failed", 0.0, f"not run: {earlier} failed for it", self.index,
                                           True))
            return
        self._progress(item)
        self._attempt(_Aside(item, Path(folder), depends, inputs, compute, Path(folder)))

    def _progress(self, item: Item) -> None:
        """The run's progress line, one per item: the step of run_all.sh (INVERSE_DVS_STEP, "k/K"), the stage, item n
        of N of this process, the time so far and the stage's ETA (the mean time of the items computed so far, times
        those left; up-to-date items take almost none, so it errs long)."""
        n = len(self.results) + len(self._aside) + 1
        where = f"step {os.environ['INVERSE_DVS_STEP']} " if os.environ.get("INVERSE_DVS_STEP") else ""
        who = f", process {self.index + 1} of {self.count}" if self.count > 1 else ""
        done = [r.seconds for r in self.results if r.status == "done"]
        left = (self._mine - n + 1) if self._mine is not None else None
        eta = (f" · ETA {duration(sum(done) / len(done) * left)} for this stage" if done and left is not None
               else "")
        of = f" of {self._mine}" if self._mine is not None else ""
        self.log.info("[%s%s%s] item %d%s: %s · %s so far%s", where, self.stage, who, n, of, item.label,
                      duration(time.perf_counter() - self._started), eta)

    def _attempt(self, job: _Aside) -> None:
        """Try one item: its result, or put aside (another process holds it or the input it needs)."""
        item, folder, label = job.item, job.folder, job.item.label
        t0 = time.perf_counter()
        lock = ItemLock(folder)
        holder = lock.acquire()
        if holder is not None:
            self.log.info("%s %s: in progress in another process (%s); coming back to it when that has finished.",
                          self.stage, label, holder)
            self._aside.append(job._replace(wait_on=folder))
            return
        try:
            for p in clean_partials(folder):
                self.log.info("%s %s: removed %s left by an interrupted run", self.stage, label, p.name)
            status = run_item(folder, self.stage, job.depends, job.inputs(), self.force, label, job.compute, self.log,
                              process_index=self.index)
            self.results.append(ItemResult(item, status, round(time.perf_counter() - t0, 3), process=self.index))
        except UpstreamBusy as exc:
            self.log.info("%s %s: waiting: %s", self.stage, label, exc)
            self._aside.append(job._replace(wait_on=Path(exc.folder) if exc.folder else folder))
        except UserError as exc:
            self._failed(item, t0, str(exc), True)
        except Exception as exc:  # isolate any failing item; KeyboardInterrupt still stops the run
            if (full := disk_full(exc, folder)) is not None:  # every later item would fail too: stop, exit 2
                raise full from exc
            self.log.exception("%s %s: failed", self.stage, label)
            self._failed(item, t0, f"{type(exc).__name__}: {exc}", False)
        finally:
            lock.release()
            with contextlib.suppress(OSError):  # an item stopped before writing anything leaves no empty folder
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()

    def _settle(self) -> None:
        """Wait for each item put aside until the folder it waits on is free, then try it again (it may be put aside
        again, by a third process). Waits as long as the holder lives: a lock of a dead process is free."""
        while self._aside:
            job = self._aside.pop(0)
            lock, waited, next_note = ItemLock(job.wait_on), 0.0, 0.0
            while (holder := lock.holder()) is not None:
                if waited >= next_note:
                    self.log.info("%s %s: waiting for %s (%s) to finish it.", self.stage, job.item,
                                  "another process" if job.wait_on == job.folder else job.wait_on, holder)
                    next_note = waited + 600.0
                time.sleep(self.poll_seconds)
                waited += self.poll_seconds
            self._attempt(job)

    def fail(self, item: Item, exc: UserError) -> None:
        """Record an item of this process as failed before it could start (e.g. its prompt is not available)."""
        mine = self._next % self.count == self.index
        self._next += 1
        if not mine:
            return
        if isinstance(exc, UpstreamBusy):  # e.g. its caption in progress elsewhere: not run here, never a failure
            self.log.warning("%s %s: not run here: %s", self.stage, item, exc)
            self.results.append(ItemResult(item, "busy", 0.0, str(exc), self.index))
        elif (earlier := self._earlier_failure(item)) is None:
            self._failed(item, time.perf_counter(), str(exc), True)
        else:  # reported by the earlier stage already
            self.results.append(ItemResult(item, "failed", 0.0, f"not run: {earlier} failed for it", self.index,
                                           True))

    def _failed(self, item: Item, t0: float, reason: str, user_error: bool) -> None:
        self.log.error("%s %s: failed: %s", self.stage, item, reason)
        self.results.append(ItemResult(item, "failed", round(time.perf_counter() - t0, 3), reason, self.index,
                                       user_error))

    def _rank_file(self, logs: Path, rank: int, token: str) -> Path:
        """Where process `rank` of this stage run writes its results: named by the run's token when there are
        several processes, so two launches on one work_dir never read each other's."""
        suffix = f".{token[:12]}" if self.count > 1 else ""
        return logs / f"{self.stage}.rank{rank}{suffix}.json"

    def _wait_for_all(self, logs: Path, token: str) -> list[list[dict]]:
        """Wait until every process of this stage run has written its results (same token), then return them by rank.

        A barrier on files rather than a collective: a process with fewer or quicker items (skipped ones take no
        time) may wait hours for one still loading, compiling or sampling, far past NCCL's default 10-minute timeout.
        The launcher ends the waiting processes if another one dies."""
        waited, next_note = 0.0, 0.0
        while True:
            per_rank = []
            for r in range(self.count):
                try:
                    data = json.loads(self._rank_file(logs, r, token).read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    data = None
                if not isinstance(data, dict) or data.get("token") != token:
                    break  # not written yet in this run (a file left by an earlier run has another token)
                per_rank.append(data["items"])
            if len(per_rank) == self.count:
                return per_rank
            if waited >= next_note:
                self.log.info("%s: process %d is done; waiting for process(es) %s to finish their items.", self.stage,
                              self.index, ", ".join(map(str, range(len(per_rank), self.count))))
                next_note = waited + 600.0
            time.sleep(self.poll_seconds)
            waited += self.poll_seconds

    def finish(self) -> int:
        """Settle the items put aside, write this process's results, merge all processes' into the run's summary
        (main process), print it; return EXIT_OK, EXIT_USER_ERROR (every failed item's input is bad) or
        EXIT_ITEMS_FAILED."""
        self._settle()
        if self._collector is not None:
            self._collector.extend(self.results)
            return _exit_code(self.results)
        logs = self.work_dir / "logs"
        token = self.state.token if self.state is not None else ""
        write_json(self._rank_file(logs, self.index, token),
                   {"token": token, "items": [r.to_json() for r in self.results]})
        results = list(self.results)
        if self.count > 1:
            per_rank = self._wait_for_all(logs, token)
            if self.index == 0:
                results = [ItemResult.from_json(x) for items in per_rank for x in items]
        if self.index == 0:
            per_item = self.state.per_item if self.state is not None else 1
            grouped = {"groups": self.count, "processes_per_item": per_item} if per_item > 1 else {}
            record_section(self.work_dir, self.stage, {"processes": self.count * per_item, **grouped,
                                                       "run_id": run_id(), "items": [r.to_json() for r in results],
                                                       "failed": sum(r.status == "failed" for r in results)})
            if results:
                lines = [f"{self.stage} summary ({self.count} process(es)):"]
                lines += [f"  {r.status:<8} {r.seconds:7.1f} s  {r.item}" + (f"  — {r.reason}" if r.reason else "")
                          for r in results]
                self.log.info("\n".join(lines))
        failed = [r for r in results if r.status == "failed"]
        if failed:
            others = len(results) - len(failed)
            tail = (f"; the other {others} item(s) are complete" if others
                    and not any(r.status == "busy" for r in results)
                    else (f"; {others} other item(s) are complete or in progress elsewhere" if others else ""))
            self.log.error("%s: %d item(s) failed (see above and %s)%s.", self.stage, len(failed),
                           self.work_dir / SUMMARY, tail)
        return _exit_code(results)


def _exit_code(results: list[ItemResult]) -> int:
    """EXIT_OK, EXIT_USER_ERROR (every failed item's input is bad) or EXIT_ITEMS_FAILED."""
    failed = [r for r in results if r.status == "failed"]
    if not failed:
        return EXIT_OK
    return EXIT_USER_ERROR if all(r.user_error for r in failed) else EXIT_ITEMS_FAILED


class _Aside(NamedTuple):
    """An item to try (again): what `StageRunner.run` was given, and the folder whose lock it waits for."""

    item: Item
    folder: Path
    depends: Mapping[str, Any]
    inputs: Callable[[], Mapping[str, str]]
    compute: Any
    wait_on: Path
