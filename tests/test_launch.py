"""launch: one process per device, or accelerate launch with one process per GPU."""

import sys

from inverse_dvs import launch


def _cfg(tmp_path, gpus):
    p = tmp_path / "c.yml"
    p.write_text(f"videos: [{{path: v.mp4}}]\ntrajectories: {{a: {{preset: orbit_left}}}}\nrun: {{gpus: {gpus}}}\n")
    return str(p)


def test_one_device_runs_the_stage_itself_and_several_go_through_accelerate(tmp_path):
    assert launch.command("infer", ["--quiet"], _cfg(tmp_path, "null"), []) == [sys.executable, "-m",
                                                                                "inverse_dvs.infer", "--quiet"]
    cmd = launch.command("chain", ["invert", "infer"], _cfg(tmp_path, "[0, 2]"), [])
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"] and "--multi_gpu" in cmd
    assert cmd[cmd.index("--num_processes") + 1] == "2" and cmd[cmd.index("--gpu_ids") + 1] == "0,2"
    assert cmd[-4:] == ["-m", "inverse_dvs.chain", "invert", "infer"]


def test_an_unknown_stage_is_refused(capsys):
    assert launch.main(["nosuch"]) == 2
    assert "STAGE is one of" in capsys.readouterr().err
