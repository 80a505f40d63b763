"""Keeping native library noise off the user's terminal.

TensorFlow 2.21 writes lines such as "oneDNN custom operations are on", "Could not find
cuda drivers" and "failed call to cuInit" from C++ before absl logging is initialised, so
TF_CPP_MIN_LOG_LEVEL does not stop them. They go to file descriptor 2 directly; the only
way to keep them off the terminal is to point fd 2 elsewhere while TensorFlow loads and
first looks for GPUs. What was written is kept and shown if that step fails, and
ORCH_DEBUG=1 shows everything.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_quiet() -> Iterator[None]:
    """Redirect fd 2 (C/C++ writes included) to a temporary file for the block."""
    if os.environ.get("ORCH_DEBUG") == "1":
        yield
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture, a notebook: leave it
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        except BaseException:
            os.dup2(saved, fd)
            tmp.seek(0)
            os.write(fd, tmp.read())  # the failure's context: what the libraries said
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def import_tensorflow() -> object:
    """`import keras, tensorflow` and the first GPU query, without their native noise."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_quiet():
        import keras  # noqa: F401  (imports TensorFlow as its backend)
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # cuInit happens (and complains) here
        _quiet_absl()
    return tf


def _quiet_absl() -> None:
    """absl's Python logger (used by TF and Keras) prints warnings to stderr once
    initialised; errors still show."""
    with contextlib.suppress(ImportError):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)


class _DropMessage:
    """A logging filter that drops records whose message starts with `prefix`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def filter(self, record: object) -> bool:
        import logging

        assert isinstance(record, logging.LogRecord)
        return not record.getMessage().startswith(self.prefix)


def quiet_ray() -> None:
    """Ray 2.60 logs "Token authentication is enabled for this Ray cluster ..." at every
    local start where RAY_AUTH_MODE is unset: news on the first run, noise on every later
    one. Only that notice goes; "Token authentication is disabled" (a security warning)
    still shows."""
    import logging

    name = "ray._private.authentication.authentication_token_setup"
    logger = logging.getLogger(name)
    if not any(isinstance(f, _DropMessage) for f in logger.filters):
        logger.addFilter(_DropMessage("Token authentication is enabled"))
