#!/usr/bin/env bash
# What GPU type a node is, in orch's terms: the slug of its GPU model (the node label
# orch/gpu-type and the custom resource gpu_type:<slug>) and how many GPUs it has.
#
#   cluster/gpu-type.sh                 prints "<slug> <count>" for this node ("cpu 0" without GPUs)
#   cluster/gpu-type.sh --slug NAME...  prints the slug of each GPU name, one per line
#
# Sourced by start-head.sh and start-worker.sh. The slug rule is the same as
# orchestrator.scheduling.policy.gputypes.slug (tests/unit/test_cluster_scripts.py checks both
# agree): lower-case; drop one leading "nvidia"/"geforce"/"tesla" and then one "geforce";
# every run of other characters becomes "-"; trim "-"; at most 63 characters (a Ray label
# value); empty means "cpu".
#
# Environment: NVIDIA_SMI (default nvidia-smi), ORCH_GPU_TYPE (a slug or a GPU name: skip
# detection), ORCH_NUM_GPUS (GPU count: skip counting).

orch_slug() {
  local s LC_ALL=C
  s=$(printf '%s' "$1" | tr '\n' ' ' | tr '[:upper:]' '[:lower:]' | sed -E \
    -e 's/^[[:space:]]+//' -e 's/[[:space:]]+$//' \
    -e 's/^(nvidia|geforce|tesla)[[:space:]_-]+//' \
    -e 's/^geforce[[:space:]_-]+//' \
    -e 's/[^a-z0-9]+/-/g' -e 's/^-+//' -e 's/-+$//')
  s=${s:0:63}
  printf '%s\n' "${s:-cpu}"
}

# Sets GPU_NAME, GPU_COUNT and GPU_SLUG for this node. Returns 2 on a node with more than
# one GPU model (orch cannot give such a node one type: set ORCH_GPU_TYPE, and
# CUDA_VISIBLE_DEVICES to the GPUs of that type).
orch_detect_gpus() {
  local smi="${NVIDIA_SMI:-nvidia-smi}" out names
  GPU_NAME="" GPU_COUNT=0 GPU_SLUG=cpu
  if [[ -n "${ORCH_GPU_TYPE:-}" ]]; then
    GPU_NAME="$ORCH_GPU_TYPE"
    GPU_SLUG=$(orch_slug "$ORCH_GPU_TYPE")
    GPU_COUNT="${ORCH_NUM_GPUS:-0}"
    if [[ "$GPU_COUNT" == 0 ]] && command -v "$smi" >/dev/null 2>&1; then
      GPU_COUNT=$("$smi" --query-gpu=name --format=csv,noheader 2>/dev/null | grep -c . || true)
    fi
    [[ "$GPU_COUNT" -gt 0 ]] || GPU_SLUG=cpu
    return 0
  fi
  if ! command -v "$smi" >/dev/null 2>&1; then
    echo "gpu-type: no $smi on this node: starting it as a CPU node" >&2
    return 0
  fi
  if ! out=$("$smi" --query-gpu=name --format=csv,noheader 2>&1); then
    echo "gpu-type: $smi failed (${out%%$'\n'*}): starting this node as a CPU node" >&2
    return 0
  fi
  names=$(printf '%s\n' "$out" | sed -E 's/^[[:space:]]+//; s/[[:space:]]+$//' | grep -v '^$' || true)
  if [[ -z "$names" ]]; then
    echo "gpu-type: $smi lists no GPUs: starting this node as a CPU node" >&2
    return 0
  fi
  if [[ $(printf '%s\n' "$names" | sort -u | wc -l) -gt 1 ]]; then
    echo "gpu-type: this node has several GPU models:" >&2
    printf '%s\n' "$names" | sort | uniq -c >&2
    echo "gpu-type: set ORCH_GPU_TYPE and CUDA_VISIBLE_DEVICES to give Ray one type." >&2
    return 2
  fi
  GPU_NAME=$(printf '%s\n' "$names" | head -n1)
  GPU_COUNT=$(printf '%s\n' "$names" | wc -l | tr -d ' ')
  [[ -n "${ORCH_NUM_GPUS:-}" ]] && GPU_COUNT="$ORCH_NUM_GPUS"
  GPU_SLUG=$(orch_slug "$GPU_NAME")
  if [[ "$GPU_COUNT" -eq 0 ]]; then GPU_SLUG=cpu; fi
  return 0
}

# The `ray start` arguments that give this node its type: appended to the array RAY_ARGS.
orch_type_args() {
  RAY_ARGS+=(--labels "orch/gpu-type=$GPU_SLUG")
  if [[ "$GPU_COUNT" -gt 0 ]]; then
    RAY_ARGS+=(--num-gpus "$GPU_COUNT" --resources "{\"gpu_type:$GPU_SLUG\": $GPU_COUNT}")
  else
    RAY_ARGS+=(--num-gpus 0)  # Ray would otherwise detect GPUs orch cannot type
  fi
}

# Prints a command line that a shell reads back as the same words.
orch_print_cmd() {
  local out=() a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
      out+=("$a")
    else
      out+=("'${a//\'/\'\\\'\'}'")
    fi
  done
  printf '%s\n' "${out[*]}"
}

# Runs (or with ORCH_DRY_RUN=1 prints) `ray start` with RAY_ARGS.
orch_ray_start() {
  local cmd=("${RAY:-ray}" start "${RAY_ARGS[@]}")
  if [[ "${ORCH_DRY_RUN:-0}" == 1 ]]; then
    orch_print_cmd "${cmd[@]}"
  else
    echo "+ $(orch_print_cmd "${cmd[@]}")" >&2
    exec "${cmd[@]}"
  fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  if [[ "${1:-}" == "--slug" ]]; then
    shift
    for name in "$@"; do orch_slug "$name"; done
  elif [[ $# -eq 0 ]]; then
    orch_detect_gpus
    echo "$GPU_SLUG $GPU_COUNT"
  else
    echo "usage: $0 [--slug NAME...]" >&2
    exit 2
  fi
fi
