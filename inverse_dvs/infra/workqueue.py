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

from .artifacts import ItemLock, clean_partials, run_item, write_json
from .errors import EXIT_USER_ERROR, UpstreamBusy, UserError

EXIT_ITEM_FAILED = 1


@dataclass(frozen=True)
class ItemResult:
    item: str
    status: str  # done | skipped | busy (another process holds it) | failed
    seconds: float
    reason: str = ""
    process: int = 0
    user_error: bool = False


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


def item_key(label: str) -> tuple[str, str]:
    """(video, trajectory) of an item label like 'trajectory=a video=b run=…' ('' where the label has none)."""
    parts = dict(p.split("=", 1) for p in label.split() if "=" in p)
    return parts.get("video", ""), parts.get("trajectory", "")


def covers(failed: tuple[str, str], key: tuple[str, str]) -> bool:
    """Whether a failed (video, trajectory) item — '' for a whole video or trajectory — stands in for `key`."""
    return failed[0] in ("", key[0]) and failed[1] in ("", key[1])


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

    def _failed_earlier(self) -> list[tuple[str, str, str]]:
        """(video, trajectory, stage) of items that failed in an earlier stage of this run_all.sh run ('' = any)."""
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
                    out.append((*item_key(it["item"]), stage))
        return out

    def _earlier_failure(self, label: str) -> str | None:
        key = item_key(label)
        for video, traj, stage in self._upstream_failed:
            if covers((video, traj), key):
                return stage
        return None

    def run(self, label: str, folder: Path, depends: Mapping[str, Any], inputs: Callable[[], Mapping[str, str]],
            compute) -> None:
        """Run one item if it belongs to this process. `inputs` is evaluated only for owned items; a UserError or
        any other exception there or in `compute` marks the item failed."""
        mine = self._next % self.count == self.index
        self._next += 1
        if not mine:
            return
        earlier = self._earlier_failure(label)
        if earlier is not None:  # reported there already; run_all.sh names it once in its summary
            self.log.info("%s %s: not run, the %s stage failed for it in this run.", self.stage, label, earlier)
            self.results.append(ItemResult(label, "failed", 0.0, f"not run: {earlier} failed for it", self.index,
                                           True))
            return
        t0 = time.perf_counter()
        lock = ItemLock(folder)
        holder = lock.acquire()
        if holder is not None:
            self.log.warning("%s %s: skipped, in progress in another process (%s); rerun when it has finished.",
                             self.stage, label, holder)
            self.results.append(ItemResult(label, "busy", 0.0, f"in progress: {holder}", self.index))
            return
        try:
            for p in clean_partials(folder):
                self.log.info("%s %s: removed %s left by an interrupted run", self.stage, label, p.name)
            status = run_item(folder, self.stage, depends, inputs(), self.force, label, compute, self.log,
                              process_index=self.index)
            self.results.append(ItemResult(label, status, round(time.perf_counter() - t0, 3), process=self.index))
        except UpstreamBusy as exc:
            self.log.warning("%s %s: skipped: %s", self.stage, label, exc)
            self.results.append(ItemResult(label, "busy", 0.0, str(exc), self.index))
        except UserError as exc:
            self._failed(label, t0, str(exc), True)
        except Exception as exc:  # isolate any failing item; KeyboardInterrupt still stops the run
            self.log.exception("%s %s: failed", self.stage, label)
            self._failed(label, t0, f"{type(exc).__name__}: {exc}", False)
        finally:
            lock.release()
            with contextlib.suppress(OSError):  # an item stopped before writing anything leaves no empty folder
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()

    def fail(self, label: str, exc: UserError) -> None:
        """Record an item of this process as failed before it could start (e.g. its prompt is not available)."""
        mine = self._next % self.count == self.index
        self._next += 1
        if not mine:
            return
        if isinstance(exc, UpstreamBusy):
            self.log.warning("%s %s: skipped: %s", self.stage, label, exc)
            self.results.append(ItemResult(label, "busy", 0.0, str(exc), self.index))
        elif (earlier := self._earlier_failure(label)) is None:
            self._failed(label, time.perf_counter(), str(exc), True)
        else:  # reported by the earlier stage already
            self.results.append(ItemResult(label, "failed", 0.0, f"not run: {earlier} failed for it", self.index,
                                           True))

    def _failed(self, label: str, t0: float, reason: str, user_error: bool) -> None:
        self.log.error("%s %s: failed: %s", self.stage, label, reason)
        self.results.append(ItemResult(label, "failed", round(time.perf_counter() - t0, 3), reason, self.index,
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
                   {"token": token, "items": [asdict(r) for r in self.results]})
        results = list(self.results)
        if self.count > 1:
            per_rank = self._wait_for_all(logs, token)
            if self.index == 0:
                results = [ItemResult(**x) for items in per_rank for x in items]
        if self.index == 0:
            summary_path = self.work_dir / "run_summary.json"
            try:
                summary = json.loads(summary_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                summary = {}
            summary[self.stage] = {"processes": self.count, "run_id": os.environ.get("INVERSE_DVS_RUN_ID", ""),
                                   "items": [asdict(r) for r in results],
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
