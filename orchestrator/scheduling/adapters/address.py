"""The one place that resolves and checks a Ray address before orch uses it.

Addresses orch takes (`--address`, ORCH_RAY_ADDRESS): "local" (an embedded private Ray),
"auto" (the cluster this process runs on, e.g. as a Ray Job's driver), HOST:PORT (a head's
GCS port, 6379 by default) and http(s)://HEAD:8265 (the Ray Jobs API on the dashboard).

Ray 2.60 turns on token authentication by default, but a client that attaches with an
explicit address sends no token unless RAY_AUTH_MODE=token is set (ray/_private/worker.py:
only "auto" turns it on by itself). orch sets it when the cluster asks for a token and one
is available here, so users need not; against a cluster without token auth it must not:
a driver in token mode there has every trial actor cancelled before it starts (Ray 2.60,
seen on ray.cluster_utils clusters and `RAY_AUTH_MODE=disabled ray start`). So the mode
follows the cluster: the first probe sends no token. Before Ray is asked to connect, the
address is probed in bounded time (a TCP connect, then a GCS request in a subprocess with a
hard timeout; Ray's own client retries for ~40 s and logs a warning a second): whatever
goes wrong ends as one AddressError line naming the address, the cause and the fix.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import OrchestratorError

TCP_TIMEOUT_S = 3.0
PROBE_TIMEOUT_S = 12.0  # the GCS probe subprocess, Python and Ray's import included
HTTP_TIMEOUT_S = 5.0
TOKEN_FIX = (
    "copy the head's token file (cluster/start-head.sh prints where it is; Ray's default is "
    "~/.ray/auth_token) to this machine and point RAY_AUTH_TOKEN_PATH at it, or set "
    "RAY_AUTH_TOKEN"
)
_HOSTPORT = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>\d+)$")
_checked: set[str] = set()  # addresses probed successfully by this process


class AddressError(OrchestratorError):
    """A Ray address that is malformed, does not answer, or refuses orch's token."""


@dataclass(frozen=True)
class Address:
    text: str  # as given
    kind: str  # "local" | "auto" | "gcs" | "jobs"
    host: str = ""
    port: int = 0

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse(text: str | None, source: str = "--address") -> Address:
    """Address from what a user typed; AddressError naming `source` if it is none."""
    raw = (text or "").strip()
    if raw in ("local", "auto"):
        return Address(raw, raw)
    if raw.startswith(("http://", "https://")):
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(raw)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            parts, port = None, 0
        if parts is None or not parts.hostname:
            raise _bad(raw, source)
        return Address(raw.rstrip("/"), "jobs", parts.hostname, port)
    if raw.startswith("ray://"):
        raise AddressError(
            f"{source} {raw}: Ray Client (ray://) addresses are not supported. Use the head's "
            "GCS address HOST:6379, or http://HEAD:8265 to submit the driver as a Ray Job."
        )
    m = _HOSTPORT.match(raw)
    if not m or not 0 < int(m["port"]) < 65536:
        raise _bad(raw, source)
    return Address(raw, "gcs", m["v6"] or m["host"], int(m["port"]))


def given(text: str | None) -> str | None:
    """An --address as typed (a typer callback): left out is None, the workspace's address;
    given but blank is a mistake, not a quiet fall-back to the default."""
    if text is not None and not text.strip():
        raise AddressError(
            f"--address {text!r}: empty. Give HOST:PORT (the head's GCS port), "
            "http://HEAD:8265 or local, or leave --address out for the workspace's address "
            "(ORCH_RAY_ADDRESS, else local)."
        )
    return text


def _bad(raw: str, source: str) -> AddressError:
    return AddressError(
        f"{source} {raw!r}: not a Ray address. Use HOST:PORT (the head's GCS port, 6379 by "
        "default), http://HEAD:8265 to submit as a Ray Job, or local (an embedded Ray)."
    )


# ---- the token -------------------------------------------------------------------------


def token_source() -> str | None:
    """Where Ray would read this machine's cluster token from, or None if there is none.
    Ray's order: RAY_AUTH_TOKEN, then the file RAY_AUTH_TOKEN_PATH, then ~/.ray/auth_token."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return f"RAY_AUTH_TOKEN_PATH={path}"
    default = Path.home() / ".ray" / "auth_token"
    return str(default) if _readable(default) else None


def read_token() -> str | None:
    value = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if value:
        return value
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    file = Path(path) if path else Path.home() / ".ray" / "auth_token"
    try:
        return file.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _readable(p: Path) -> bool:
    try:
        return bool(p.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        return False


def use_token(addr: Address) -> str | None:
    """Makes Ray send this machine's token (RAY_AUTH_MODE=token) when one is available and
    the user has not chosen a mode; returns where the token comes from (None: no token)."""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path and not os.environ.get("RAY_AUTH_TOKEN", "").strip() and not _readable(Path(path)):
        raise AddressError(
            f"{addr.text}: RAY_AUTH_TOKEN_PATH={path}: no token there (missing, unreadable or "
            f"empty). Fix: {TOKEN_FIX}."
        )
    source = token_source()
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is None and source is not None:
        _set_mode("token")
    elif mode is not None and mode.lower() != "token":
        return None
    return source


# ---- probes ----------------------------------------------------------------------------


def check(text: str | None, source: str = "--address") -> Address:
    """Parses `text` and, for a cluster address, checks that it answers and accepts this
    machine's token. Bounded: ~15 s at worst. Raises AddressError with one line."""
    addr = parse(text, source)
    if addr.kind in ("local", "auto") or addr.text in _checked:
        if addr.kind == "auto" and addr.text not in _checked:
            _auto_mode(addr)
            _checked.add(addr.text)
        return addr
    _tcp(addr, source)
    if addr.kind == "jobs":
        _http(addr, source, use_token(addr))
    elif os.environ.get("RAY_AUTH_MODE") is not None:  # the user chose: respect it
        token = use_token(addr)
        if token is None and os.environ["RAY_AUTH_MODE"].lower() == "token":
            raise AddressError(
                f"{source} {addr.text}: RAY_AUTH_MODE=token is set here but there is no token "
                f"to send. Fix: {TOKEN_FIX}; or unset RAY_AUTH_MODE."
            )
        _gcs(addr, source, token)
    else:
        first = _gcs_probe(addr, send_token=False)
        if not first["ok"]:
            token = use_token(addr) if _refused(first) else None
            if token is None:  # not a refusal, or nothing to send: say so without a retry
                raise _gcs_error(addr, source, first, None)
            _gcs(addr, source, token)  # the cluster wants a token: send ours
    _checked.add(addr.text)
    return addr


def _auto_mode(addr: Address) -> None:
    """ "auto" (a Ray Job's driver, a process on a cluster node): Ray turns token mode on by
    itself whenever this machine has a token (worker.py, maybe_enable_token_auth_if_token_
    available), also against a cluster without auth, where every trial actor is then
    cancelled before it starts (seen: a Ray Job's driver on a head that once ran a token
    cluster, ~/.ray/auth_token left behind). So the mode follows the cluster here too: the
    GCS that "auto" names is asked without a token first; accepted, the mode is disabled."""
    if os.environ.get("RAY_AUTH_MODE") is not None or token_source() is None:
        return  # the user chose, or Ray has no token to turn the mode on with
    try:
        from ray._private.services import canonicalize_bootstrap_address

        gcs = canonicalize_bootstrap_address("auto")
    except Exception:  # no cluster found: ray.init says so in its own words
        gcs = None
    if gcs and _gcs_probe(parse(gcs), send_token=False)["ok"]:
        _set_mode("disabled")
    else:
        use_token(addr)


def _set_mode(mode: str) -> None:
    os.environ["RAY_AUTH_MODE"] = mode
    if "ray._raylet" in sys.modules:  # Ray caches its config: make it see the mode
        sys.modules["ray._raylet"].Config.initialize("")


def _tcp(addr: Address, source: str) -> None:
    try:
        with socket.create_connection((addr.host, addr.port), timeout=TCP_TIMEOUT_S):
            pass
    except TimeoutError:
        raise AddressError(
            f"{source} {addr.text}: no answer within {TCP_TIMEOUT_S:g} s (timed out "
            "connecting). Check that the host is up and that a firewall lets this machine "
            f"reach port {addr.port}."
        ) from None
    except OSError as e:
        cause = e.strerror or type(e).__name__
        if isinstance(e, socket.gaierror):
            cause = f"unknown host {addr.host!r}"
        raise AddressError(
            f"{source} {addr.text}: cannot connect ({cause}). Check that the Ray head runs "
            f"there (cluster/start-head.sh) and that {_what(addr)}."
        ) from None


def _what(addr: Address) -> str:
    if addr.kind == "jobs":
        return f"port {addr.port} is the head's dashboard port (8265 by default)"
    return (
        f"port {addr.port} is the head's GCS port (6379 by default; the dashboard's 8265 "
        "is for http:// addresses)"
    )


_PROBE = r"""
import json, sys
try:
    from ray._raylet import GcsClient
    c = GcsClient(address=sys.argv[1])
    c.internal_kv_get(b"session_name", namespace=b"session", timeout=5)
    print("ORCH_PROBE=" + json.dumps({"ok": True}))
except Exception as e:
    print("ORCH_PROBE=" + json.dumps({"ok": False, "type": type(e).__name__, "msg": str(e)[:300]}))
"""


def _gcs(addr: Address, source: str, token: str | None) -> None:
    result = _gcs_probe(addr, send_token=True)
    if not result["ok"]:
        raise _gcs_error(addr, source, result, token)


def _refused(result: dict) -> bool:
    kind, msg = result["type"], result["msg"]
    return kind == "AuthenticationError" or "InvalidAuthToken" in msg or "Unauthenticated" in msg


def _gcs_probe(addr: Address, *, send_token: bool) -> dict:
    """One GCS request in a subprocess: {"ok": True} or the error's type and message."""
    env = dict(os.environ)
    if not send_token:
        env.pop("RAY_AUTH_MODE", None)
    # Ray's client otherwise retries the GCS for ~40 s; the hard timeout below is the backstop.
    env.update(
        RAY_gcs_rpc_server_connect_timeout_s="2",
        RAY_py_gcs_connect_timeout_s="4",
        RAY_gcs_server_request_timeout_seconds="4",
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", _PROBE, addr.hostport],
            capture_output=True,
            text=True,
            env=env,
            timeout=PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "type": "Timeout", "msg": ""}
    # Ray may print lines of its own around ours (at exit, say): find ours by its marker.
    ours = [ln for ln in out.stdout.splitlines() if ln.startswith("ORCH_PROBE=")]
    if ours:
        return json.loads(ours[-1].removeprefix("ORCH_PROBE="))
    # No answer of ours: Ray's client ended the process (a fatal check on a connection
    # that never came up, say). Its last words say which; classify them like an answer.
    said = " ".join(out.stderr.split()[-40:])
    if "Failed to connect to GCS" in said or "Timed out" in said:
        return {"ok": False, "type": "Timeout", "msg": said}
    return {"ok": False, "type": "Probe", "msg": f"the probe ended (exit {out.returncode}): {said}"}


def _gcs_error(addr: Address, source: str, result: dict, token: str | None) -> AddressError:
    kind, msg = result["type"], result["msg"]
    if _refused(result):
        return _auth_error(addr, source, token)
    if kind in ("Timeout", "RpcError", "GetTimeoutError") or "Timed out" in msg:
        return AddressError(
            f"{source} {addr.text}: the port accepts connections but no Ray GCS answers "
            f"within {PROBE_TIMEOUT_S:g} s. Check that {_what(addr)}, and that the head is "
            "not overloaded."
        )
    return AddressError(f"{source} {addr.text}: Ray cannot connect ({kind}: {msg}).")


def _auth_error(addr: Address, source: str, token: str | None) -> AddressError:
    if token is None:
        mode = os.environ.get("RAY_AUTH_MODE")
        why = (
            f"RAY_AUTH_MODE={mode} here"
            if mode and mode.lower() != "token"
            else "no token on this machine (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token)"
        )
        return AddressError(
            f"{source} {addr.text}: the cluster requires a token and orch has none to send "
            f"({why}). Fix: {TOKEN_FIX}."
        )
    return AddressError(
        f"{source} {addr.text}: the cluster refused the token from {token}: it is not this "
        f"cluster's token. Fix: {TOKEN_FIX}."
    )


def jobs_headers() -> dict[str, str]:
    """The Authorization header for the Ray Jobs API when a token is available."""
    token = read_token() if (os.environ.get("RAY_AUTH_MODE") or "token") == "token" else None
    return {"Authorization": f"Bearer {token}"} if token else {}


def _http(addr: Address, source: str, token: str | None) -> None:
    req = urllib.request.Request(f"{addr.text}/api/version", headers=jobs_headers())
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as r:
            body = r.read(65536)
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise _auth_error(addr, source, token) from None
        raise AddressError(
            f"{source} {addr.text}: answered HTTP {e.code} to /api/version: not a Ray "
            f"dashboard. Check that {_what(addr)}."
        ) from None
    except TimeoutError:
        raise _no_http_answer(addr, source) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, TimeoutError):
            raise _no_http_answer(addr, source) from None
        raise AddressError(
            f"{source} {addr.text}: cannot reach the Ray Jobs API ({reason}). Check that "
            f"{_what(addr)} and that the head runs its dashboard."
        ) from None
    try:
        json.loads(body)
    except ValueError:
        raise AddressError(
            f"{source} {addr.text}: /api/version did not answer JSON: not a Ray dashboard. "
            f"Check that {_what(addr)}."
        ) from None


def _no_http_answer(addr: Address, source: str) -> AddressError:
    return AddressError(
        f"{source} {addr.text}: the port accepts connections but sends no HTTP answer within "
        f"{HTTP_TIMEOUT_S:g} s. Check that {_what(addr)} and that the head is not overloaded."
    )
