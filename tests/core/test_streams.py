"""Tests of core.streams."""

import hashlib

import torch

from inverse_dvs.core.streams import generator, stream_seed


def test_streams_follow_the_documented_derivation():
    assert stream_seed(42, "vae") == 42  # the VAE posterior keeps the raw seed (official code, diffusers)
    digest = hashlib.sha256(b"inverse-dvs:slm:42").digest()
    assert stream_seed(42, "slm") == int.from_bytes(digest[:8], "big") & (2**63 - 1)
    assert stream_seed(42, "slm") != stream_seed(43, "slm") and 0 <= stream_seed(2**63 - 1, "slm") < 2**63


def test_purposes_draw_independent_numbers():
    """Under `vae_latents: resample` the VAE posterior and SLM both draw for the same item: their streams must not be
    the same numbers, nor correlated."""
    n = 200_000
    vae = torch.randn(n, generator=generator(7, "vae"))
    slm = torch.randn(n, generator=generator(7, "slm"))
    assert not torch.equal(vae, slm)
    corr = float(torch.corrcoef(torch.stack([vae, slm]))[0, 1])
    assert abs(corr) < 4 / n**0.5  # four standard errors of a zero correlation
    # the old scheme, both generators seeded with the item seed, drew the very same numbers
    same = torch.randn(n, generator=torch.Generator().manual_seed(7))
    assert torch.equal(vae, same)
    # draws of integer indices, as SLM makes them, are independent too
    a = torch.randint(0, 1000, (n,), generator=generator(7, "vae")).float()
    b = torch.randint(0, 1000, (n,), generator=generator(7, "slm")).float()
    assert abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 4 / n**0.5
