"""Dataset loading without TensorFlow: digits, synthetic, CIFAR-10/100 and SVHN archives
built here in their original formats, damage detection, splits and normalisation constants.
"""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from orchestrator.data import (
    AUGMENTATIONS,
    DATASETS,
    PREPROCESSING,
    compute_stats,
    list_datasets,
    load_dataset,
)
from orchestrator.data.cifar import CIFAR10, CIFAR100, CifarLayout
from orchestrator.data.digits import bilinear_matrix
from orchestrator.data.normalization import (
    CIFAR10_FULL,
    CIFAR10_ROUNDED,
    CIFAR100_STATS,
    needs_stats,
    normalization,
)
from orchestrator.data.splits import stratified_indices, stratified_split
from orchestrator.errors import DatasetError, SpecError


@pytest.fixture(autouse=True)
def _isolated_search_path(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """No test may find (or depend on) real archives in $ORCH_DATA_DIR or ~/.keras."""
    monkeypatch.delenv("ORCH_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras_home")))


# ---------------------------------------------------------------- archive builders


def _pickle_to(path: Path, obj: object) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))  # the originals are protocol-2 pickles


def _batch(rng: np.random.Generator, n: int, layout: CifarLayout) -> dict:
    labels = [int(v) for v in rng.integers(0, layout.num_classes, n)]
    batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), layout.label_key: labels}
    if layout is CIFAR100:
        batch[b"coarse_labels"] = [v // 5 for v in labels]
    batch[b"filenames"] = [f"img_{i}.png".encode() for i in range(n)]
    return batch


def write_cifar(root: Path, layout: CifarLayout, per_batch: int = 30, seed: int = 0) -> Path:
    """An extracted CIFAR folder in the original layout, `per_batch` images per file."""
    folder = root / layout.folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for member in (*layout.train_members, layout.test_member):
        _pickle_to(folder / member, _batch(rng, per_batch, layout))
    names = [f"class_{i}".encode() for i in range(layout.num_classes)]
    if layout is CIFAR10:
        meta = {b"num_cases_per_batch": per_batch, b"label_names": names, b"num_vis": 3072}
    else:
        meta = {b"fine_label_names": names, b"coarse_label_names": names[:20]}
    _pickle_to(folder / layout.meta_member, meta)
    return folder


def tar_gz(folder: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return target


def _member(folder: Path, name: str) -> dict:
    return pickle.loads((folder / name).read_bytes(), encoding="bytes")


# ---------------------------------------------------------------- registry and names


def test_names_are_available_without_tensorflow() -> None:
    code = (
        "import sys; from orchestrator.data import list_datasets, PREPROCESSING, AUGMENTATIONS,"
        " load_dataset; load_dataset('synthetic', train_size=20, test_size=10);"
        " assert 'tensorflow' not in sys.modules, 'orchestrator.data imported tensorflow'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tables() -> None:
    assert list_datasets() == sorted(DATASETS)
    assert {"cifar10", "cifar100", "svhn", "digits", "synthetic"} <= set(DATASETS)
    assert set(PREPROCESSING) == {
        "none", "scale", "meanstd", "meanstd_rounded", "meanstd_computed", "vgg_mean",
    }  # fmt: skip
    assert AUGMENTATIONS == ("none", "standard", "standard_reflect", "padcrop")


def test_unknown_dataset_is_a_spec_error_with_suggestion() -> None:
    with pytest.raises(SpecError, match="Did you mean: cifar10"):
        load_dataset("cifar1O")


# ---------------------------------------------------------------- digits


def test_digits_shape_dtype_and_fixed_stratified_split() -> None:
    ds = load_dataset("digits")
    assert ds.input_shape == (32, 32, 3) and ds.num_classes == 10 and ds.val is None
    assert ds.train.x.dtype == np.uint8 and ds.train.y.dtype == np.int64
    assert len(ds.train) + len(ds.test) == 1797
    assert len(ds.test) == round(0.2 * 1797)
    # Grey replicated to three channels, full 0..255 range used.
    assert np.array_equal(ds.train.x[..., 0], ds.train.x[..., 2])
    assert ds.train.x.max() == 255 and ds.train.x.min() == 0
    # Stratified: every class has ~20 % of its images in the test split.
    full = np.bincount(ds.train.y, minlength=10) + np.bincount(ds.test.y, minlength=10)
    assert np.all(np.abs(np.bincount(ds.test.y, minlength=10) - 0.2 * full) <= 1)
    # Fixed: independent of the seed argument (which picks validation/subsets only).
    other = load_dataset("digits", seed=123)
    assert np.array_equal(ds.test.x, other.test.x) and np.array_equal(ds.test.y, other.test.y)


def test_bilinear_matrix_is_a_partition_of_unity() -> None:
    weights = bilinear_matrix(8, 32)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert weights.shape == (32, 8) and weights.min() >= 0


# ---------------------------------------------------------------- validation and subsets


def test_stratified_split_is_disjoint_complete_and_proportional() -> None:
    y = np.repeat(np.arange(5), [100, 50, 30, 10, 10])
    kept, held = stratified_split(y, 40, seed=3)
    assert len(held) == 40 and not set(kept) & set(held)
    assert sorted([*kept, *held]) == list(range(len(y)))
    assert np.array_equal(np.bincount(y[held]), [20, 10, 6, 2, 2])
    assert np.array_equal(held, stratified_indices(y, 40, seed=3))  # deterministic
    assert not np.array_equal(held, stratified_indices(y, 40, seed=4))


@pytest.mark.parametrize("size", [0.1, 144])
def test_validation_split_held_out_of_train(size: float) -> None:
    full = load_dataset("digits")
    ds = load_dataset("digits", validation_size=size, seed=5)
    assert ds.val is not None and len(ds.val) == 144
    assert len(ds.train) + len(ds.val) == len(full.train)
    assert np.array_equal(ds.test.x, full.test.x)  # the test set is never touched
    rows = {row.tobytes() for row in ds.train.x.reshape(len(ds.train), -1)}
    # Disjoint (digits has a few duplicate images, so allow those that exist in train twice).
    overlap = sum(row.tobytes() in rows for row in ds.val.x.reshape(len(ds.val), -1))
    assert overlap <= 3
    props = np.bincount(ds.val.y, minlength=10) / len(ds.val)
    np.testing.assert_allclose(props, np.bincount(full.train.y) / len(full.train), atol=0.01)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, 1438, 10_000, True, "0.1"])
def test_bad_validation_size_is_a_spec_error(bad: object) -> None:
    with pytest.raises(SpecError, match="validation_size"):
        load_dataset("digits", validation_size=bad)


def test_train_and_test_size_take_stratified_subsets() -> None:
    ds = load_dataset("digits", train_size=200, test_size=50, validation_size=20)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (180, 20, 50)
    assert np.all(np.bincount(ds.test.y, minlength=10) == 5)
    with pytest.raises(SpecError, match="train_size"):
        load_dataset("digits", train_size=5000)


def test_every_split_carries_the_training_statistics() -> None:
    ds = load_dataset("digits", validation_size=0.1)
    assert ds.train.stats == compute_stats(ds.train.x)
    assert ds.val.stats == ds.train.stats and ds.test.stats == ds.train.stats


def test_compute_stats_matches_numpy() -> None:
    x = np.random.default_rng(0).integers(0, 256, (50, 4, 4, 3), dtype=np.uint8)
    stats = compute_stats(x)
    np.testing.assert_allclose(stats.mean, x.mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(stats.std, x.std(axis=(0, 1, 2)))


# ---------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_balanced_and_sized() -> None:
    a = load_dataset("synthetic", train_size=200, test_size=50)
    b = load_dataset("synthetic", train_size=200, test_size=50)
    assert a.train.x.shape == (200, 32, 32, 3) and len(a.test) == 50
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.test.y, b.test.y)
    assert np.all(np.bincount(a.train.y) == 20)
    assert not np.array_equal(a.train.x[:50], a.test.x)
    assert load_dataset("synthetic100", train_size=300, test_size=100).num_classes == 100


def test_synthetic_classes_are_separable_by_nearest_template() -> None:
    ds = load_dataset("synthetic", train_size=500, test_size=200)
    x_train = ds.train.x.reshape(len(ds.train), -1).astype(np.float64)
    means = np.stack([x_train[ds.train.y == c].mean(axis=0) for c in range(10)])
    x_test = ds.test.x.reshape(len(ds.test), -1).astype(np.float64)
    pred = np.argmin(((x_test[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (pred == ds.test.y).mean() > 0.8


# ---------------------------------------------------------------- CIFAR


@pytest.mark.parametrize("layout", [CIFAR10, CIFAR100], ids=["cifar10", "cifar100"])
@pytest.mark.parametrize("form", ["folder", "tar.gz", "direct archive path"])
def test_cifar_loads_folder_and_archive(tmp_path: Path, layout: CifarLayout, form: str) -> None:
    folder = write_cifar(tmp_path / "src", layout, per_batch=30)
    root = tmp_path / "data"
    root.mkdir()
    if form == "folder":
        folder.rename(root / layout.folder)
        data_dir: Path = root
    else:
        archive = tar_gz(folder, root / layout.archive)
        data_dir = root if form == "tar.gz" else archive
    ds = load_dataset(layout.name, data_dir=data_dir)
    n_train = 30 * len(layout.train_members)
    assert ds.train.x.shape == (n_train, 32, 32, 3) and ds.test.x.shape == (30, 32, 32, 3)
    assert ds.num_classes == layout.num_classes and ds.train.y.dtype == np.int64
    # Pixel layout: a row is 1024 red, 1024 green, 1024 blue values, each row-major 32x32.
    first = _member(folder if folder.exists() else root / layout.folder, layout.train_members[0])
    row = first[b"data"][0]
    assert np.array_equal(ds.train.x[0, :, :, 1], row[1024:2048].reshape(32, 32))
    assert ds.train.y[0] == first[layout.label_key][0]


def test_cifar_found_through_env_and_keras3_cache(tmp_path: Path, monkeypatch) -> None:
    env_root = tmp_path / "env"
    write_cifar(env_root, CIFAR10, per_batch=10, seed=1)
    monkeypatch.setenv("ORCH_DATA_DIR", str(env_root))
    assert len(load_dataset("cifar10").test) == 10
    monkeypatch.delenv("ORCH_DATA_DIR")
    keras_home = tmp_path / "keras"
    write_cifar(keras_home / "datasets" / "cifar-10-batches-py-target", CIFAR10, per_batch=7)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    assert len(load_dataset("cifar10").test) == 7


def test_missing_dataset_lists_every_place(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ORCH_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10", data_dir=tmp_path / "given")
    message = str(err.value)
    for fragment in (
        str(tmp_path / "given" / "cifar-10-python.tar.gz"),
        str(tmp_path / "env" / "cifar-10-batches-py"),
        "datasets/cifar-10-batches-py-target/cifar-10-batches-py",
        "$ORCH_DATA_DIR",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "data_dir=",
    ):
        assert fragment in message
    assert "\n" not in message


def test_truncated_archive_is_detected(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path / "src", CIFAR10, per_batch=40)
    archive = tar_gz(folder, tmp_path / "cifar-10-python.tar.gz")
    blob = archive.read_bytes()
    for cut in (len(blob) // 2, len(blob) - 50):
        archive.write_bytes(blob[:cut])
        with pytest.raises(DatasetError, match=r"truncated or corrupted|incomplete"):
            load_dataset("cifar10", data_dir=tmp_path)


def test_garbage_archive_is_detected(tmp_path: Path) -> None:
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"\x1f\x8b" + bytes(range(256)) * 10)
    with pytest.raises(DatasetError, match=r"cifar-100-python\.tar\.gz"):
        load_dataset("cifar100", data_dir=tmp_path)


def _damage(folder: Path, member: str, **changes: object) -> None:
    batch = _member(folder, member)
    batch.update({k.encode(): v for k, v in changes.items()})
    _pickle_to(folder / member, batch)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda f: (f / "data_batch_4").unlink(), "missing data_batch_4"),
        (lambda f: _damage(f, "data_batch_2", labels=[0] * 29), "labels"),
        (lambda f: _damage(f, "test_batch", data=np.zeros((30, 3000), np.uint8)), "3072"),
        (lambda f: _damage(f, "data_batch_1", data=np.zeros((30, 3072), np.float32)), "uint8"),
        (lambda f: _damage(f, "data_batch_3", labels=[10] * 30), "labels outside"),
        (lambda f: _damage(f, "batches.meta", num_cases_per_batch=10000), "num_cases_per_batch"),
        (lambda f: (f / "data_batch_5").write_bytes(b"\x80\x02garbage"), "not a valid CIFAR"),
        (lambda f: (f / "test_batch").write_bytes(pickle.dumps([1, 2])), "pickled dict"),
    ],
    ids=["missing", "label-count", "row-length", "dtype", "label-range", "meta", "bytes", "type"],
)
def test_inconsistent_folder_is_detected(tmp_path: Path, damage, match: str) -> None:
    folder = write_cifar(tmp_path, CIFAR10, per_batch=30)
    damage(folder)
    with pytest.raises(DatasetError, match=match):
        load_dataset("cifar10", data_dir=tmp_path)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_cifar_pickles_of_every_protocol_load(tmp_path: Path, protocol: int) -> None:
    """Originals are Python 2 protocol-2 pickles; users may repack with a newer protocol."""
    folder = write_cifar(tmp_path, CIFAR10, per_batch=6)
    for member in (*CIFAR10.train_members, CIFAR10.test_member, CIFAR10.meta_member):
        obj = _member(folder, member)
        (folder / member).write_bytes(pickle.dumps(obj, protocol=protocol))
    assert len(load_dataset("cifar10", data_dir=tmp_path).train) == 30


def test_pickles_cannot_run_code(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path, CIFAR100, per_batch=5)

    class Evil:
        def __reduce__(self):
            return (subprocess.call, (["touch", str(tmp_path / "pwned")],))

    (folder / "test").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DatasetError, match="refusing"):
        load_dataset("cifar100", data_dir=tmp_path)
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------- SVHN


def write_svhn(root: Path, n_train: int = 25, n_test: int = 15) -> None:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name, n in (("train_32x32.mat", n_train), ("test_32x32.mat", n_test)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(n, 1).astype(np.uint8)  # 1..10, 10 = digit 0
        scipy.io.savemat(io.BytesIO(), {"X": x, "y": y})  # format sanity
        scipy.io.savemat(root / name, {"X": x, "y": y})


def test_svhn_from_mat_files(tmp_path: Path) -> None:
    write_svhn(tmp_path / "svhn")
    ds = load_dataset("svhn", data_dir=tmp_path)
    assert ds.train.x.shape == (25, 32, 32, 3) and ds.test.x.shape == (15, 32, 32, 3)
    assert ds.train.y.dtype == np.int64 and set(ds.train.y) == set(range(10))
    raw = scipy.io.loadmat(tmp_path / "svhn" / "train_32x32.mat")
    assert np.array_equal(ds.train.x[3], raw["X"][..., 3])
    assert ds.train.y[9] == 0  # label 10 is the digit 0


def test_svhn_missing_test_file_and_corrupted_file(tmp_path: Path) -> None:
    write_svhn(tmp_path)
    (tmp_path / "test_32x32.mat").unlink()
    with pytest.raises(DatasetError, match=r"test_32x32\.mat"):
        load_dataset("svhn", data_dir=tmp_path)
    (tmp_path / "test_32x32.mat").write_bytes(b"MATLAB 5.0 garbage" * 20)
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset("svhn", data_dir=tmp_path)


def test_svhn_missing_lists_places(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"train_32x32\.mat.*svhn/train_32x32\.mat"):
        load_dataset("svhn", data_dir=tmp_path)


# ---------------------------------------------------------------- normalisation constants


def test_published_constants() -> None:
    full = normalization("meanstd", "cifar10", 3, None)
    assert full.mean == (125.307, 122.95, 113.865) and full.std == (62.9932, 62.0887, 66.7048)
    assert full.mean == CIFAR10_FULL.mean
    assert normalization("meanstd_rounded", "cifar10", 3, None).std == CIFAR10_ROUNDED.std
    assert normalization("meanstd", "cifar100", 3, None).mean == CIFAR100_STATS.mean
    assert normalization("meanstd", "cifar100", 3, None).mean == (129.3, 124.1, 112.4)
    vgg = normalization("vgg_mean", "cifar10", 3, None)
    assert vgg.mean == (123.680, 116.779, 103.939) and vgg.std == (1.0, 1.0, 1.0)
    assert normalization("scale", "svhn", 3, None).std == (255.0,) * 3


def test_computed_constants_need_training_stats() -> None:
    ds = load_dataset("digits")
    assert needs_stats("meanstd", "digits") and not needs_stats("meanstd", "cifar10")
    assert needs_stats("meanstd_computed", "cifar10")
    assert normalization("meanstd", "digits", 3, ds.train.stats).mean == ds.train.stats.mean
    rounded = normalization("meanstd_rounded", "digits", 3, ds.train.stats)
    assert rounded.mean == tuple(round(m, 1) for m in ds.train.stats.mean)
    with pytest.raises(ValueError, match="training split"):
        normalization("meanstd_computed", "cifar10", 3, None)
    with pytest.raises(SpecError, match="Did you mean: meanstd"):
        normalization("meanstdd", "cifar10", 3, None)
