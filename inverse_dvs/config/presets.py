"""The methods' values: `method: paper` is the dataclass defaults (the paper's text, `schema`), `method: reference` the
official code's values (github.com/yesiltepe-hidir/inverse-dvs) of every key where the two differ. Each value is
written once: the paper column below is read off the schema. README → Fidelity says what each key controls.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .schema import SECTIONS

REFERENCE_NEGATIVE_PROMPT = ("crowded scene, car in the road, bad anatomy, deformed body, occlusions, dark scene, "
                             "black, unseen regions, black & white, blurry, pixelated.")

# The official code's values of every key where it and the paper text (arXiv 2506.08004) differ.
REFERENCE: dict[str, dict[str, Any]] = {
    "camera": {"warp_size": [576, 1024], "resize": "stretch", "intrinsics": "reference", "mask_resize": "reference",
               "render_resize": "reference", "r_spline": "distance",
               "pose_arithmetic": "reference"},
    "depth": {"mapping": "reference"},
    "warp": {"splat": "reference"},
    "caption": {"source": "render"},
    "inversion": {"end": "terminal", "prompt": "empty", "posterior": "reference"},
    "slm": {"mode": "reference", "mask_pooling": "reference"},
    "inference": {"steps": [30], "strength": [0.98], "guidance_scale": [10.0, 12.0], "preservation_scale": [1.0],
                  "k_order": [10.0], "adaptive_order": [None], "noise_init": "reference",
                  "dynamic_cfg": "reference", "vae_latents": "resample",
                  "negative_prompt": REFERENCE_NEGATIVE_PROMPT},
    "model": {"lora": "Eyeline-Research/Go-with-the-Flow",
              "lora_weight_name": "I2V5B_final_i38800_nearest_lora_weights.safetensors"},
}


def _defaults(section: str, keys) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
    return {k: fields[k].default_factory() if fields[k].default is dataclasses.MISSING else fields[k].default
            for k in keys}


METHOD_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {section: _defaults(section, keys) for section, keys in REFERENCE.items()},
    "reference": REFERENCE,
}
