#!/usr/bin/env bash
# Starts the Ray head node of an orch cluster, labelled with this node's GPU type.
#
#   cluster/start-head.sh [--dry-run] [--port PORT] [-- EXTRA RAY START ARGS]
#
# The node gets the label orch/gpu-type=<slug>, --num-gpus N and the custom resource
# {"gpu_type:<slug>": N} (see gpu-type.sh); a node without GPUs is labelled "cpu" and
# gets no GPU resources. --dry-run prints the `ray start` command instead of running it.
# The head exports Prometheus metrics on $ORCH_METRICS_PORT (8080) and serves the
# dashboard on all interfaces. Environment: RAY (the ray executable), NVIDIA_SMI,
# ORCH_GPU_TYPE, ORCH_NUM_GPUS (see gpu-type.sh), ORCH_METRICS_PORT.
# Token (auth.sh): creates the cluster token at $RAY_AUTH_TOKEN_PATH (default
# ~/.ray/auth_token) or reuses it, and prints how to hand it to workers and drivers;
# RAY_AUTH_TOKEN gives the token itself; RAY_AUTH_MODE=disabled starts without one.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=gpu-type.sh
source "$here/gpu-type.sh"
# shellcheck source=auth.sh
source "$here/auth.sh"

port=6379
RAY_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) ORCH_DRY_RUN=1 ;;
    --port) port="$2"; shift ;;
    --port=*) port="${1#--port=}" ;;
    --) shift; break ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "start-head.sh: unknown argument '$1' (ray start arguments go after --)" >&2; exit 2 ;;
  esac
  shift
done

orch_detect_gpus
orch_head_token "$port"
RAY_ARGS+=(--head --port "$port" --dashboard-host 0.0.0.0
  --metrics-export-port "${ORCH_METRICS_PORT:-8080}")
orch_type_args
RAY_ARGS+=("$@")
orch_ray_start
