"""pipeline.denoise: the one place the transformer is called on an item (apart from passes on zeros that warm up or
time it, and context parallel's followers, which replay the leader's call), and the CFG wrapper."""

import re
from pathlib import Path

import torch

import inverse_dvs
from inverse_dvs.models.video_model import ModelStats
from inverse_dvs.pipeline.denoise import guided_v, model_v

PACKAGE = Path(inverse_dvs.__file__).parent
ROOT = PACKAGE.parent


def test_only_the_pipeline_calls_the_transformer():
    calls = {}
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "scripts").glob("*.py")]:
        n = len(re.findall(r"\btransformer\(\s*(?:hidden_states|\*\*)", path.read_text(encoding="utf-8")))
        if n:
            calls[str(path.relative_to(ROOT))] = n
    assert calls == {
        "inverse_dvs/pipeline/denoise.py": 1,  # every pass on an item
        "inverse_dvs/models/compile.py": 1,  # warm_up: one pass on zeros of the largest call
        "inverse_dvs/models/context_parallel.py": 1,  # a follower replays the call its leader sent
        "scripts/gpu_check.py": 1,  # the attention backends timed on zeros
    }
    assert "def warm_up(" in (PACKAGE / "models/compile.py").read_text(encoding="utf-8")


def test_guidance_is_the_unconditional_plus_scaled_difference(tiny_model):
    pipe, x0, _, _, img, cond, uncond = tiny_model
    stats = ModelStats()
    both = model_v(pipe, img, torch.cat([uncond, cond]), stats)(torch.cat([x0, x0]), 500)
    v_u, v_c = both.chunk(2)
    assert stats.nfe == 2  # one pass of a batch of two
    for scale in (1.0, 6.0):
        assert torch.allclose(guided_v(pipe, img, cond, uncond, scale, stats)(x0, 500), v_u + scale * (v_c - v_u),
                              atol=1e-6)
    plain = guided_v(pipe, img, cond, None, 6.0, stats)  # no unconditional embedding: the conditional alone
    nfe = stats.nfe
    assert torch.allclose(plain(x0, 500), v_c, atol=1e-5) and stats.nfe == nfe + 1
