"""ImageNet weights for densenet121/169/201: keras.applications' files, fetched once.

The zoo's ImageNet DenseNets are keras.applications' DenseNet121/169/201 layer for layer
(same layer order, shapes and explicit stem padding), so their published weight files load
as they are: by layer order (Keras' .h5 format), the whole net when it has 1000 classes,
every layer but the classifier otherwise (the "notop" file; the new head starts from its
initializer). Files are looked for in $ORCH_WEIGHTS_DIR, then the Keras cache
($KERAS_HOME/models, where keras.applications keeps them too), else downloaded there
like the datasets (data/download.py): md5-checked against the hash keras.applications
pins, written atomically, refused when orch is offline (ORCH_OFFLINE=1) with the file
and the place to put it. A file already there is checked against the same md5.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from orchestrator.errors import DatasetError

BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/densenet/"
# (depth, with classifier) -> md5 of the file, as keras.applications pins it
MD5: dict[tuple[int, bool], str] = {
    (121, True): "9d60b8095a5708f2dcce2bca79d332c7",
    (121, False): "30ee3e1110167f948a6b9946edeeb738",
    (169, True): "d699b8f76981ab1b30698df4c175e90b",
    (169, False): "b8c4d4c20dd625c148057b9ff1c1176b",
    (201, True): "1ceb130c1ea1b78c3bf6114dbdfd8807",
    (201, False): "c13680b51ded0fb44dff2d8f86ac8bb1",
}
FILES: dict[tuple[int, bool], tuple[str, str]] = {
    (depth, top): (
        f"densenet{depth}_weights_tf_dim_ordering_tf_kernels{'' if top else '_notop'}.h5",
        md5,
    )
    for (depth, top), md5 in MD5.items()
}
IMAGENET_DEPTHS = frozenset(depth for depth, _ in MD5)
ENV_WEIGHTS_DIR = "ORCH_WEIGHTS_DIR"


def cache_dir() -> Path:
    home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return Path(home).expanduser() / "models"


def weights_file(depth: int, top: bool) -> Path:
    """The checked weights file for densenet<depth> (with or without its classifier)."""
    from orchestrator.data import download

    filename, _ = FILES[(depth, top)]
    md5 = MD5[(depth, top)]  # read at call time (a test pins its own file's hash)
    roots = [Path(d).expanduser() for d in (os.environ.get(ENV_WEIGHTS_DIR),) if d]
    for root in [*roots, cache_dir()]:
        path = root / filename
        if path.is_file():
            _check(path, md5)
            return path
    remote = download.Remote(filename, BASE_URL + filename, md5)
    return download.fetch(remote, f"densenet{depth}", cache_dir(), what="weights")


def _check(path: Path, md5: str) -> None:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != md5:
        raise DatasetError(
            f"{path}: md5 {digest.hexdigest()} is not the published {md5}; the file is "
            "damaged or another file. Delete it (orch fetches it again) or replace it."
        )


def load_pretrained(model: Any, config: Any) -> None:
    """Load `config.kwargs["weights"]` ("imagenet") into the built `model`."""
    import keras

    depth = int(config.kwargs["depth"])
    top = config.num_classes == 1000
    path = weights_file(depth, top)
    # Without the classifier: the net up to the last BN-ReLU, as the notop file holds it.
    target = model if top else keras.Model(model.input, model.get_layer("head_relu").output)
    try:
        target.load_weights(str(path))
    except (ValueError, OSError) as e:
        raise DatasetError(f"{path}: cannot load it into {config.name}: {e}") from None
