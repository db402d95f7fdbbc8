"""The ComfyUI node pack (comfyui/) on a real ComfyUI server: the example workflow posted to /prompt with the tiny
models, its output video and frames against the Python API's for the same settings, a bad input's execution error,
and progress on the websocket. ComfyUI comes from `scripts/setup_comfyui.sh` (a ComfyUI folder or release tarball:
INVERSE_DVS_COMFYUI, else ../shared/vendor); where none is found the test skips with that reason. CI sets
INVERSE_DVS_REQUIRE_COMFYUI=1, so there it must run."""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "comfyui/workflows/orbit_api.json"


class Server(NamedTuple):
    url: str
    base: Path  # ComfyUI's --base-directory: input/, output/, custom_nodes/
    python: str  # ComfyUI's venv
    log: Path


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def comfy(tmp_path_factory, tiny_checkpoints, demo_video):
    proc = subprocess.run(["bash", str(ROOT / "scripts/setup_comfyui.sh")], capture_output=True, text=True,
                          timeout=1200)
    if proc.returncode != 0:
        reason = f"no ComfyUI to test against: {proc.stderr.strip().splitlines()[-1:]}"
        if os.environ.get("INVERSE_DVS_REQUIRE_COMFYUI"):
            pytest.fail(reason + " (this run requires the ComfyUI test)")
        pytest.skip(reason)
    folder = Path(proc.stdout.strip().splitlines()[-1])
    python = str(folder.parent / "venv/bin/python")
    base = tmp_path_factory.mktemp("comfy")
    for sub in ("custom_nodes", "input", "output", "user"):
        (base / sub).mkdir()
    (base / "custom_nodes/inverse_dvs").symlink_to(ROOT / "comfyui")  # installed as the README says: a link
    shutil.copy(demo_video, base / "input/clip.mp4")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = base / "server.log"
    server = subprocess.Popen([python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
                               "--disable-auto-launch", "--base-directory", str(base)], cwd=folder,
                              stdout=open(log, "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while True:
        try:
            _get(url + "/system_stats")
            break
        except (OSError, ValueError):
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                pytest.fail(f"ComfyUI did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    assert "InverseDVSReRender" in _get(url + "/object_info"), log.read_text()[-3000:]  # the pack loaded
    yield Server(url, base, python, log)
    server.terminate()
    server.wait(timeout=30)


def _workflow(tiny: Path) -> dict:
    """The example workflow as the README shows it, on the tiny models, CPU, a few steps; plus lossless PNGs of the
    re-rendered frames (node 12) to compare with the API."""
    wf = json.loads(WORKFLOW.read_text())
    wf["3"]["inputs"].update(model=str(tiny / "tiny-cogvideox-i2v"), method="paper", lora="none",
                             depth_model=str(tiny / "tiny-depth-anything"), device="cpu", dtype="fp32")
    wf["7"]["inputs"].update(prompt="a red ball", steps=5, strength=0.8, guidance_scale=5.0)
    wf["12"] = {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "frames/out"}}
    return wf


def _run(server: Server, workflow: dict, timeout: float = 900) -> tuple[dict, list[dict]]:
    """POST a workflow, follow it on the websocket until it ends: (its /history entry, the websocket's messages)."""
    import websocket

    client = uuid.uuid4().hex
    ws = websocket.create_connection(server.url.replace("http", "ws") + f"/ws?clientId={client}", timeout=timeout)
    body = json.dumps({"prompt": workflow, "client_id": client}).encode()
    req = urllib.request.Request(server.url + "/prompt", data=body, headers={"Content-Type": "application/json"})
    try:
        prompt = json.loads(urllib.request.urlopen(req, timeout=60).read())["prompt_id"]
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"/prompt refused the workflow: {exc.read().decode()[:3000]}") from None
    messages = []
    while True:
        raw = ws.recv()
        if not isinstance(raw, str):
            continue  # preview images
        msg = json.loads(raw)
        messages.append(msg)
        data = msg.get("data", {})
        if data.get("prompt_id") == prompt and (msg["type"] == "execution_error" or
                                                (msg["type"] == "executing" and data.get("node") is None)):
            break
    ws.close()
    for _ in range(50):  # the history entry is written just after the last message
        history = _get(f"{server.url}/history/{prompt}")
        if prompt in history:
            return history[prompt], messages
        time.sleep(0.1)
    raise AssertionError(f"no history for {prompt}:\n{server.log.read_text()[-3000:]}")


def _decoded(server: Server, video: Path) -> np.ndarray:
    """A video's frames as ComfyUI's LoadVideo decodes them (PyAV, rgb24, in ComfyUI's venv)."""
    out = video.with_suffix(".npy")
    code = ("import av, numpy, sys; c = av.open(sys.argv[1]); "
            "numpy.save(sys.argv[2], numpy.stack([f.to_ndarray(format='rgb24') for f in c.decode(video=0)]))")
    subprocess.run([server.python, "-c", code, str(video), str(out)], check=True, timeout=120)
    return np.load(out)


@pytest.mark.slow
def test_the_example_workflow_runs_on_a_real_server_and_matches_the_api(comfy, tiny_checkpoints):
    from PIL import Image

    from inverse_dvs import InverseDVSPipeline

    entry, messages = _run(comfy, _workflow(tiny_checkpoints))
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    progress = [m["data"] for m in messages if m["type"] == "progress"]
    assert any(p["node"] == "7" and p["value"] == p["max"] for p in progress), progress  # the re-render's bar

    saved = {p.name: p for p in (comfy.base / "output/inverse_dvs").glob("*.mp4")}
    orbit = next(p for name, p in saved.items() if name.startswith("orbit"))
    frames = _decoded(comfy, orbit)
    assert frames.shape == (49, 96, 144, 3)  # the tiny model's clip: 49 frames, 144×96
    assert any(name.startswith("render") for name in saved)  # the warp, saved for a look before sampling

    pngs = sorted((comfy.base / "output/frames").glob("out_*.png"))
    nodes = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in pngs])
    source = _decoded(comfy, comfy.base / "input/clip.mp4")  # what GetVideoComponents gave the nodes
    pipe = InverseDVSPipeline.from_pretrained(
        tiny_checkpoints / "tiny-cogvideox-i2v", "paper", device="cpu", dtype="fp32",
        model={"lora": None, "lora_weight_name": None}, depth={"model": str(tiny_checkpoints / "tiny-depth-anything")},
        caption={"source": "off"})
    pipe.set_progress_bar_config(disable=True)
    api = pipe(source, {"preset": "orbit_left", "amount": 20.0}, prompt="a red ball", steps=5, strength=0.8,
               guidance_scale=5.0, seed=42).frames
    as_saved = np.clip(255.0 * (api.astype(np.float32) / np.float32(255.0)), 0, 255).astype(np.uint8)  # SaveImage's
    assert nodes.shape == api.shape and np.array_equal(nodes, as_saved)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "field", "value", "words"), [
    ("keyframes", "keyframes", "theta: 0, 10\nphi: left", "Inverse DVS · Camera path · keyframes"),
    ("file", "file", "/no/such/path.txt", "Inverse DVS · Camera path · file"),
])
def test_a_bad_input_is_an_execution_error_naming_the_widget(comfy, tiny_checkpoints, kind, field, value, words):
    wf = _workflow(tiny_checkpoints)
    wf["5"]["inputs"].update(kind=kind, **{field: value})
    entry, messages = _run(comfy, wf)
    assert entry["status"]["status_str"] == "error"
    errors = [m["data"] for m in messages if m["type"] == "execution_error"]
    assert errors and errors[0]["node_id"] == "5" and words in errors[0]["exception_message"], errors


def test_the_ui_workflow_is_the_api_workflow_on_this_server(comfy):
    """comfyui/workflows/orbit.json (UI format, to drop on the page) has the API workflow's nodes, links and widget
    values, in the widget order the server's node definitions give."""
    info = _get(comfy.url + "/object_info")
    api = json.loads(WORKFLOW.read_text())
    ui = json.loads((ROOT / "comfyui/workflows/orbit.json").read_text())
    links = {link[0]: link for link in ui["links"]}
    assert sorted(str(n["id"]) for n in ui["nodes"]) == sorted(api)
    for node in ui["nodes"]:
        mine = api[str(node["id"])]
        assert node["type"] == mine["class_type"] and node["type"] in info
        linked = {}
        for inp in node["inputs"]:
            link = links[inp["link"]]
            assert link[3] == node["id"] and [str(link[1]), link[2]] == mine["inputs"][inp["name"]]
            linked[inp["name"]] = link
        spec = info[node["type"]]
        specs = {**spec["input"].get("required", {}), **spec["input"].get("optional", {})}
        order = spec["input_order"].get("required", []) + spec["input_order"].get("optional", [])
        values = iter(node["widgets_values"])
        for name in order:
            kind, opts = specs[name][0], (specs[name] + [{}])[1]
            if kind not in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO") and not isinstance(kind, list):
                continue
            value = next(values, None)
            if opts.get("control_after_generate"):
                next(values)
            if name not in linked and name in mine["inputs"]:
                assert value == mine["inputs"][name], (node["type"], name)
        assert next(values, None) is None  # no value left over
