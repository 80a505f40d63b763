"""GPU type names and what each type can do: how users write them, how nodes carry them,
and the published figures the cost model's roofline uses (pure).

Users write "GTX 1080 Ti"; a Ray node label value cannot hold spaces, so nodes carry the
slug "gtx-1080-ti" under LABEL (and, for clusters without labels, a custom resource
"gpu_type:gtx-1080-ti" with one unit per GPU). Ray's own `accelerator_type:*` names are
unreliable for consumer cards (a 1080 Ti may show as GTX-1080 or G), so orch never
relies on them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.spec.model import Resources

LABEL = "orch/gpu-type"
# Optional node label: memory per GPU in GB, for types orch has no spec for (or to override).
MEMORY_LABEL = "orch/gpu-memory-gb"
RESOURCE_PREFIX = "gpu_type:"
CPU = "cpu"  # the type of a node without GPUs


@dataclass(frozen=True)
class GpuSpec:
    """Published peak figures of one GPU type (dense, no sparsity; boost clocks).

    TFLOP/s: fp32 (CUDA cores), tf32 / fp16 / bf16 (tensor cores, FP32 accumulate where
    the card distinguishes; the plain FP32 or FP16 rate where it has none). TensorFlow runs
    float32 convolutions and matmuls in TF32 on GPUs that have it (its default since 2.4).
    """

    fp32: float
    tf32: float
    fp16: float
    bf16: float
    bandwidth_gbs: float  # memory bandwidth, GB/s
    memory_gb: float  # per GPU
    source: str


# Sources: NVIDIA product pages and whitepapers, checked against TechPowerUp's GPU database
# (boost clocks): GP104/GP102 "GeForce GTX 1080 / 1080 Ti" specs and the Pascal GP100/GP102
# whitepaper (FP16 at 1/64 rate on GP102/GP104, no BF16); Turing whitepaper (RTX 2080 Ti,
# T4: FP16 tensor with FP32 accumulate at half rate on GeForce); Volta V100 whitepaper and
# datasheet (SXM2: 15.7 FP32, 125 tensor, 900 GB/s); Titan V product page; NVIDIA Ampere
# GA100 whitepaper and A100 datasheet (19.5 FP32, 156 TF32, 312 FP16/BF16, 1,555 GB/s for
# 40 GB, 2,039 GB/s for 80 GB); GA102 whitepaper (RTX 3090, A10); Ada whitepaper and L4 /
# L40S / RTX 4090 datasheets; H100 SXM5 and H200 SXM datasheets (dense figures). Cards
# without BF16 get their FP32 rate for mixed_bfloat16 (TensorFlow falls back to it).
SPECS: dict[str, GpuSpec] = {
    "gtx-1080": GpuSpec(8.87, 8.87, 0.139, 8.87, 320, 8, "GTX 1080 (GP104)"),
    "gtx-1080-ti": GpuSpec(11.34, 11.34, 0.177, 11.34, 484, 11, "GTX 1080 Ti (GP102)"),
    "titan-xp": GpuSpec(12.15, 12.15, 0.190, 12.15, 548, 12, "Titan Xp (GP102)"),
    "p100": GpuSpec(9.3, 9.3, 18.7, 9.3, 732, 16, "Tesla P100 SXM2 (GP100)"),
    "rtx-2080-ti": GpuSpec(13.45, 13.45, 53.8, 13.45, 616, 11, "RTX 2080 Ti (TU102)"),
    "titan-v": GpuSpec(14.9, 14.9, 110.0, 14.9, 653, 12, "Titan V (GV100)"),
    "v100": GpuSpec(15.7, 15.7, 125.0, 15.7, 900, 16, "Tesla V100 SXM2 16 GB (GV100)"),
    "t4": GpuSpec(8.1, 8.1, 65.0, 8.1, 320, 16, "Tesla T4 (TU104)"),
    "rtx-3090": GpuSpec(35.6, 35.6, 71.0, 71.0, 936, 24, "RTX 3090 (GA102)"),
    "a10": GpuSpec(31.2, 62.5, 125.0, 125.0, 600, 24, "A10 (GA102)"),
    "a100": GpuSpec(19.5, 156.0, 312.0, 312.0, 1555, 40, "A100 SXM4 40 GB (GA100)"),
    "l4": GpuSpec(30.3, 60.0, 121.0, 121.0, 300, 24, "L4 (AD104)"),
    "l40s": GpuSpec(91.6, 183.0, 362.0, 362.0, 864, 48, "L40S (AD102)"),
    "rtx-4090": GpuSpec(82.6, 82.6, 165.2, 165.2, 1008, 24, "RTX 4090 (AD102)"),
    "h100": GpuSpec(67.0, 494.0, 989.0, 989.0, 3350, 80, "H100 SXM5 80 GB (GH100)"),
    "h200": GpuSpec(67.0, 494.0, 989.0, 989.0, 4800, 141, "H200 SXM 141 GB (GH100)"),
}
# A type orch has no figures for: a mid-range card, so estimates stay of the right order.
UNKNOWN = GpuSpec(12.0, 12.0, 12.0, 12.0, 500, 12, "unknown type: assumed mid-range")
# One CPU core as a device, for CPU-only trials (AVX2 FMA at ~2.5 GHz: ~40 GFLOP/s fp32;
# ~10 GB/s of memory bandwidth per core).
CPU_CORE = GpuSpec(0.04, 0.04, 0.04, 0.04, 10, 0, "one CPU core")


def slug(name: str) -> str:
    """'GTX 1080 Ti' -> 'gtx-1080-ti'; 'NVIDIA A100-SXM4-80GB' -> 'a100-sxm4-80gb'."""
    s = name.strip().lower()
    s = re.sub(r"^(nvidia|geforce|tesla)[\s_-]+", "", s)
    s = re.sub(r"^(geforce)[\s_-]+", "", s)
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")
    return s[:63] or CPU


def type_matches(node_type: str, accepted: Iterable[str] | None) -> bool:
    """Does a node's type (a slug) satisfy a request for any of `accepted` (slugs)? 'a100'
    accepts nodes labelled 'a100' and 'a100-sxm4-80gb' (detected full names); None accepts
    every type. The one rule placement, feasibility, `orch plan` and the [cluster] checks
    of `orch validate` share."""
    if accepted is None:
        return True
    return any(node_type == a or node_type.startswith(a + "-") for a in accepted)


def accepted_types(res: Resources) -> set[str] | None:
    """Slugs of a request's acceptable GPU types; None = any."""
    return {slug(t) for t in res.gpu_type} if res.gpu_type else None


def family(type_slug: str) -> str:
    """The SPECS entry a detailed name belongs to ('a100-sxm4-80gb' -> 'a100')."""
    for known in sorted(SPECS, key=len, reverse=True):
        if type_matches(type_slug, (known,)):
            return known
    return type_slug


def known(type_slug: str) -> bool:
    """Whether orch has published figures for a type (else `spec` assumes UNKNOWN's)."""
    return type_slug == CPU or family(type_slug) in SPECS


def spec(type_slug: str, memory_gb: float | None = None) -> GpuSpec:
    """Figures for a node's GPU type. A detailed name's memory ('a100-sxm4-80gb' -> 80 GB,
    with the 80 GB part's bandwidth) or a node's own memory label overrides the table's."""
    if type_slug == CPU:
        return CPU_CORE
    base = SPECS.get(family(type_slug), UNKNOWN)
    found = re.search(r"(\d+)gb", type_slug)
    size = memory_gb or (float(found.group(1)) if found else None)
    if size and size != base.memory_gb:
        bandwidth = 2039.0 if family(type_slug) == "a100" and size >= 80 else base.bandwidth_gbs
        label = f"{base.source}, {size:g} GB"
        return GpuSpec(base.fp32, base.tf32, base.fp16, base.bf16, bandwidth, size, label)
    return base


def memory_gb(type_slug: str, label: float | None = None) -> float:
    """Memory per GPU of a type, GB (0 for 'cpu')."""
    return spec(type_slug, label).memory_gb
