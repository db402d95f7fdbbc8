"""summary: run_all.sh's end-of-run report."""

from inverse_dvs.runner.workqueue import Item
from inverse_dvs.summary import failures, item_counts


def test_a_failed_item_is_named_once_at_the_stage_it_failed_in():
    summary = {
        "depth": {"run_id": "r", "items": [{"item": {"video": "bad"}, "status": "failed", "reason": "corrupt"},
                                           {"item": {"video": "good"}, "status": "done"},
                                           {"item": {"video": "bad2"}, "status": "done"}]},
        "warp": {"run_id": "r", "items": [{"item": {"trajectory": "a", "video": "bad"}, "status": "failed",
                                           "reason": "x"},
                                          {"item": {"trajectory": "a", "video": "bad2"}, "status": "failed",
                                           "reason": "y"},
                                          {"item": {"trajectory": "a", "video": "good"}, "status": "skipped"}]},
        "infer": {"run_id": "old", "items": [{"item": {"trajectory": "a", "video": "good", "run": "p"},
                                              "status": "failed"}]},
    }
    # not the old infer section; `bad2` is not covered by the failure of `bad`
    assert [(s, i) for s, i, _ in failures(summary, "r")] == [("depth", Item(video="bad")),
                                                               ("warp", Item(video="bad2", trajectory="a"))]
    counts = item_counts(summary, "r")  # this run's items only
    assert counts[("depth", "-")] == {"failed": 1, "done": 2} and counts[("warp", "a")] == {"failed": 2, "skipped": 1}
    assert ("infer", "a") not in counts
