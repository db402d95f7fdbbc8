import torch
from diffusers import CogVideoXDDIMScheduler, DDIMInverseScheduler

from inverse_dvs.ddim import (
    alpha_at,
    ddim_invert,
    ddim_sample,
    ddim_step,
    inversion_timesteps,
    reverse_grid,
    sampling_schedule,
)
from inverse_dvs.tiny import SCHEDULER_5B_I2V


def real_scheduler():
    return CogVideoXDDIMScheduler(**SCHEDULER_5B_I2V)


def test_zero_terminal_snr_and_inversion_stops_before():
    alphas = real_scheduler().alphas_cumprod.double()
    assert float(alphas[999]) == 0.0
    sched = sampling_schedule(50, 0.95)
    assert sched.t_start == 939 and sched.timesteps[:2] == [939, 919] and sched.prev_timesteps[-1] == -1
    assert float(alphas[sched.t_start]) > 0
    grid = inversion_timesteps(sched.t_start, 30)
    assert grid[-1] == 939 and max(grid) < 999 and len(grid) == 30
    try:
        ddim_invert(lambda x, t: x, torch.zeros(3), [500, 999], alphas)
    except ValueError as e:
        assert "zero terminal SNR" in str(e)
    else:
        raise AssertionError("inverting to t=999 must be refused")


def test_schedule_matches_diffusers_img2img():
    s = real_scheduler()
    for n, strength in ((50, 0.95), (30, 0.8), (7, 0.5)):
        s.set_timesteps(n)
        init = min(int(n * strength), n)
        assert sampling_schedule(n, strength).timesteps == s.timesteps[n - init:].tolist()


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
    grid = inversion_timesteps(939, 30)
    down, prev = reverse_grid(grid)
    errs = {}
    for refine in (0, 5):
        inv = ddim_invert(v_fn, x0, grid, alphas, refine)
        back = ddim_sample(v_fn, inv.latent, down, prev, alphas)
        errs[refine] = float((back - x0).norm() / x0.norm())
    assert errs[5] < 1e-4 < errs[0]
