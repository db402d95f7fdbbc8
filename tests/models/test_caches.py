"""models.caches: diffusers' step caches, on for sampling only and leaving no trace."""

from __future__ import annotations

import pytest
import torch

from inverse_dvs.core.ddim import ddim_sample, sampling_schedule
from inverse_dvs.models.caches import SAMPLING_CACHES, StepClock, sampling_cache
from inverse_dvs.models.video_model import alphas_cumprod
from inverse_dvs.pipeline.denoise import guided_v
from tests.models.helpers import graph_count


def test_sampling_caches_are_on_only_while_sampling(tiny_model):
    pipe, x0, _, stats, img, cond, uncond = tiny_model
    sched = sampling_schedule(20, 0.9)
    x = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    outs = {}
    for name in SAMPLING_CACHES:
        clock = StepClock()
        v_fn = guided_v(pipe, img, cond, uncond, 6.0, stats, clock)
        with sampling_cache(pipe, name, clock):
            assert pipe.transformer.is_cache_enabled == (name != "none")
            outs[name] = ddim_sample(v_fn, x, sched.timesteps, sched.prev_timesteps, alphas_cumprod(pipe))
        assert not pipe.transformer.is_cache_enabled
        assert clock.t == sched.timesteps[-1]  # the hooks saw every step's timestep
    for name in ("faster", "pab", "taylorseer"):  # these skip work on this schedule, so the result moves a little
        assert not torch.equal(outs[name], outs["none"]), name
        assert float((outs[name] - outs["none"]).abs().max()) < 0.1 * float(outs["none"].abs().max())


def test_cache_hooks_leave_no_trace_on_compiled_blocks(tiny_model, monkeypatch, request):
    from inverse_dvs.models.compile import compile_blocks, uncompile_blocks, warm_up

    pipe, x0, _, stats, img, cond, uncond = tiny_model
    compile_blocks(pipe, "aot_eager")
    request.addfinalizer(lambda: uncompile_blocks(pipe))  # the session's pipeline runs eager again afterwards
    warm_up(pipe, 49, 96, 144, (1, 2))
    graphs = graph_count()
    attributes = {name: dict(vars(m)) for name, m in pipe.transformer.named_modules()}
    sched = sampling_schedule(4, 0.75)
    for name in SAMPLING_CACHES[1:]:
        clock = StepClock()
        with sampling_cache(pipe, name, clock):
            ddim_sample(guided_v(pipe, img, cond, uncond, 6.0, stats, clock), x0, sched.timesteps,
                        sched.prev_timesteps, alphas_cumprod(pipe))
        warm_up(pipe, 49, 96, 144, (1, 2))
        assert graph_count() == graphs, name  # the compiled blocks' guards still hold: no recompile
        assert {n: dict(vars(m)) for n, m in pipe.transformer.named_modules()} == attributes, name

    def broken(config):
        raise RuntimeError("cache hooks refused")

    monkeypatch.setattr(pipe.transformer, "enable_cache", broken)
    compiled = [b._compiled_call_impl for b in pipe.transformer.transformer_blocks]
    with pytest.raises(RuntimeError, match="refused"), sampling_cache(pipe, "pab", StepClock()):
        pass
    assert [b._compiled_call_impl for b in pipe.transformer.transformer_blocks] == compiled  # compiled again
