"""Tests of core.ddim."""

import pytest
import torch
from diffusers import CogVideoXDDIMScheduler, DDIMInverseScheduler

from inverse_dvs.core.ddim import (
    alpha_at,
    ddim_invert,
    ddim_sample,
    ddim_step,
    inversion_end,
    inversion_plan,
    reverse_grid,
    sampling_schedule,
)
from inverse_dvs.testing.tiny import SCHEDULER_5B_I2V


def real_scheduler():
    return CogVideoXDDIMScheduler(**SCHEDULER_5B_I2V)


def test_zero_terminal_snr_and_inversion_stops_before():
    alphas = real_scheduler().alphas_cumprod.double()
    assert float(alphas[999]) == 0.0
    sched = sampling_schedule(50, 0.95)
    assert sched.t_start == 939 and sched.timesteps[:2] == [939, 919] and sched.prev_timesteps[-1] == -1
    assert float(alphas[sched.t_start]) > 0
    plan = inversion_plan("t_start", sched.t_start, 30)
    grid = [s.t_to for s in plan]
    assert grid[-1] == 939 and max(grid) < 999 and len(grid) == 30
    assert plan[0] == (-1, grid[0], 0) and all(s.t_model == s.t_from for s in plan[1:])  # model at the lower end
    with pytest.raises(ValueError, match="zero-SNR"):
        inversion_plan("t_start", 999, 30)
    assert inversion_end("t_start", 939) == 939 and inversion_end("terminal", 939) == 999


def test_terminal_plan_is_ddim_inverse_schedulers_grid():
    inv = DDIMInverseScheduler(**{k: v for k, v in SCHEDULER_5B_I2V.items() if k != "snr_shift_scale"})
    for n in range(1, 101):  # float64 like diffusers: at 48 and 96 steps float32 rounds .5 the other way
        inv.set_timesteps(n)
        plan = inversion_plan("terminal", 966, n)
        assert [s.t_to for s in plan] == inv.timesteps.tolist() and plan[-1].t_to == 999
        assert all(s.t_model == s.t_to for s in plan)  # the model is called at the upper timestep
    plan = inversion_plan("terminal", 0, 30)
    assert plan[0] == (-1, 32, 32) and plan[1] == (33, 66, 66)  # t − 1000//30, as DDIMInverseScheduler.step


def test_schedule_matches_diffusers_img2img():
    s = real_scheduler()
    for n in range(1, 101):
        s.set_timesteps(n)
        for strength in (0.5, 0.8, 0.95, 0.98, 1.0):
            init = min(int(n * strength), n)
            if init:
                assert sampling_schedule(n, strength).timesteps == s.timesteps[n - init:].tolist(), (n, strength)
    # the two grids where float32 rounds a .5 the other way (937 and 811 there)
    assert 936 in sampling_schedule(48, 1.0).timesteps and 812 in sampling_schedule(96, 1.0).timesteps


def test_sampling_step_equals_cogvideox_scheduler():
    s = real_scheduler()
    for n in (50, 30):  # 30 steps: diffusers lands on t − 1000//30, not the next listed timestep
        s.set_timesteps(n)
        sched = sampling_schedule(n, 1.0)
        g = torch.Generator().manual_seed(n)
        x, v = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
        for t, tp in list(zip(sched.timesteps, sched.prev_timesteps, strict=True))[1::7]:
            ref = s.step(v, t, x, return_dict=False)[0]
            ours = ddim_step(x, v, alpha_at(s.alphas_cumprod, t), alpha_at(s.alphas_cumprod, tp))
            assert torch.allclose(ours, ref, atol=1e-5), (n, t)


def test_inversion_step_equals_ddim_inverse_scheduler():
    inv = DDIMInverseScheduler(**{k: v for k, v in SCHEDULER_5B_I2V.items() if k != "snr_shift_scale"})
    inv.set_timesteps(50)
    assert torch.allclose(inv.alphas_cumprod.double(), real_scheduler().alphas_cumprod.double(), atol=1e-6)
    g = torch.Generator().manual_seed(0)
    x, v = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    for t in (19, 499, 939):
        ref = inv.step(v, t, x, return_dict=False)[0]
        t_from = t - 1000 // 50
        ours = ddim_step(x, v, alpha_at(inv.alphas_cumprod, t_from), alpha_at(inv.alphas_cumprod, t))
        assert torch.allclose(ours, ref, atol=1e-5)


def test_refined_inversion_round_trip_on_a_nonlinear_model():
    alphas = real_scheduler().alphas_cumprod.double()
    w = torch.randn(6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.3

    def v_fn(x, t):  # a smooth, t-dependent stand-in for the transformer
        return torch.tanh(x @ w) * (0.5 + t / 2000)

    x0 = torch.randn(1, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    plan = inversion_plan("t_start", 939, 30)
    down, prev = reverse_grid([s.t_to for s in plan])
    errs = {}
    for refine in (0, 5):
        inv = ddim_invert(v_fn, x0, plan, alphas, refine)
        back = ddim_sample(v_fn, inv.latent, down, prev, alphas)
        errs[refine] = float((back - x0).norm() / x0.norm())
    assert errs[5] < 1e-4 < errs[0]


def test_terminal_inversion_equals_diffusers_on_the_tiny_model(tiny_model):
    """Every step of the terminal inversion equals DDIMInverseScheduler.step with the real (tiny) transformer, and the
    latent at 999 is the model's noise estimate at the last step."""
    from inverse_dvs.models.video_model import alphas_cumprod

    pipe, x0, v_fn, stats = tiny_model[:4]
    plan = inversion_plan("terminal", 966, 30)
    ours = ddim_invert(v_fn, x0, plan, alphas_cumprod(pipe), keep_trajectory=True)
    sched = DDIMInverseScheduler.from_config(pipe.scheduler.config)
    sched.set_timesteps(30)
    x = x0
    for i, t in enumerate(sched.timesteps):
        v = v_fn(x, int(t))
        x_next = sched.step(v, t, x, return_dict=False)[0]
        assert torch.allclose(ours.trajectory[i], x_next, atol=1e-4, rtol=1e-4), int(t)
        if i == len(sched.timesteps) - 1:
            a = float(sched.alphas_cumprod[int(t) - 1000 // 30])
            assert torch.allclose(x_next, a**0.5 * v + (1 - a) ** 0.5 * x, atol=1e-4)  # ε̂ at t = 966
        x = x_next
    assert stats.nfe == 2 * 30
