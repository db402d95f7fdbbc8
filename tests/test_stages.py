"""stages: the one stage list, and the steps run_all.sh reads from it."""

import subprocess
import sys

from inverse_dvs.stages import MODEL_STAGES, STAGES, steps


def test_run_all_steps_come_from_the_stage_list():
    assert STAGES[0] == "preflight" and set(MODEL_STAGES) < set(STAGES)
    assert steps() == [("depth",), ("warp",), ("caption",), ("chain", "invert", "infer")]
    assert steps(evaluate=True)[-1] == ("evaluate",)
    out = subprocess.run([sys.executable, "-m", "inverse_dvs.stages", "--evaluate"], capture_output=True, text=True,
                         check=True).stdout
    assert out.splitlines() == [" ".join(s) for s in steps(evaluate=True)]
