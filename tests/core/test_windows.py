"""Windows of long clips: placement, hand-over, stitching and the seam figure."""

import numpy as np
import pytest

from inverse_dvs.core.windows import Window, clip_length, hand_over, plan_windows, seam_figure, stitch


def test_a_97_frame_clip_gives_three_windows_the_last_aligned_to_the_end():
    w = plan_windows(97, 49, 9)
    assert w == [Window(0, 0, 49, 0), Window(1, 40, 89, 9), Window(2, 48, 97, 41)]
    assert clip_length(w) == 97


@pytest.mark.parametrize(("frames", "window", "overlap", "last"), [
    (97, 49, 9, "end"), (89, 49, 9, "end"), (200, 49, 9, "end"), (200, 49, 13, "drop"), (130, 49, 17, "drop"),
    (49, 49, 9, "end"), (33, 49, 9, "end"), (50, 49, 9, "end"), (50, 49, 9, "drop")])
def test_windows_cover_the_clip_once_apart_from_the_overlaps(frames, window, overlap, last):
    wins = plan_windows(frames, window, overlap, last)
    count = np.zeros(frames, int)
    for i, w in enumerate(wins):
        assert w.index == i and w.end - w.start == min(window, frames)
        count[w.start:w.end] += 1
        if i:  # each window starts inside the one before and takes over exactly the shared frames
            assert w.overlap == wins[i - 1].end - w.start and 0 < w.overlap < window
        else:
            assert w.start == 0 and w.overlap == 0
    shared = np.zeros(frames, int)
    for w in wins[1:]:
        shared[w.start:w.start + w.overlap] += 1
    covered = clip_length(wins)
    assert np.array_equal(count[:covered], 1 + shared[:covered]) and not count[covered:].any()
    if last == "end":
        assert covered == frames
    else:  # drop: only frames that would need a window past the clip's end are left out
        assert frames - covered < window - overlap
    if len(wins) > 1 and (last == "drop" or wins[-1].overlap == overlap):
        assert all(w.overlap == overlap for w in wins[1:])


def test_bad_policies_are_refused():
    with pytest.raises(ValueError, match="overlap"):
        plan_windows(100, 49, 49)
    with pytest.raises(ValueError, match="last-window"):
        plan_windows(100, 49, 9, "pad")


def test_hand_over_takes_the_previous_output_at_the_same_clip_positions(rng):
    render = rng.integers(0, 255, (97, 4, 6, 3), dtype=np.uint8)
    vis = rng.random((97, 4, 6)).astype(np.float32)
    prev, win = Window(1, 40, 89, 9), Window(2, 48, 97, 41)
    previous = rng.integers(0, 255, (49, 4, 6, 3), dtype=np.uint8)
    frames, visible = hand_over(render, vis, previous, win, prev)
    assert frames.shape == (49, 4, 6, 3) and visible.shape == (49, 4, 6)
    assert np.array_equal(frames[:41], previous[8:49])  # clip frames 48..88 of window 1's output
    assert np.array_equal(frames[0], previous[48 - 40])  # the image condition: its output at the window's start
    assert np.array_equal(frames[41:], render[89:97]) and np.array_equal(visible[41:], vis[89:97])
    assert (visible[:41] == 1).all()
    assert not np.array_equal(render[48], frames[0])  # the render itself is left as it was


def test_stitch_keeps_or_cross_fades_the_overlaps():
    wins = plan_windows(97, 49, 9)
    outs = [np.full((49, 2, 2, 3), v, np.uint8) for v in (0, 100, 200)]
    kept = stitch(outs, wins, "previous")
    assert kept.shape[0] == 97
    assert (kept[:49] == 0).all() and (kept[49:89] == 100).all() and (kept[89:] == 200).all()
    faded = stitch(outs, wins, "crossfade")
    assert (faded[:40] == 0).all()
    ramp = faded[40:49, 0, 0, 0].astype(int)  # window 0 → 1 over its 9 shared frames
    assert np.all(np.diff(ramp) > 0) and 0 < ramp[0] < 20 and 80 < ramp[-1] < 100
    assert (faded[89:] == 200).all()
    ramp2 = faded[48:89, 0, 0, 0].astype(int)  # window 1 → 2 over 41 frames
    assert np.all(np.diff(ramp2) >= 0) and ramp2[0] < 110 and ramp2[-1] > 190


def test_seam_figure_sees_a_jump_at_a_boundary_and_none_in_a_smooth_clip():
    wins = plan_windows(97, 49, 9)
    t = np.arange(97, dtype=np.float32)[:, None, None, None]
    smooth = np.broadcast_to(np.clip(20 + t, 0, 255), (97, 4, 4, 3)).astype(np.uint8)
    s = seam_figure(smooth, wins)
    assert s["inside_median_change"] == pytest.approx(1.0)
    assert [b["ratio"] for b in s["boundaries"]] == [pytest.approx(1.0), pytest.approx(1.0)]
    jumped = smooth.copy()
    jumped[45:] += 30  # a cut inside window 1's hand-over
    j = seam_figure(jumped, wins)
    assert j["boundaries"][0]["ratio"] > 20 and j["boundaries"][0]["frames"] == [40, 49]
