"""CIFAR-10 and CIFAR-100 from the original python-pickle archives.

Accepted forms, in every search root (see `locate`): the extracted folder
(`cifar-10-batches-py/`, `cifar-100-python/`), the archive as published
(`cifar-10-python.tar.gz`, `cifar-100-python.tar.gz`), and the Keras 2 / Keras 3 cache
layouts. Every file is read and checked before anything is returned: a truncated or
corrupted archive raises DatasetError, never a half-loaded dataset.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchestrator.data.base import Split
from orchestrator.errors import DatasetError

ROW_LENGTH = 3 * 32 * 32  # one image per row: 1024 red, then 1024 green, then 1024 blue
FULL_TRAIN, FULL_TEST = 50_000, 10_000


@dataclass(frozen=True)
class CifarLayout:
    """Names inside one CIFAR archive. `label_key` is the pickle key of the labels used."""

    name: str
    folder: str
    archive: str
    train_members: tuple[str, ...]
    test_member: str
    meta_member: str
    label_key: bytes
    label_names_key: bytes
    num_classes: int
    url: str
    md5: str  # of the archive, as published on https://www.cs.toronto.edu/~kriz/cifar.html

    @property
    def candidates(self) -> tuple[str, ...]:
        # Keras 3 caches under `<folder>-target/<folder>` and keeps `<folder>-target_archive`;
        # Keras 2 used `<folder>/` and `<folder>.tar.gz`.
        return (
            self.folder,
            f"{self.folder}-target/{self.folder}",
            self.archive,
            f"{self.folder}.tar.gz",
            f"{self.folder}-target_archive",
        )

    @property
    def members(self) -> tuple[str, ...]:
        return (*self.train_members, self.test_member, self.meta_member)


CIFAR10 = CifarLayout(
    name="cifar10",
    folder="cifar-10-batches-py",
    archive="cifar-10-python.tar.gz",
    train_members=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_member="test_batch",
    meta_member="batches.meta",
    label_key=b"labels",
    label_names_key=b"label_names",
    num_classes=10,
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
)
CIFAR100 = CifarLayout(
    name="cifar100",
    folder="cifar-100-python",
    archive="cifar-100-python.tar.gz",
    train_members=("train",),
    test_member="test",
    meta_member="meta",
    label_key=b"fine_labels",
    label_names_key=b"fine_label_names",
    num_classes=100,
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    md5="eb9058c3a382ffc7106e4002c42a8d85",
)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and numpy arrays only.

    The archives are pickles a user downloaded; refusing every other global means a
    tampered file cannot run code when orch reads it.
    """

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            # Protocol 5 (Python 3.8+ default) rebuilds arrays from a raw buffer.
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("copy_reg", "_reconstructor"),
            ("copyreg", "_reconstructor"),
            ("__builtin__", "object"),
            # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(str, "latin1").
            ("_codecs", "encode"),
            ("builtins", "object"),
        }
    )

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def _unpickle(blob: bytes, where: str) -> dict:
    try:
        obj = _ArrayOnlyUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as exc:  # any unpickling failure means a corrupted file
        raise DatasetError(f"{where}: not a valid CIFAR pickle ({exc}).") from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: expected a pickled dict. Received: {type(obj).__name__}")
    return obj


# The largest a member of the original format can be: its images as pickled uint8 rows
# plus, per image, a label (two for CIFAR-100) and a file name, and some slack. The real
# batches hold ~3,104 bytes per image (data_batch_1: 31,035,704 bytes for 10,000 images).
_BYTES_PER_IMAGE = ROW_LENGTH + 512
_SLACK = 1 << 20  # 1 MiB: the pickle's framing, the meta file's class names
_MAX_MEMBERS = 1000


def max_member_bytes(name: str, layout: CifarLayout) -> int:
    """Upper bound on the size of member `name` in a genuine (or test-sized) archive."""
    if name in layout.train_members:
        images = FULL_TRAIN // len(layout.train_members)
    elif name == layout.test_member:
        images = FULL_TEST
    elif name == layout.meta_member:
        images = 0
    else:  # a file the format does not have (readme.html): as large as the largest
        images = max(FULL_TRAIN // len(layout.train_members), FULL_TEST)
    return images * _BYTES_PER_IMAGE + _SLACK


def _check_size(where: Path, name: str, size: int, layout: CifarLayout) -> None:
    """Refuse a member whose declared size no CIFAR file has, before reading it: a small
    compressed archive can declare gigabytes (an archive bomb)."""
    limit = max_member_bytes(name, layout)
    if size > limit:
        raise DatasetError(
            f"{where}: member {name!r} declares {size:,} bytes; a {layout.name} file holds "
            f"at most {limit:,}. This is not the original archive: delete it and download "
            f"{layout.url} again."
        )


def _read_members(path: Path, layout: CifarLayout) -> dict[str, bytes]:
    """The raw bytes of every member `layout` needs, from a folder or a tar archive.
    Sizes are checked against the format's before anything is read into memory."""
    if path.is_dir():
        found = {}
        for m in layout.members:
            if (path / m).is_file():
                _check_size(path, m, (path / m).stat().st_size, layout)
                found[m] = (path / m).read_bytes()
    else:
        found = {}
        try:
            with tarfile.open(path, "r:*") as tar:
                declared = 0
                for count, info in enumerate(tar, 1):
                    if count > _MAX_MEMBERS:  # tarfile keeps every header it has read
                        raise DatasetError(
                            f"{path}: more than {_MAX_MEMBERS} members; a {layout.name} "
                            f"archive has {len(layout.members) + 2}. Delete it and download "
                            f"{layout.url} again."
                        )
                    name = Path(info.name).name
                    _check_size(path, name, info.size, layout)
                    declared += info.size
                    if declared > _archive_limit(layout):
                        raise DatasetError(
                            f"{path}: its members declare more than {_archive_limit(layout):,}"
                            f" bytes in all, more than any {layout.name} archive. Delete it "
                            f"and download {layout.url} again."
                        )
                    wanted = info.isfile() and name in layout.members and name not in found
                    if wanted and (member := tar.extractfile(info)) is not None:
                        found[name] = member.read()
                # Read on to the end of the compressed stream: gzip checks its CRC and
                # length there, and a cut that only lost the tail must not pass as whole.
                while tar.fileobj.read(1 << 20):
                    pass
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise DatasetError(
                f"{path}: cannot read the archive ({exc}); it is truncated or corrupted. "
                f"Delete it and download {layout.url} again."
            ) from exc
    missing = [m for m in layout.members if m not in found]
    if missing:
        raise DatasetError(
            f"{path}: incomplete {layout.name} data, missing {', '.join(missing)}. "
            f"Delete it and download {layout.url} again."
        )
    return found


def _archive_limit(layout: CifarLayout) -> int:
    """All members of an archive together: the format's files plus as much again."""
    return 2 * sum(max_member_bytes(m, layout) for m in layout.members)


def _parse_batch(blob: bytes, where: str, layout: CifarLayout) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(blob, where)
    if b"data" not in batch or layout.label_key not in batch:
        keys = sorted(k.decode(errors="replace") for k in batch if isinstance(k, bytes))
        raise DatasetError(
            f"{where}: expected keys 'data' and {layout.label_key.decode()!r}. Received: {keys}"
        )
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[layout.label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW_LENGTH:
        raise DatasetError(
            f"{where}: data must be uint8 rows of {ROW_LENGTH}. Received: {data.dtype} {data.shape}"
        )
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise DatasetError(
            f"{where}: {data.shape[0]} images but labels of shape {labels.shape}; "
            f"the file is corrupted."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= layout.num_classes):
        raise DatasetError(f"{where}: labels outside 0..{layout.num_classes - 1}.")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def _check_meta(blob: bytes, where: str, layout: CifarLayout, sizes: list[int]) -> None:
    meta = _unpickle(blob, where)
    names = meta.get(layout.label_names_key)
    if names is None or len(names) != layout.num_classes:
        raise DatasetError(
            f"{where}: expected {layout.num_classes} {layout.label_names_key.decode()}; "
            f"this is not a {layout.name} archive."
        )
    per_batch = meta.get(b"num_cases_per_batch")  # CIFAR-10 only: 10000 in the original
    if per_batch is not None and any(size != per_batch for size in sizes):
        raise DatasetError(
            f"{where}: num_cases_per_batch={per_batch} but the batches hold {sizes} images; "
            f"the archive is truncated or corrupted."
        )


def load_cifar(path: Path, layout: CifarLayout) -> tuple[Split, Split]:
    """(train, test) from a CIFAR folder or archive at `path`; DatasetError on any damage."""
    blobs = _read_members(path, layout)
    train = [_parse_batch(blobs[m], f"{path}:{m}", layout) for m in layout.train_members]
    test = _parse_batch(blobs[layout.test_member], f"{path}:{layout.test_member}", layout)
    sizes = [len(y) for _, y in train] + [len(test[1])]
    _check_meta(blobs[layout.meta_member], f"{path}:{layout.meta_member}", layout, sizes)
    n_train, n_test = sum(sizes[:-1]), sizes[-1]
    # A full-size half with a short other half is a damaged original, not a test archive.
    if (n_train == FULL_TRAIN) != (n_test == FULL_TEST):
        raise DatasetError(
            f"{path}: {n_train} training and {n_test} test images; the original has "
            f"{FULL_TRAIN} and {FULL_TEST}. Download {layout.url} again."
        )
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return Split(x_train, y_train), Split(*test)
