"""Where things live. Everything local sits under ./.orch/ (or $ORCH_HOME); each location
can be pointed elsewhere by environment variable or by `.orch/config.toml`, so a cluster
deployment puts the ledger and MLflow on PostgreSQL and checkpoints on shared storage.

Precedence: environment variable > config file > default under the workspace.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.errors import OrchestratorError, did_you_mean

ENV = {
    "ledger_url": "ORCH_LEDGER_URL",
    "tracking_uri": "ORCH_TRACKING_URI",
    "storage": "ORCH_STORAGE",
    "ray_address": "ORCH_RAY_ADDRESS",
}


@dataclass(frozen=True)
class Workspace:
    home: Path
    ledger_url: str
    tracking_uri: str
    artifact_root: str
    storage: str  # checkpoints and Ray Tune results: a local path, NFS path or URI
    ray_address: str  # "local" = embedded single-node Ray that never attaches elsewhere
    # Where each location came from, for error messages: (field, "ORCH_LEDGER_URL" |
    # "<config.toml>: ledger_url" | "the default").
    origins: tuple[tuple[str, str], ...] = ()

    def origin(self, name: str) -> str:
        return dict(self.origins).get(name, "the default")

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"


def workspace(home: str | os.PathLike[str] | None = None) -> Workspace:
    root = home_dir(home)
    file_cfg = _read_config(root / "config.toml")
    origins: dict[str, str] = {}

    def pick(name: str, default: str) -> str:
        if os.environ.get(ENV[name]):
            origins[name] = ENV[name]
            return os.environ[ENV[name]]
        if file_cfg.get(name):
            origins[name] = f"{root / 'config.toml'}: {name}"
            return str(file_cfg[name])
        origins[name] = "the default"
        return default

    for var, default in SECONDS.items():
        env_seconds(var, default)  # a bad value is reported here, before anything runs
    for var in NUMBERS_USED_LATER:
        env_seconds(var, math.nan, zero_ok=var in ZERO_OK)
    ws = Workspace(
        home=root,
        ledger_url=pick("ledger_url", f"sqlite:///{root / 'orch.db'}"),
        tracking_uri=pick("tracking_uri", f"sqlite:///{root / 'mlflow.db'}"),
        artifact_root=str(file_cfg.get("artifact_root") or (root / "artifacts")),
        storage=pick("storage", str(root / "storage")),
        ray_address=pick("ray_address", "local"),
        origins=tuple(origins.items()),
    )
    if same_database(ws.ledger_url, ws.tracking_uri):
        from orchestrator.stores import redact

        raise OrchestratorError(
            f"the MLflow tracking URI ({ws.origin('tracking_uri')}) is the ledger's own "
            f"database ({ws.origin('ledger_url')}): {redact(ws.tracking_uri)}. MLflow would create "
            "its tables inside orch's ledger. Give MLflow a database of its own, e.g. "
            f"ORCH_TRACKING_URI=sqlite:///{root / 'mlflow.db'}."
        )
    return ws


def home_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """The workspace folder: `home`, $ORCH_HOME or ./.orch. It may not exist yet (commands
    that only read create nothing), but if something is there it must be a folder."""
    named = "ORCH_HOME" if home is None and os.environ.get("ORCH_HOME") else "the workspace"
    root = Path(home or os.environ.get("ORCH_HOME") or ".orch").absolute()
    if root.exists() and not root.is_dir():
        raise OrchestratorError(
            f"{named} {root} is a file, not a folder. Point ORCH_HOME at a folder (orch "
            "creates it when it first writes) or move the file away."
        )
    return root


# Durations orch reads from the environment, in seconds, and their defaults.
SECONDS = {"ORCH_LEASE_TTL_S": 90.0, "ORCH_INFEASIBLE_GRACE_S": 120.0}
# Numbers read where they are used, mid-job (their defaults live there); checked by
# workspace() too, so that a typo stops the command before it starts anything, not an
# hour into a job (or never, where the reader falls back to its default).
NUMBERS_USED_LATER = (
    "ORCH_TRACKING_WAIT_S",
    "ORCH_LEDGER_RETRY_S",
    "ORCH_MIGRATE_RESTART_S",
    "ORCH_MIGRATE_MIN_GAIN_S",
    "ORCH_MIGRATE_MIN_SHARE",
    "ORCH_PROFILE_MAX_SHARE",
)
ZERO_OK = ("ORCH_LEDGER_RETRY_S",)  # 0: do not retry


def env_seconds(var: str, default: float, *, strict: bool = True, zero_ok: bool = False) -> float:
    """A duration in seconds (or another positive number) from environment variable `var`.
    A value that is not a finite number > 0 (>= 0 with zero_ok) is an error (strict) or the
    default (where there is nobody to tell, e.g. at import time)."""
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isfinite(value) and (value > 0 or (zero_ok and value == 0)):
        return value
    if not strict:
        return default
    what = "a number of seconds" if var.endswith("_S") else "a number"
    shown = f" ({default:g})" if math.isfinite(default) else ""
    raise OrchestratorError(
        f"{var}: must be {what} {'>= 0' if zero_ok else '> 0'}. Received: {var}={raw!r}. "
        f"Unset it for the default{shown}."
    )


def same_database(a: str, b: str) -> bool:
    """True when two database URLs name the same database (SQLite: the same file)."""

    def ident(url: str) -> tuple[str, ...] | None:
        m = re.match(r"^([A-Za-z][A-Za-z0-9.]*)(?:\+[^:]*)?://(.*)$", url.strip())
        if m is None:
            return None
        scheme, rest = m.group(1).lower(), m.group(2)
        if scheme == "sqlite":
            path = rest.split("?", 1)[0]
            if path.startswith("/"):
                path = path[1:]
            if not path or path == ":memory:":
                return None
            return ("sqlite", str(Path(path).expanduser().resolve()))
        try:  # a bad port or an unclosed [IPv6 bracket: not comparable; stores.py says why
            parsed = urlsplit(f"{scheme}://{rest}")
            port = parsed.port
        except ValueError:
            return None
        scheme = {"postgres": "postgresql"}.get(scheme, scheme)
        port = port or _DEFAULT_PORTS.get(scheme)
        host = (parsed.hostname or "localhost").lower()
        host = "localhost" if host in ("127.0.0.1", "::1") else host
        return (scheme, host, str(port or ""), parsed.path)

    ia, ib = ident(a), ident(b)
    return ia is not None and ia == ib


_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433, "http": 80, "https": 443}
_TYPES: dict[str, type] = {
    "ledger_url": str,
    "tracking_uri": str,
    "storage": str,
    "ray_address": str,
    "artifact_root": str,
    "offline": bool,
}


def _read_config(path: Path) -> dict[str, object]:
    if not path.exists():
        return {}
    fix = "Fix it or move it away (every key has a default)."
    if not path.is_file():
        raise OrchestratorError(f"{path}: is not a file. The config must be a TOML file. {fix}")
    try:
        cfg = tomllib.loads(toml_text(path.read_bytes()))
    except UnicodeError as e:  # toml_text's: not UTF-8 text
        raise OrchestratorError(f"{path}: {e}. {fix}") from None
    except tomllib.TOMLDecodeError as e:
        raise OrchestratorError(f"{path}: not valid TOML: {e}. {fix}") from None
    except OSError as e:
        raise OrchestratorError(f"{path}: cannot read it: {e.strerror}. {fix}") from None
    known = set(_TYPES)
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise OrchestratorError(
            f"{path}: unknown key {unknown[0]!r}.{did_you_mean(unknown[0], known)} "
            f"Allowed: {', '.join(sorted(known))}."
        )
    for key, value in cfg.items():
        kind = _TYPES[key]
        if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
            what = "true or false" if kind is bool else "a non-empty string"
            raise OrchestratorError(
                f"{path}: {key}: must be {what}. Received: {key}={plain_value(value)}"
            )
        if isinstance(value, str) and (bad := next((c for c in value if ord(c) < 32), None)):
            raise OrchestratorError(
                f"{path}: {key}: must not contain control characters ({bad!r}); a URL or "
                f"path is plain text. Received: {key}={plain_value(value)}"
            )
    return cfg


def toml_text(data: bytes) -> str:
    """The text of a TOML file (job file or config.toml): UTF-8, TOML's one encoding. A
    UTF-8 byte-order mark, which some editors write and tomllib refuses, is dropped.
    Raises UnicodeError saying what the bytes are instead, and the fix."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnicodeError(
            "not a UTF-8 text file (it is UTF-16, by its byte-order mark); save it as UTF-8"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UnicodeError(
            f"not a text file (not UTF-8: byte {data[e.start]:#04x} at offset {e.start}); "
            "save it as UTF-8 text"
        ) from None


def plain_value(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def config_flag(name: str, home: str | os.PathLike[str] | None = None) -> bool:
    """A true/false key of the workspace's config.toml (e.g. `offline = true`)."""
    return _read_config(home_dir(home) / "config.toml").get(name) is True
