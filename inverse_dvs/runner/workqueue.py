"""Work items of a stage: deterministic sharding over processes, failure isolation, and the run summary.

Every process enumerates the same items in the same order; item i belongs to process i mod N (N = accelerate's
`num_processes`, 1 without `accelerate launch`). So no two processes ever write the same item, and results do not
depend on N (seeds come from the item, never from the rank). A failing item is logged and recorded, the others go
on; at the end each process writes `{work_dir}/logs/{stage}.rank{R}.json`, and the main process merges them into
`{work_dir}/run_summary.json` and prints one line per item.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..infra.artifacts import ItemLock, clean_partials, run_item, write_json
from ..infra.errors import EXIT_USER_ERROR, UpstreamBusy, UserError

EXIT_ITEM_FAILED = 1


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
    status: str  # done | skipped | busy (another process holds it) | failed
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
    token = [uuid.uuid4().hex if state.is_main_process else ""]
    broadcast_object_list(token, from_process=0)
    return Processes(state.process_index, state.num_processes, str(state.device), token[0])


class StageRunner:
    """Runs the items of one stage in this process: its shard only, each failure isolated."""

    def __init__(self, stage: str, work_dir: Path, force: bool, log: logging.Logger, state: Processes | None = None,
                 poll_seconds: float = 2.0):
        self.stage, self.work_dir, self.force, self.log, self.state = stage, Path(work_dir), force, log, state
        self.index = state.index if state is not None else 0
        self.count = state.count if state is not None else 1
        self.poll_seconds = poll_seconds
        self.results: list[ItemResult] = []
        self._next = 0
        self._upstream_failed = self._failed_earlier()

    def _failed_earlier(self) -> list[tuple[Item, str]]:
        """(item, stage) of the items that failed in an earlier stage of this run_all.sh run."""
        run_id = os.environ.get("INVERSE_DVS_RUN_ID")
        try:
            summary = json.loads((self.work_dir / "run_summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        out = []
        for stage, section in summary.items():
            if not run_id or not isinstance(section, dict) or section.get("run_id") != run_id or stage == self.stage:
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
        any other exception there or in `compute` marks the item failed."""
        mine = self._next % self.count == self.index
        self._next += 1
        if not mine:
            return
        label = item.label
        earlier = self._earlier_failure(item)
        if earlier is not None:  # reported there already; run_all.sh names it once in its summary
            self.log.info("%s %s: not run, the %s stage failed for it in this run.", self.stage, label, earlier)
            self.results.append(ItemResult(item, "failed", 0.0, f"not run: {earlier} failed for it", self.index,
                                           True))
            return
        t0 = time.perf_counter()
        lock = ItemLock(folder)
        holder = lock.acquire()
        if holder is not None:
            self.log.warning("%s %s: skipped, in progress in another process (%s); rerun when it has finished.",
                             self.stage, label, holder)
            self.results.append(ItemResult(item, "busy", 0.0, f"in progress: {holder}", self.index))
            return
        try:
            for p in clean_partials(folder):
                self.log.info("%s %s: removed %s left by an interrupted run", self.stage, label, p.name)
            status = run_item(folder, self.stage, depends, inputs(), self.force, label, compute, self.log,
                              process_index=self.index)
            self.results.append(ItemResult(item, status, round(time.perf_counter() - t0, 3), process=self.index))
        except UpstreamBusy as exc:
            self.log.warning("%s %s: skipped: %s", self.stage, label, exc)
            self.results.append(ItemResult(item, "busy", 0.0, str(exc), self.index))
        except UserError as exc:
            self._failed(item, t0, str(exc), True)
        except Exception as exc:  # isolate any failing item; KeyboardInterrupt still stops the run
            self.log.exception("%s %s: failed", self.stage, label)
            self._failed(item, t0, f"{type(exc).__name__}: {exc}", False)
        finally:
            lock.release()
            with contextlib.suppress(OSError):  # an item stopped before writing anything leaves no empty folder
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()

    def fail(self, item: Item, exc: UserError) -> None:
        """Record an item of this process as failed before it could start (e.g. its prompt is not available)."""
        mine = self._next % self.count == self.index
        self._next += 1
        if not mine:
            return
        if isinstance(exc, UpstreamBusy):
            self.log.warning("%s %s: skipped: %s", self.stage, item, exc)
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
                    data = json.loads((logs / f"{self.stage}.rank{r}.json").read_text(encoding="utf-8"))
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
        """Write this process's results, merge all processes' into run_summary.json (main process), print the
        summary; return 0, EXIT_USER_ERROR (bad input in some item) or EXIT_ITEM_FAILED."""
        logs = self.work_dir / "logs"
        token = self.state.token if self.state is not None else ""
        write_json(logs / f"{self.stage}.rank{self.index}.json",
                   {"token": token, "items": [r.to_json() for r in self.results]})
        results = list(self.results)
        if self.count > 1:
            per_rank = self._wait_for_all(logs, token)
            if self.index == 0:
                results = [ItemResult.from_json(x) for items in per_rank for x in items]
        if self.index == 0:
            summary_path = self.work_dir / "run_summary.json"
            try:
                summary = json.loads(summary_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                summary = {}
            summary[self.stage] = {"processes": self.count, "run_id": os.environ.get("INVERSE_DVS_RUN_ID", ""),
                                   "items": [r.to_json() for r in results],
                                   "failed": sum(r.status == "failed" for r in results)}
            write_json(summary_path, summary)
            if results:
                lines = [f"{self.stage} summary ({self.count} process(es)):"]
                lines += [f"  {r.status:<8} {r.seconds:7.1f} s  {r.item}" + (f"  — {r.reason}" if r.reason else "")
                          for r in results]
                self.log.info("\n".join(lines))
        failed = [r for r in results if r.status == "failed"]
        if not failed:
            return 0
        others = len(results) - len(failed)
        tail = (f"; the other {others} item(s) are complete" if others and not any(r.status == "busy" for r in results)
                else (f"; {others} other item(s) are complete or in progress elsewhere" if others else ""))
        self.log.error("%s: %d item(s) failed (see above and %s)%s.", self.stage, len(failed),
                       self.work_dir / "run_summary.json", tail)
        return EXIT_USER_ERROR if all(r.user_error for r in failed) else EXIT_ITEM_FAILED
