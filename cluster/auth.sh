#!/usr/bin/env bash
# The cluster's token (Ray 2.60 token authentication), sourced by start-head.sh and
# start-worker.sh.
#
# Ray 2.60 refuses every node and driver that does not send the cluster's token, and a
# `ray start --address=...` or `ray.init(address=...)` sends one only with RAY_AUTH_MODE=token.
# Ray reads the token from RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH, else
# ~/.ray/auth_token. The head creates the file if there is none (or reuses it) and exports
# RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH for `ray start`; its raylet, workers and Ray
# Jobs drivers inherit them. RAY_AUTH_MODE=disabled starts a cluster without a token
# (anyone who reaches its ports can run code on it).

ORCH_DEFAULT_TOKEN="$HOME/.ray/auth_token"

# Creates or reuses the head's token; prints where it is and how to hand it on (stderr).
orch_head_token() {  # $1: the head's GCS port, for the printed commands
  local port="${1:-PORT}"
  local file how
  if [[ "${RAY_AUTH_MODE:-token}" == disabled ]]; then
    echo "auth: RAY_AUTH_MODE=disabled: this cluster takes no token; anyone who reaches its ports can run code on it" >&2
    return 0
  fi
  export RAY_AUTH_MODE=token
  if [[ -n "${RAY_AUTH_TOKEN:-}" ]]; then
    echo "auth: the cluster token is the value of RAY_AUTH_TOKEN; give every worker and driver the same RAY_AUTH_TOKEN" >&2
    return 0
  fi
  file="${RAY_AUTH_TOKEN_PATH:-$ORCH_DEFAULT_TOKEN}"
  if [[ -s "$file" ]]; then
    how=reused
  elif [[ "${ORCH_DRY_RUN:-0}" == 1 ]]; then
    how="would be created"
  else
    mkdir -p "$(dirname "$file")"
    # 256 random bits as hex; only the owner may read it
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$file.tmp.$$" && mv "$file.tmp.$$" "$file")
    how=created
  fi
  export RAY_AUTH_TOKEN_PATH="$file"
  cat >&2 <<EOF
auth: cluster token: $file ($how). Every worker and every driver needs this token:
auth:   copy it to each machine (scp, mode 600; never commit it), then
auth:   workers: cluster/start-worker.sh --address HEAD:$port --token-file COPY
auth:   drivers: RAY_AUTH_TOKEN_PATH=COPY orch submit JOB.toml --address HEAD:$port
auth:   (or RAY_AUTH_TOKEN=\$(cat COPY); at $ORCH_DEFAULT_TOKEN no variable is needed)
EOF
}

# Finds the token a worker joins with (--token-file, RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or
# ~/.ray/auth_token) and exports RAY_AUTH_MODE=token for `ray start`. Returns 2 without one.
orch_worker_token() {
  local file
  if [[ "${RAY_AUTH_MODE:-token}" == disabled ]]; then
    echo "auth: RAY_AUTH_MODE=disabled: joining without a token (the head must have none)" >&2
    return 0
  fi
  export RAY_AUTH_MODE=token
  [[ -n "${RAY_AUTH_TOKEN:-}" ]] && return 0
  file="${RAY_AUTH_TOKEN_PATH:-$ORCH_DEFAULT_TOKEN}"
  if [[ ! -s "$file" || ! -r "$file" ]]; then
    echo "auth: no cluster token at $file: copy the head's token file here (start-head.sh printed its path) and pass --token-file FILE, or set RAY_AUTH_TOKEN (RAY_AUTH_MODE=disabled only for a head started without a token)" >&2
    [[ "${ORCH_DRY_RUN:-0}" == 1 ]] && return 0
    return 2
  fi
  export RAY_AUTH_TOKEN_PATH="$file"
}
