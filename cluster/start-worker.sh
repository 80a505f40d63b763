#!/usr/bin/env bash
# Joins this node to an orch Ray cluster, labelled with its GPU type.
#
#   cluster/start-worker.sh [--dry-run] --address HEAD:PORT [--token-file FILE] [-- EXTRA RAY START ARGS]
#
# The address defaults to $RAY_HEAD_ADDRESS. The node gets the label orch/gpu-type=<slug>,
# --num-gpus N and the custom resource {"gpu_type:<slug>": N} (see gpu-type.sh); a node
# without GPUs is labelled "cpu" and gets no GPU resources. --dry-run prints the
# `ray start` command instead of running it. Metrics for Prometheus on $ORCH_METRICS_PORT
# (8080). Environment: RAY, NVIDIA_SMI, ORCH_GPU_TYPE, ORCH_NUM_GPUS, ORCH_METRICS_PORT.
# Token (auth.sh): the head's token, from --token-file (a copy of the file start-head.sh
# printed), RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token; exit 2 without one.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=gpu-type.sh
source "$here/gpu-type.sh"
# shellcheck source=auth.sh
source "$here/auth.sh"

address="${RAY_HEAD_ADDRESS:-}"
RAY_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) ORCH_DRY_RUN=1 ;;
    --address) address="$2"; shift ;;
    --address=*) address="${1#--address=}" ;;
    # the option wins over RAY_AUTH_TOKEN, which Ray itself would read first
    --token-file) export RAY_AUTH_TOKEN_PATH="$2"; unset RAY_AUTH_TOKEN; shift ;;
    --token-file=*) export RAY_AUTH_TOKEN_PATH="${1#--token-file=}"; unset RAY_AUTH_TOKEN ;;
    --) shift; break ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "start-worker.sh: unknown argument '$1' (ray start arguments go after --)" >&2; exit 2 ;;
  esac
  shift
done
if [[ -z "$address" ]]; then
  echo "start-worker.sh: no head address: pass --address HEAD:6379 or set RAY_HEAD_ADDRESS" >&2
  exit 2
fi

orch_detect_gpus
orch_worker_token || exit 2
RAY_ARGS+=(--address "$address" --metrics-export-port "${ORCH_METRICS_PORT:-8080}")
orch_type_args
RAY_ARGS+=("$@")
orch_ray_start
