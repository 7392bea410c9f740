"""Training time of the default models, side by side with their reference tools.

- dense AE: l1flow's QKeras autoencoder (train_model) vs the same
  architecture in plain float Keras, same data, batch size and epochs;
- BDT: l1flow's train_model vs a bare ``xgboost.train`` with the same
  parameters on the same matrix.

Prints train_seconds, the ratios, the test AUC per signal and one JSON line.
Run: .venv/bin/python benchmarks/bench_training.py [--background 200000]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import l1flow  # noqa: F401  (toolchain environment)
from l1flow.conditions.payload import ConditionsPayload
from l1flow.data.generator import generate_events
from l1flow.training.metrics import trigger_metrics
from l1flow.training.specs import BDTClassifierSpec, DenseAESpec
from l1flow.training.train import train_model


def _float_keras_ae(spec: DenseAESpec, x: np.ndarray, x_val: np.ndarray, seed: int) -> float:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((x.shape[1],))
    h = inputs
    for layer in [*spec.encoder, spec.latent, *spec.decoder_layers()]:
        h = tf.keras.layers.Dense(layer.units, activation="relu")(h)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(x.shape[1])(h))
    model.compile(optimizer=tf.keras.optimizers.Adam(spec.optimizer.learning_rate), loss="mse")
    began = time.perf_counter()
    model.fit(x, x, batch_size=spec.batch_size, epochs=spec.epochs, validation_data=(x_val, x_val), verbose=0)
    return time.perf_counter() - began


def _bare_xgboost(spec: BDTClassifierSpec, x: np.ndarray, y: np.ndarray, seed: int) -> float:
    import xgboost as xgb

    params = {"objective": "binary:logistic", "max_depth": spec.max_depth, "eta": spec.learning_rate,
              "seed": seed, "nthread": spec.threads, "tree_method": "hist", "base_score": 0.5}
    began = time.perf_counter()
    xgb.train(params, xgb.DMatrix(x.astype(np.float32), label=y), num_boost_round=spec.n_trees)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--background", type=int, default=200_000, help="training background events")
    parser.add_argument("--signal", type=int, default=10_000, help="training events per signal (BDT)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--trees", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    conditions = ConditionsPayload()
    train = generate_events(conditions, args.background, args.signal, seed=args.seed)
    validation = generate_events(conditions, args.background // 5, 2000, seed=args.seed + 1)
    test = generate_events(conditions, 200_000, 20_000, seed=args.seed + 2)

    ae_spec = DenseAESpec(name="axol1tl_ae", epochs=args.epochs)
    bdt_spec = BDTClassifierSpec(name="bdt", n_trees=args.trees, max_depth=4, learning_rate=0.3)
    ae = train_model(ae_spec, train, validation, seed=args.seed)
    bdt = train_model(bdt_spec, train, validation, seed=args.seed)

    background = train.select(~train.is_signal())
    x = ae.firmware_inputs(background).astype(np.float32)
    x_val = ae.firmware_inputs(validation.select(~validation.is_signal())).astype(np.float32)
    keras_seconds = _float_keras_ae(ae_spec, x, x_val, args.seed)
    xgb_seconds = _bare_xgboost(bdt_spec, bdt.firmware_inputs(train), train.is_signal().astype(np.float32), args.seed)

    result = {
        "background_events": args.background,
        "ae_train_seconds": ae.train_seconds,
        "ae_float_keras_seconds": keras_seconds,
        "ae_ratio_vs_float_keras": ae.train_seconds / keras_seconds,
        "bdt_train_seconds": bdt.train_seconds,
        "bdt_bare_xgboost_seconds": xgb_seconds,
        "bdt_ratio_vs_bare_xgboost": bdt.train_seconds / xgb_seconds,
        "total_train_seconds": ae.train_seconds + bdt.train_seconds,
    }
    for name, model in (("ae", ae), ("bdt", bdt)):
        metrics = trigger_metrics(model.score(test), test, working_point_khz=1.0)
        result[f"{name}_auc"] = metrics["auc"]
        result[f"{name}_efficiency_at_1khz"] = metrics["efficiency_at_rate"]
    print(f"AE  (QKeras, {args.epochs} epochs): {ae.train_seconds:.1f} s; float Keras {keras_seconds:.1f} s; "
          f"ratio {result['ae_ratio_vs_float_keras']:.2f}")
    print(f"BDT ({args.trees} trees):          {bdt.train_seconds:.1f} s; bare xgboost {xgb_seconds:.1f} s; "
          f"ratio {result['bdt_ratio_vs_bare_xgboost']:.2f}")
    print(f"AE + BDT: {result['total_train_seconds']:.1f} s")
    for name in ("ae", "bdt"):
        print(name, "AUC", {k: round(v, 3) for k, v in result[f"{name}_auc"].items()},
              "eff@1kHz", {k: round(v, 4) for k, v in result[f"{name}_efficiency_at_1khz"].items()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
