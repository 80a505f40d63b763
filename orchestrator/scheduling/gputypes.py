"""GPU type names: how users write them, how nodes carry them, how fast they are.

Users write "GTX 1080 Ti"; a Ray node label value cannot hold spaces, so nodes carry the
slug "gtx-1080-ti" under LABEL (and, for clusters without labels, a custom resource
"gpu_type:gtx-1080-ti" with one unit per GPU). Ray's own `accelerator_type:*` names are
unreliable for consumer cards (a 1080 Ti may show as GTX-1080 or G), so orch never relies on them.
"""

from __future__ import annotations

import re

LABEL = "orch/gpu-type"
RESOURCE_PREFIX = "gpu_type:"
CPU = "cpu"  # the type of a node without GPUs

# Rough dense FP32 throughput in TFLOP/s: only the prior of the cost model, replaced by
# speeds measured on finished epochs as soon as there are any.
PRIOR_TFLOPS = {
    "cpu": 0.2,
    "gtx-1080": 8.9,
    "gtx-1080-ti": 11.3,
    "rtx-2080-ti": 13.4,
    "titan-v": 14.9,
    "v100": 15.7,
    "t4": 8.1,
    "rtx-3090": 35.6,
    "a10": 31.2,
    "a100": 19.5,
    "l4": 30.3,
    "l40s": 91.6,
    "rtx-4090": 82.6,
    "h100": 66.9,
    "h200": 66.9,
}
DEFAULT_TFLOPS = 10.0


def slug(name: str) -> str:
    """'GTX 1080 Ti' -> 'gtx-1080-ti'; 'NVIDIA A100-SXM4-80GB' -> 'a100-sxm4-80gb'."""
    s = name.strip().lower()
    s = re.sub(r"^(nvidia|geforce|tesla)[\s_-]+", "", s)
    s = re.sub(r"^(geforce)[\s_-]+", "", s)
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")
    return s[:63] or CPU


def family(type_slug: str) -> str:
    """The PRIOR_TFLOPS entry a detailed name belongs to ('a100-sxm4-80gb' -> 'a100')."""
    for known in sorted(PRIOR_TFLOPS, key=len, reverse=True):
        if type_slug == known or type_slug.startswith(known + "-"):
            return known
    return type_slug


def prior_speed(type_slug: str) -> float:
    """Multiply-accumulates per second a training step achieves, before any measurement.

    A MAC is 2 FLOPs, and real CNN training reaches roughly a third of peak.
    """
    tflops = PRIOR_TFLOPS.get(family(type_slug), DEFAULT_TFLOPS)
    return tflops * 1e12 / 2 / 3
