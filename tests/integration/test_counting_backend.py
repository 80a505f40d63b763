"""The counting backend walks the same layers the Keras backend builds (issue 12 §4)."""

from __future__ import annotations

import pytest

from orchestrator.zoo import architecture, create_model
from orchestrator.zoo.counting import layer_macs

CASES = [
    ("lenet5", {}),
    ("resnet20", {}),
    ("nin_bn", {}),
    ("wrn", {"depth": 10, "width": 2, "seed_variant": True}),
    ("se_resnext", {"depth": 11, "cardinality": 2, "base_width": 4, "seed_variant": True}),
    ("densenet", {"depth": 16, "growth_rate": 4, "bottleneck": True, "compression": 0.5}),
]


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_every_weighted_layer_counts_the_same(name: str, kwargs: dict) -> None:
    model = create_model(name, **kwargs)
    walked = {layer.name: layer for layer in architecture(name, **kwargs).layers}
    built = {layer.name: layer for layer in model.layers if layer.count_params()}
    assert set(built) == {n for n, layer in walked.items() if layer.params}
    for layer_name, layer in built.items():
        assert walked[layer_name].params == layer.count_params(), layer_name
        assert walked[layer_name].macs == layer_macs(layer), layer_name
        out = 1
        for d in layer.output.shape[1:]:
            out *= d
        assert walked[layer_name].writes == out, layer_name
