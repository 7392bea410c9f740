"""Retraining and quantization: QKeras autoencoders, xgboost BDTs, trigger metrics.

Firmware precision is the firmware backends' choice (:mod:`l1flow.backends`).

- :mod:`~l1flow.training.specs`: pydantic model specs (``ModelSpec``, told apart by ``kind``);
- :mod:`~l1flow.training.preprocessing`: hardware integers -> exact firmware inputs (power-of-two shifts);
- :mod:`~l1flow.training.networks`: the QKeras / Keras networks and the masked reconstruction loss;
- :mod:`~l1flow.training.train`: ``train_model`` (from scratch or warm-started, deterministic);
- :mod:`~l1flow.training.model`: ``TrainedModel`` (scores, firmware model, weights hash, save / load);
- :mod:`~l1flow.training.metrics`: AUC, threshold and efficiency at a fixed rate, decision agreement;
- :mod:`~l1flow.training.plots`: ROC, efficiency vs rate, score and loss PNGs;
"""
