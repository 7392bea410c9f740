"""Fast bit-exact BDT emulator on integer words, and test-vector export for BDTs.

``BDTEmulator(forest)`` computes the score words a conifer firmware computes
(see :mod:`l1flow.firmware.forest` for the semantics of each backend). The
trees are walked branch-free as complete binary trees by a numba kernel,
parallel over events. Summing the leaf words in int64 and assigning the total
to the score type once is exact whenever the score type wraps (modular sums
do not depend on order) or when no partial sum can leave the type's range
(checked from the leaf words); otherwise the partial sums are formed in the
firmware's order with the score type's overflow mode at every step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numba
import numpy as np

from l1flow.firmware.fixed import FixedType, check_words, convert, product_type, quantize, sum_type, to_float
from l1flow.firmware.forest import FirmwareForest
from l1flow.firmware.vectors import Port, VectorSet

# events per block on the step-by-step (saturating) path: bounds the
# (events, outputs, trees) leaf-word array it holds
_BLOCK = 1 << 16
# input values quantized per block
_QUANTIZE_VALUES = 1 << 17


# Events walked together through one tree: independent walks interleave, so
# the chain of dependent loads of one walk no longer sets the pace (about
# 1.3-1.5x over one event at a time here).
_INTERLEAVE = 32


@numba.njit(parallel=True, cache=True, nogil=True)
def _leaf_word_sums(  # pragma: no cover - compiled
    x: np.ndarray, feature: np.ndarray, right_from: np.ndarray, leaves: np.ndarray, depth: int, out: np.ndarray
) -> None:
    n_events = x.shape[0]
    n_outputs, n_trees = feature.shape[0], feature.shape[1]
    n_splits = (1 << depth) - 1
    for block in numba.prange((n_events + _INTERLEAVE - 1) // _INTERLEAVE):
        first = block * _INTERLEAVE
        m = min(_INTERLEAVE, n_events - first)
        node = np.zeros(_INTERLEAVE, dtype=np.int64)
        total = np.zeros(_INTERLEAVE, dtype=np.int64)
        for c in range(n_outputs):
            total[:] = 0
            for t in range(n_trees):
                node[:] = 0
                for _ in range(depth):
                    for j in range(m):
                        n = node[j]
                        right = 1 if x[first + j, feature[c, t, n]] >= right_from[c, t, n] else 0
                        node[j] = 2 * n + 1 + right
                for j in range(m):
                    total[j] += leaves[c, t, node[j] - n_splits]
            for j in range(m):
                out[first + j, c] = total[j]


@numba.njit(parallel=True, cache=True, nogil=True)
def _leaf_words(  # pragma: no cover - compiled
    x: np.ndarray, feature: np.ndarray, right_from: np.ndarray, leaves: np.ndarray, depth: int, out: np.ndarray
) -> None:
    n_events = x.shape[0]
    n_outputs, n_trees = feature.shape[0], feature.shape[1]
    n_splits = (1 << depth) - 1
    for block in numba.prange((n_events + _INTERLEAVE - 1) // _INTERLEAVE):
        first = block * _INTERLEAVE
        m = min(_INTERLEAVE, n_events - first)
        node = np.zeros(_INTERLEAVE, dtype=np.int64)
        for c in range(n_outputs):
            for t in range(n_trees):
                node[:] = 0
                for _ in range(depth):
                    for j in range(m):
                        n = node[j]
                        right = 1 if x[first + j, feature[c, t, n]] >= right_from[c, t, n] else 0
                        node[j] = 2 * n + 1 + right
                for j in range(m):
                    out[first + j, c, t] = leaves[c, t, node[j] - n_splits]


def _floorlog2(n: int) -> int:
    return 0 if n < 2 else 1 + _floorlog2(n // 2)


class BDTEmulator:
    """Bit-exact emulation of one conifer BDT firmware on integer words."""

    def __init__(self, forest: FirmwareForest) -> None:
        self.forest = forest
        self._feature, self._right_from, self._leaves = forest.complete_trees()
        self._depth = forest.max_depth
        score = forest.score_type
        self._partial_sum_type = sum_type(forest.sum_type, forest.sum_type)
        self._sum_in_one_step = forest.sum_type.overflow == "WRAP" or self._no_partial_sum_overflows()
        self._norm_is_one = forest.norm_word == 1 << score.frac if score.frac >= 0 else False
        self._unit_weight = forest.unit_weight_word == 1 << forest.weight_type.frac \
            if forest.weight_type.frac >= 0 else False

    @property
    def input_type(self) -> FixedType:
        return self.forest.input_type

    @property
    def output_type(self) -> FixedType:
        return self.forest.norm_type

    def _no_partial_sum_overflows(self) -> bool:
        """True if every partial sum, in any order, stays inside the sum type."""
        t = self.forest.sum_type
        lowest = np.minimum(self._leaves.min(axis=2), 0).sum(axis=1) + np.minimum(self.forest.init_words, 0)
        highest = np.maximum(self._leaves.max(axis=2), 0).sum(axis=1) + np.maximum(self.forest.init_words, 0)
        return bool(lowest.min() >= t.min_word and highest.max() <= t.max_word)

    def quantize_inputs(self, x: np.ndarray) -> np.ndarray:
        """Input words for real features, as the firmware's input cast does."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.forest.n_features:
            raise ValueError(f"inputs have shape {x.shape}; this BDT takes (events, {self.forest.n_features})")
        # in blocks that stay in cache: about ten times faster than one pass
        # over a large array (fresh temporaries of every numpy step page-fault)
        rows = max(1, _QUANTIZE_VALUES // max(1, x.shape[1]))
        if len(x) <= rows:
            return quantize(x, self.input_type)
        return np.concatenate([quantize(x[start : start + rows], self.input_type) for start in range(0, len(x), rows)])

    def predict_words(self, input_words: np.ndarray) -> np.ndarray:
        """Score words (events, n_outputs) for input words (events, n_features)."""
        words = np.ascontiguousarray(input_words, dtype=np.int64)
        if words.ndim != 2 or words.shape[1] != self.forest.n_features:
            raise ValueError(
                f"input words have shape {words.shape}; this BDT takes (events, {self.forest.n_features})"
            )
        check_words(words, self.input_type, "BDT input words")
        if not self._unit_weight:
            # a node compares (T)(x * (W)1.0); W cannot hold 1.0 exactly here
            t, w = self.input_type, self.forest.weight_type
            words = convert(words * self.forest.unit_weight_word, product_type(t, w), t)
        if self._sum_in_one_step:
            totals = np.empty((len(words), self.forest.n_outputs), dtype=np.int64)
            _leaf_word_sums(words, self._feature, self._right_from, self._leaves, self._depth, totals)
            scores = convert(totals + self.forest.init_words, self._partial_sum_type, self.forest.sum_type)
        else:
            scores = np.concatenate(
                [self._stepwise_scores(words[start : start + _BLOCK]) for start in range(0, len(words), _BLOCK)]
            ) if len(words) else np.zeros((0, self.forest.n_outputs), dtype=np.int64)
        if not self._norm_is_one:
            score = self.forest.score_type
            scores = convert(scores * self.forest.norm_word, product_type(score, score), self.output_type)
        return scores

    def _stepwise_scores(self, words: np.ndarray) -> np.ndarray:
        leaves = np.empty((len(words), self.forest.n_outputs, self.forest.n_trees), dtype=np.int64)
        _leaf_words(words, self._feature, self._right_from, self._leaves, self._depth, leaves)
        init = np.broadcast_to(self.forest.init_words, (len(words), self.forest.n_outputs))
        if self.forest.sum_order == "sequential":
            total = init.copy()
            for t in range(self.forest.n_trees):
                total = self._add(total, leaves[:, :, t])
            return total
        return self._add(init, self._balanced_sum(leaves))

    def _add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return convert(a + b, self._partial_sum_type, self.forest.sum_type)

    def _balanced_sum(self, leaves: np.ndarray) -> np.ndarray:
        # conifer's reduce(): the left part holds the largest power of two below n
        n = leaves.shape[2]
        if n == 1:
            return leaves[:, :, 0]
        if n == 2:
            return self._add(leaves[:, :, 0], leaves[:, :, 1])
        left = 1 << _floorlog2(n - 1)
        return self._add(self._balanced_sum(leaves[:, :, :left]), self._balanced_sum(leaves[:, :, left:]))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Real scores (events, n_outputs) for real features."""
        return to_float(self.predict_words(self.quantize_inputs(x)), self.output_type)


def export_vectors(
    forest: FirmwareForest,
    input_words: np.ndarray,
    output_words: np.ndarray,
    model_info: dict[str, Any],
    folder: Path | str,
) -> VectorSet:
    """Save a BDT's input and output words as a test-vector folder (docs/formats.md); return the set.

    Ports: ``x`` (the input type, ``n_features`` words) and ``score`` (the
    output type, ``n_outputs`` words). ``model_info`` (e.g. name and version)
    is recorded together with the forest's content hash and backend.
    """
    inputs = np.asarray(input_words, dtype=np.int64)
    outputs = np.asarray(output_words, dtype=np.int64)
    if outputs.ndim == 1:
        outputs = outputs.reshape(-1, 1)
    out_type = forest.norm_type
    check_words(inputs, forest.input_type, "BDT input words")
    check_words(outputs, out_type, "BDT output words")
    model = {**model_info, "kind": "bdt", "forest_hash": forest.content_hash(), "conifer_backend": forest.backend}
    vectors = VectorSet(
        inputs=[Port("x", str(forest.input_type), (forest.n_features,))],
        outputs=[Port("score", str(out_type), (forest.n_outputs,))],
        input_words=inputs,
        output_words=outputs,
        model=model,
        source="emulator",
    )
    vectors.save(Path(folder))
    return vectors
