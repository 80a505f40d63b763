"""Cost of the data fingerprint in a trial's provenance: sha256 of a CIFAR-sized archive
(170 MB of random bytes), first time (hashing) and after (the cache beside the file).

    .venv/bin/python benchmarks/provenance_hash.py [MB]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from orchestrator.tracking.provenance import data_fingerprint


def main() -> None:
    mb = int(sys.argv[1]) if len(sys.argv) > 1 else 170
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cifar-10-python.tar.gz"
        with open(path, "wb") as f:
            for _ in range(mb):
                f.write(os.urandom(1 << 20))
        t0 = time.perf_counter()
        first = data_fingerprint([path])
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = data_fingerprint([path])
        cached = time.perf_counter() - t0
        assert first == again
    rate = mb / cold
    print(
        f"{mb} MB: first fingerprint {cold:.2f} s ({rate:.0f} MB/s), cached {cached * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    main()
