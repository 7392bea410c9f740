"""convert_keras / project_info on a tiny QKeras net, and the errors users get."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from l1flow.firmware.fixed import FixedType
from l1flow.firmware.hls4ml_project import Hls4mlProjectError, convert_keras, hls_config_for, project_info
from l1flow.firmware.netgraph import FirmwareNet


def _model(quantized_input: bool = True) -> Any:
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    from tensorflow.keras.layers import Input
    from tensorflow.keras.models import Model

    inp = Input((4,), name="features")
    x = QActivation(quantized_bits(9, 3, alpha=1), name="q_in")(inp) if quantized_input else inp
    x = QDense(3, kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1),
               name="hidden")(x)
    x = QActivation(quantized_relu(6, 2), name="act")(x)
    x = QDense(2, kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1),
               name="out")(x)
    model = Model(inp, x, name="tiny")
    rng = np.random.default_rng(9)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    return model


@pytest.mark.slow
def test_convert_keras_writes_compiles_and_describes_the_project(tmp_path: Path) -> None:
    hls_model = convert_keras(
        _model(), tmp_path / "prj", part="xcvu9p-flgb2104-2L-e", clock_period_ns=4.0,
        precision_overrides={"act": {"result": "ufixed<5,2,RND,SAT>"}}, project_name="tiny_ae",
    )
    info = project_info(hls_model)
    assert info.project_dir == (tmp_path / "prj").resolve()
    assert (info.project_name, info.top_function, info.io_type) == ("tiny_ae", "tiny_ae", "io_parallel")
    assert (info.part, info.clock_period_ns, info.backend) == ("xcvu9p-flgb2104-2L-e", 4.0, "Vitis")
    names = {p.name for p in info.firmware_files}
    assert {"tiny_ae.cpp", "tiny_ae.h", "parameters.h", "defines.h"} <= names
    assert [p.to_json() for p in info.inputs] == [
        {"name": "features", "type": "ap_fixed<9,4,AP_RND_CONV,AP_SAT>", "shape": [4]}
    ]
    assert info.input_types == (FixedType(9, 4, True, "RND_CONV", "SAT"),)
    assert info.outputs[0].shape == (2,)
    net = FirmwareNet.from_hls_model(hls_model)
    act = next(layer for layer in net.layers if layer.name == "act")
    assert act.result_type == FixedType(5, 2, False, "RND", "SAT")
    assert str(net.output.type) == info.outputs[0].type
    # the compiled library runs
    y = hls_model.predict(np.zeros((3, 4)))
    assert np.asarray(y).shape == (3, 2)


def test_unquantized_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Hls4mlProjectError, match=r"QActivation\(quantized_bits.*hidden \(QDense\)"):
        convert_keras(_model(quantized_input=False), tmp_path / "p", part="xc7vx690tffg1927-2", clock_period_ns=25)
    assert not (tmp_path / "p").exists()


def test_precision_overrides_name_real_layers_and_keys() -> None:
    model = _model()
    with pytest.raises(Hls4mlProjectError, match="no such layer.*'hidden'"):
        hls_config_for(model, "Vitis", {"hiden": {"result": "fixed<8,3>"}})
    with pytest.raises(Hls4mlProjectError, match="act.acum: the layer has"):
        hls_config_for(model, "Vitis", {"act": {"acum": "fixed<8,3>"}})
    config = hls_config_for(model, "Vitis", {"hidden": {"weight": "fixed<5,1>"}})
    assert config["LayerName"]["hidden"]["Precision"]["weight"] == "fixed<5,1>"
