"""A conifer BDT as the firmware holds it: integer words and the types they live in.

``FirmwareForest.from_conifer(model)`` reads a conifer model and quantizes
every threshold, leaf value, initial score and the normalisation exactly as
the backend the model was made for does:

- cpp (conifer's C++ emulation, the reference): inputs and thresholds in
  ``threshold_precision``; a node compares ``(T)(x[f] * (W)1)`` with the
  threshold (``W`` the weight type, so the one-hot weight is ``(W)1.0``);
  leaves, the initial score and the normalisation in ``score_precision``; the
  class score is ``std::accumulate`` from the initial score over the trees in
  order, every partial sum assigned to the score type (its rounding and
  overflow modes apply at every step), then ``*= (U)norm``;
- xilinxhls: the same types; the trees are summed by a balanced tree reduce
  (``reduce`` in BDT_unrolled.h), then added to the initial score;
- vhdl: one type (``input_precision``) for inputs, thresholds and scores;
  sums are VHDL ``signed`` additions, which wrap, and the normalisation is a
  bit slice of the double-width product (truncate, wrap).

Trees keep conifer's node layout (``feature`` -2 at leaves, children -1);
:meth:`FirmwareForest.complete_trees` lays each out as a complete binary tree
of the forest's depth, the shape a branch-free emulator walks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from l1flow.errors import BadInputError
from l1flow.firmware.fixed import FixedType, quantize

LEAF = -2
SPLITTING_CONVENTIONS = ("<", "<=")
SUM_ORDERS = ("sequential", "balanced")


class ForestError(BadInputError):
    """A conifer model that the firmware forest cannot represent."""


@dataclass(frozen=True)
class FirmwareTree:
    """One decision tree in conifer's node layout, thresholds and leaves as words."""

    feature: np.ndarray  # int32 per node: input index, or -2 at a leaf
    threshold: np.ndarray  # int64 threshold words (0 at leaves)
    children_left: np.ndarray  # int32 per node: taken when the split is true; -1 at leaves
    children_right: np.ndarray  # int32 per node
    value: np.ndarray  # int64 score words at leaves (0 at splits)

    def depth(self) -> int:
        """Number of splits on the longest root-to-leaf path."""
        deepest = 0
        stack = [(0, 0)]
        while stack:
            node, depth = stack.pop()
            if self.feature[node] == LEAF:
                deepest = max(deepest, depth)
            else:
                stack.append((int(self.children_left[node]), depth + 1))
                stack.append((int(self.children_right[node]), depth + 1))
        return deepest


@dataclass(frozen=True)
class FirmwareForest:
    """A BDT's integer words and types, as one conifer backend's firmware computes it."""

    backend: str
    trees: tuple[tuple[FirmwareTree, ...], ...]  # [tree][output]
    n_features: int
    n_classes: int  # conifer's class count (2 for binary)
    input_type: FixedType  # type of the input words (the threshold type)
    threshold_type: FixedType
    weight_type: FixedType
    score_type: FixedType
    splitting_convention: str  # "<" (xgboost) or "<=": the split is true -> left child
    init_words: np.ndarray  # int64 (n_outputs,) initial score words
    norm_word: int  # normalisation in the score type
    sum_type: FixedType  # type every partial sum of scores is assigned to
    sum_order: str  # "sequential" (init, tree 0, tree 1, ...) or "balanced"
    norm_type: FixedType  # type the normalised score is assigned to
    unit_weight_word: int  # (W)1.0: the one-hot weight of an axis-aligned split

    @property
    def n_outputs(self) -> int:
        """Score words per event: 1 for binary classification and regression."""
        return 1 if self.n_classes == 2 else self.n_classes

    @property
    def n_trees(self) -> int:
        return len(self.trees)

    @property
    def max_depth(self) -> int:
        return max((tree.depth() for per_tree in self.trees for tree in per_tree), default=0)

    @classmethod
    def from_conifer(cls, model: Any) -> FirmwareForest:
        """Quantize a conifer model (cpp, vhdl or xilinxhls backend) into firmware words."""
        config = model.config
        backend = str(getattr(config, "backend", ""))
        if backend not in ("cpp", "vhdl", "xilinxhls"):
            raise ForestError(
                f"conifer backend {backend!r} has no fixed-point firmware; use cpp, vhdl or xilinxhls"
            )
        if model.splitting_convention not in SPLITTING_CONVENTIONS:
            raise ForestError(f"unknown splitting convention {model.splitting_convention!r}")

        def parse(field: str) -> FixedType:
            spelling = getattr(config, field, None)
            if not isinstance(spelling, str) or not spelling.startswith("ap_"):
                raise ForestError(
                    f"conifer config {field}={spelling!r}: the firmware forest needs ap_ fixed-point types"
                )
            return FixedType.parse(spelling)

        if backend == "vhdl":
            # conifer's VHDL writer converts everything with input_precision
            one = parse("input_precision")
            threshold_t = score_t = one
            # VHDL compares X(iFeature) with the threshold directly: a weight of exactly one
            weight_t = FixedType(2, 2, is_int=True)
            sum_t = one.with_modes(overflow="WRAP")
            norm_t = one.with_modes(rounding="TRN", overflow="WRAP")
            sum_order = "sequential"  # wrapping sums: the order of the add tree does not matter
        else:
            threshold_t = parse("threshold_precision")
            weight_t = parse("weight_precision")
            score_t = parse("score_precision")
            sum_t = norm_t = score_t
            sum_order = "sequential" if backend == "cpp" else "balanced"

        n_outputs = 1 if model.n_classes == 2 else model.n_classes
        trees: list[tuple[FirmwareTree, ...]] = []
        for i_tree, per_tree in enumerate(model.trees):
            if len(per_tree) != n_outputs:
                raise ForestError(f"tree {i_tree} has {len(per_tree)} class trees, expected {n_outputs}")
            trees.append(
                tuple(
                    _firmware_tree(tree, model.n_features, threshold_t, score_t, f"tree {i_tree} class {c}")
                    for c, tree in enumerate(per_tree)
                )
            )
        init = np.asarray(model.init_predict, dtype=np.float64).reshape(-1)
        if init.size != n_outputs:
            raise ForestError(f"init_predict has {init.size} values for {n_outputs} outputs")
        norm_word = int(quantize(np.array([float(model.norm)]), score_t)[0])
        if backend == "vhdl" and norm_word == 1 and score_t.frac > 0:
            # BDT.vhd skips the multiplication when the normalisation word is 1
            norm_word = 1 << score_t.frac
        return cls(
            backend=backend,
            trees=tuple(trees),
            n_features=int(model.n_features),
            n_classes=int(model.n_classes),
            input_type=threshold_t,
            threshold_type=threshold_t,
            weight_type=weight_t,
            score_type=score_t,
            splitting_convention=model.splitting_convention,
            init_words=quantize(init, score_t),
            norm_word=norm_word,
            sum_type=sum_t,
            sum_order=sum_order,
            norm_type=norm_t,
            unit_weight_word=int(quantize(np.array([1.0]), weight_t)[0]),
        )

    def complete_trees(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every tree as a complete binary tree of depth ``D = max_depth``.

        Returns ``(feature, right_from, leaves)``: ``feature`` and ``right_from``
        are ``(n_outputs, n_trees, 2**D - 1)`` over the split nodes in
        breadth-first order (children of node n at 2n+1, 2n+2), ``leaves`` is
        ``(n_outputs, n_trees, 2**D)`` score words. An input word ``x`` goes
        right at a node iff ``x >= right_from`` (for "<": the threshold; for
        "<=": threshold + 1, exact on integers). A leaf above depth D fills
        all its descendants and its padding nodes compare feature 0 against
        anything, both sides reaching the same value.
        """
        depth = self.max_depth
        n_splits, n_leaves = (1 << depth) - 1, 1 << depth
        shape = (self.n_outputs, self.n_trees)
        feature = np.zeros(shape + (max(n_splits, 1),), dtype=np.int32)
        right_from = np.zeros(shape + (max(n_splits, 1),), dtype=np.int64)
        leaves = np.zeros(shape + (n_leaves,), dtype=np.int64)
        offset = 1 if self.splitting_convention == "<=" else 0
        for t, per_tree in enumerate(self.trees):
            for c, tree in enumerate(per_tree):
                stack = [(0, 0, 0)]  # (conifer node, complete-tree slot, depth)
                while stack:
                    node, slot, level = stack.pop()
                    if tree.feature[node] == LEAF:
                        # the leaf slots of all depth-D descendants of `slot`
                        start = ((slot + 1) << (depth - level)) - 1 - n_splits
                        leaves[c, t, start : start + (1 << (depth - level))] = tree.value[node]
                        continue
                    feature[c, t, slot] = tree.feature[node]
                    right_from[c, t, slot] = int(tree.threshold[node]) + offset
                    stack.append((int(tree.children_left[node]), 2 * slot + 1, level + 1))
                    stack.append((int(tree.children_right[node]), 2 * slot + 2, level + 1))
        return feature, right_from, leaves

    def content_hash(self) -> str:
        """sha256 of every word and type: equal hashes compute equal firmware."""
        digest = hashlib.sha256()
        header = {
            "backend": self.backend,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "types": [str(t) for t in (self.input_type, self.threshold_type, self.weight_type,
                                       self.score_type, self.sum_type, self.norm_type)],
            "splitting_convention": self.splitting_convention,
            "sum_order": self.sum_order,
            "init": self.init_words.tolist(),
            "norm": self.norm_word,
            "unit_weight": self.unit_weight_word,
        }
        digest.update(json.dumps(header, sort_keys=True).encode())
        for per_tree in self.trees:
            for tree in per_tree:
                for array in (tree.feature, tree.threshold, tree.children_left, tree.children_right, tree.value):
                    digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        return digest.hexdigest()


def _firmware_tree(tree: Any, n_features: int, threshold_t: FixedType, score_t: FixedType, where: str) -> FirmwareTree:
    feature = np.asarray(tree.feature, dtype=np.int32)
    left = np.asarray(tree.children_left, dtype=np.int32)
    right = np.asarray(tree.children_right, dtype=np.int32)
    threshold = np.asarray(tree.threshold, dtype=np.float64)
    value = np.asarray(tree.value, dtype=np.float64)
    n_nodes = len(feature)
    if not (len(left) == len(right) == len(threshold) == len(value) == n_nodes) or n_nodes == 0:
        raise ForestError(f"{where}: node arrays of different lengths")
    splits = feature != LEAF
    if np.any(feature[splits] < 0) or np.any(feature[splits] >= n_features):
        raise ForestError(f"{where}: a split uses a feature outside 0..{n_features - 1}")
    if np.any(left[splits] <= 0) or np.any(right[splits] <= 0) or np.any(left[splits] >= n_nodes) \
            or np.any(right[splits] >= n_nodes):
        raise ForestError(f"{where}: a split node has a child index outside the tree")
    weights = getattr(tree, "weight", None)
    if weights is not None:
        # conifer's axis-aligned splits carry a one-hot weight row; oblique
        # splits (other weights) are not what conifer's xgboost converter makes
        for node in np.flatnonzero(splits):
            row = np.asarray(weights[node], dtype=np.float64)
            expected = np.zeros(n_features)
            expected[feature[node]] = 1.0
            if row.shape != expected.shape or not np.array_equal(row, expected):
                raise ForestError(f"{where}: node {node} is an oblique split; only axis-aligned splits are supported")
    threshold_words = np.where(splits, quantize(np.where(splits, threshold, 0.0), threshold_t), 0)
    value_words = np.where(splits, 0, quantize(np.where(splits, 0.0, value), score_t))
    return FirmwareTree(
        feature=feature,
        threshold=threshold_words.astype(np.int64),
        children_left=left,
        children_right=right,
        value=value_words.astype(np.int64),
    )
