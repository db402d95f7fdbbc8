"""Tests of runner.workqueue."""

import json


def test_the_stage_end_waits_on_files_for_a_slow_process(tmp_path):
    """Processes meet at the end of a stage through their result files, not an NCCL barrier (whose 10-minute default
    timeout a process still loading, compiling or sampling would outlast); files of an earlier run do not count."""
    import logging
    import threading
    import time

    from inverse_dvs.runner.workqueue import Item, Processes, StageRunner

    log = logging.getLogger("inverse_dvs.test")
    work = tmp_path / "w"
    (work / "logs").mkdir(parents=True)
    (work / "logs/infer.rank1.json").write_text(json.dumps({"token": "an earlier run", "items": []}))
    runners = [StageRunner("infer", work, False, log, Processes(r, 2, "cpu", "this run"), poll_seconds=0.05)
               for r in (0, 1)]
    finished, codes = {}, {}

    def process(rank: int, delay: float) -> None:
        runner = runners[rank]
        for name in ("a", "b", "c", "d"):  # every process walks all items and runs its own (i mod 2)
            runner.run(Item(video=name), work / name, {}, dict, lambda folder: ([], {}))
        time.sleep(delay)
        codes[rank] = runner.finish()
        finished[rank] = time.perf_counter()

    threads = [threading.Thread(target=process, args=(0, 0.0)), threading.Thread(target=process, args=(1, 0.6))]
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert threads[0].is_alive() and 0 not in finished  # done with its items, waiting for process 1
    for t in threads:
        t.join(timeout=30)
    assert codes == {0: 0, 1: 0} and finished[0] >= finished[1] - 0.1
    summary = json.loads((work / "run_summary.json").read_text())["infer"]
    assert {(i["item"]["video"], i["process"]) for i in summary["items"]} == {("a", 0), ("b", 1), ("c", 0), ("d", 1)}


def test_items_are_values_and_a_failure_covers_only_its_own_video():
    """An item is its (video, trajectory, run), not a formatted string: a failed video `cat` stands in for its own
    items only, never for those of `cat2` (which a substring match of 'video=cat' would also hit)."""
    from inverse_dvs.runner.workqueue import Item, ItemResult

    cat = Item(video="cat")
    assert cat.covers(Item(video="cat", trajectory="left", run="paper_x"))
    assert not cat.covers(Item(video="cat2", trajectory="left"))
    assert Item(trajectory="left").covers(Item(video="cat2", trajectory="left"))
    assert not Item(video="cat", trajectory="left").covers(Item(video="cat", trajectory="right"))
    assert Item(video="a b", trajectory="t", run="r").label == "trajectory=t video=a b run=r"
    result = ItemResult(Item(video="a b", trajectory="t"), "failed", 1.5, "why", 1, True)
    assert json.loads(json.dumps(result.to_json()))["item"] == {"video": "a b", "trajectory": "t"}
    assert ItemResult.from_json(json.loads(json.dumps(result.to_json()))) == result
    assert Item.from_json("trajectory=t video=old-style text") == Item(run="trajectory=t video=old-style text")


def test_each_item_prints_the_runs_progress_line(tmp_path, caplog, monkeypatch):
    """[step k/K stage] item n of N: label · time so far · the stage's ETA once an item has been computed; with
    several processes, each counts its own share."""
    import logging
    import time

    from inverse_dvs.runner.workqueue import Item, Processes, StageRunner, duration

    def compute(folder):
        time.sleep(0.2)
        return [], {}

    monkeypatch.setenv("INVERSE_DVS_STEP", "3/4")
    log = logging.getLogger("inverse_dvs.test")
    runner = StageRunner("infer", tmp_path / "w", False, log, total=3)
    with caplog.at_level(logging.INFO, logger="inverse_dvs.test"):
        for name in ("a", "b", "c"):
            runner.run(Item(video=name, trajectory="left"), tmp_path / "w" / name, {}, dict, compute)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[")]
    assert [line.split(":")[0] for line in lines] == [f"[step 3/4 infer] item {n} of 3" for n in (1, 2, 3)]
    assert "trajectory=left video=a · 0 s so far" in lines[0] and "ETA" not in lines[0]
    assert lines[1].endswith("· ETA 0 s for this stage")  # 0.2 s per item, 2 left
    caplog.clear()
    monkeypatch.delenv("INVERSE_DVS_STEP")
    second = StageRunner("warp", tmp_path / "v", False, log, Processes(1, 2, "cpu", "t"), total=5)
    with caplog.at_level(logging.INFO, logger="inverse_dvs.test"):
        for name in "abcde":
            second.run(Item(video=name), tmp_path / "v" / name, {}, dict, lambda folder: ([], {}))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[")]
    assert [line.split(":")[0] for line in lines] == ["[warp, process 2 of 2] item 1 of 2",
                                                       "[warp, process 2 of 2] item 2 of 2"]
    assert [duration(s) for s in (4.4, 65, 3725)] == ["4 s", "1 min 05 s", "1 h 02 min"]
