"""A fitted sklearn IsolationForest compiled into flat numpy arrays for fast, exact scoring.

sklearn's `score_samples` walks the trees one Python call at a time (~5 ms for one
sample with 100 trees). Here every tree is concatenated into one set of node
arrays, so a batch is scored with a few numpy calls per tree level and a single
event in ~15 us, with results equal to sklearn's (same float32 rounding of the
input, same float64 leaf terms, same tree-order summation and final formula).

The stored arrays (`to_arrays`) are in sklearn's node order, tree after tree:

- `feature`: input column split on (the tree's feature subset already mapped
  to the global column), -1 at leaves;
- `threshold`: sklearn's float64 threshold (`x <= threshold` goes left);
- `left`, `right`: offsets of the children in these arrays, -1 at leaves;
- `missing_go_to_left`: where a NaN goes (sklearn's `tree_.missing_go_to_left`);
- `leaf_value`: at leaves, the tree's term of sklearn's summed depth,
  `(depth + c(n_node_samples)) - 1.0` with the root at depth 1;
- `roots`: offset of each tree's root; plus the scalars `offset`, `max_samples`,
  `n_features_in` and `format_version`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
_BLOCK_CELLS = 1 << 15  # rows x trees walked together by score_samples; larger spills the cache
_ARRAYS = ("feature", "threshold", "left", "right", "missing_go_to_left", "leaf_value", "roots")
_SCALARS = ("offset", "max_samples", "n_features_in", "format_version")


def _average_path_length(n_samples) -> np.ndarray:
    """c(n) as sklearn's `_average_path_length` computes it, operation for operation."""
    n = np.asarray(n_samples).reshape((1, -1))
    out = np.zeros(n.shape)
    large = ~np.logical_or(n <= 1, n == 2)
    out[n == 2] = 1.0
    out[large] = 2.0 * (np.log(n[large] - 1.0) + np.euler_gamma) - 2.0 * (n[large] - 1.0) / n[large]
    return out.reshape(-1)


def _float32_floor(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 <= each threshold: for a float32 x, `x <= t` iff `x <= floor32(t)`.

    sklearn compares the float32 input with float64 thresholds; this lets the
    comparison stay in float32 with the same outcome.
    """
    rounded = threshold.astype(np.float32)
    return np.where(rounded > threshold, np.nextafter(rounded, np.float32(-np.inf)), rounded)


class CompiledForest:
    """An IsolationForest as flat arrays: `score_samples`, `score_one`, `decision_function`."""

    def __init__(self, *, feature, threshold, left, right, missing_go_to_left, leaf_value, roots,
                 offset, max_samples, n_features_in, format_version=FORMAT_VERSION):
        if int(format_version) != FORMAT_VERSION:
            raise ValueError(f"compiled forest format {int(format_version)} is not supported "
                             f"(this code reads format {FORMAT_VERSION})")
        self._stored = {
            "feature": np.array(feature, dtype=np.int64),
            "threshold": np.array(threshold, dtype=np.float64),
            "left": np.array(left, dtype=np.int64),
            "right": np.array(right, dtype=np.int64),
            "missing_go_to_left": np.array(missing_go_to_left, dtype=bool),
            "leaf_value": np.array(leaf_value, dtype=np.float64),
            "roots": np.array(roots, dtype=np.int64),
            "offset": np.float64(offset),
            "max_samples": np.int64(max_samples),
            "n_features_in": np.int64(n_features_in),
            "format_version": np.int64(FORMAT_VERSION),
        }
        for array in self._stored.values():
            if isinstance(array, np.ndarray):
                array.flags.writeable = False
        self.offset_ = float(offset)
        self.max_samples_ = int(max_samples)
        self.n_features_in_ = int(n_features_in)
        self._validate()
        self._build()

    def _validate(self) -> None:
        s = self._stored
        n = len(s["feature"])
        if any(s[name].shape != (n,) for name in _ARRAYS[:-1]) or s["roots"].ndim != 1 or len(s["roots"]) == 0:
            raise ValueError("compiled forest arrays have inconsistent shapes")
        leaf = s["left"] < 0
        if not np.array_equal(leaf, s["right"] < 0):
            raise ValueError("compiled forest: a node has exactly one child")
        if (s["left"].max(initial=-1) >= n or s["right"].max(initial=-1) >= n
                or s["roots"].min() < 0 or s["roots"].max() >= n
                or (~leaf & ((s["feature"] < 0) | (s["feature"] >= self.n_features_in_))).any()):
            raise ValueError("compiled forest: node, root or feature index out of range")

    def _node_depths(self) -> np.ndarray:
        """Depth of every node (roots at 0); rejects arrays that are not a set of trees."""
        s = self._stored
        depth = np.full(len(s["feature"]), -1)
        frontier, level = s["roots"], 0
        while len(frontier):
            if (depth[frontier] >= 0).any() or len(np.unique(frontier)) != len(frontier):
                raise ValueError("compiled forest: a node is reached twice (a cycle or a shared node)")
            depth[frontier] = level
            frontier = frontier[s["left"][frontier] >= 0]
            frontier = np.concatenate((s["left"][frontier], s["right"][frontier]))
            level += 1
        if (depth < 0).any():
            raise ValueError("compiled forest: some nodes are not reachable from a root")
        return depth

    def _build(self) -> None:
        """Derive the execution layout; the stored arrays stay in sklearn's order.

        Nodes are renumbered: internal nodes first, grouped by feature (so one
        `np.repeat` of the sample lines its values up with every threshold), then
        leaves. Leaves are their own children, so every tree is walked the same
        number of levels; the deepest leaves come last, as they are only reached
        by the final step and so need no entry in score_one's next-node array.
        """
        s = self._stored
        n = len(s["feature"])
        leaf = s["left"] < 0
        depth = self._node_depths()
        self._depth = int(depth.max())
        inner = np.flatnonzero(~leaf)
        inner = inner[np.argsort(s["feature"][inner], kind="stable")]
        leaves = np.flatnonzero(leaf)
        leaves = leaves[np.argsort(depth[leaves] == self._depth, kind="stable")]
        order = np.concatenate((inner, leaves))
        new_id = np.empty(n, dtype=np.intp)
        new_id[order] = np.arange(n)
        left = new_id[np.where(leaf, np.arange(n), s["left"])][order]
        right = new_id[np.where(leaf, np.arange(n), s["right"])][order]
        n_inner = len(inner)
        n_walked = n - np.count_nonzero(depth[leaves] == self._depth)
        value = s["leaf_value"][order]
        self._negated_denominator = -(len(s["roots"]) * _average_path_length([self.max_samples_]))

        # score_one: next node of every internal node in one pass, then the leaves still walked.
        # int32 halves the memory traffic of that pass; the walk itself is faster on intp.
        self._counts = np.bincount(s["feature"][inner], minlength=self.n_features_in_)
        self._thresholds32 = _float32_floor(s["threshold"][inner])
        self._to_right = right[:n_inner].astype(np.int32)
        self._to_left_minus_right = (left - right)[:n_inner].astype(np.int32)
        self._leaf_ids = np.arange(n_inner, n_walked, dtype=np.intp)
        self._roots = new_id[s["roots"]]
        self._value = value

        # score_samples: arrays indexed by 2 * node, so the child is `child2[2 * node + go_left]`.
        self._feature2 = np.repeat(np.where(leaf, 0, s["feature"])[order], 2)
        self._threshold2 = np.repeat(_float32_floor(np.where(leaf, np.nan, s["threshold"]))[order], 2)
        self._child2 = 2 * np.stack((right, left), axis=1).ravel()
        self._nan_left2 = np.repeat((s["missing_go_to_left"] & ~leaf)[order], 2)
        self._any_nan_left = bool(self._nan_left2.any())
        self._value2 = np.repeat(value, 2)
        self._roots2 = 2 * new_id[s["roots"]]

    @classmethod
    def from_sklearn(cls, model) -> CompiledForest:
        """Compile a fitted `sklearn.ensemble.IsolationForest`.

        Per-tree feature subsets (`max_features` < 1) are mapped to global columns
        only when sklearn itself indexes by them (subset smaller than all
        features); with all features sklearn ignores `estimators_features_`.
        """
        if not hasattr(model, "estimators_"):
            raise ValueError("the IsolationForest is not fitted")
        n_features = int(model.n_features_in_)
        subset = len(model.estimators_features_[0]) != n_features
        parts, start = [], 0
        for estimator, columns in zip(model.estimators_, model.estimators_features_, strict=True):
            tree = estimator.tree_
            leaf = tree.children_left == -1
            feature = np.where(leaf, 0, tree.feature)
            if subset:
                feature = np.asarray(columns)[feature]
            # sklearn adds `depths[leaf] + c(n_node_samples)[leaf] - 1.0` per tree, in this order.
            value = tree.compute_node_depths() + _average_path_length(tree.n_node_samples) - 1.0
            parts.append({
                "feature": np.where(leaf, -1, feature),
                "threshold": tree.threshold,
                "left": np.where(leaf, -1, tree.children_left + start),
                "right": np.where(leaf, -1, tree.children_right + start),
                "missing_go_to_left": tree.missing_go_to_left.astype(bool),
                "leaf_value": np.where(leaf, value, 0.0),
                "roots": [start],
            })
            start += tree.node_count
        arrays = {name: np.concatenate([p[name] for p in parts]) for name in _ARRAYS}
        return cls(**arrays, offset=model.offset_, max_samples=model.max_samples_, n_features_in=n_features)

    def to_arrays(self) -> dict[str, Any]:
        """Everything needed to rebuild the forest, as plain arrays (for `np.savez`, no pickle)."""
        return {name: np.asarray(value) for name, value in self._stored.items()}

    @classmethod
    def from_arrays(cls, arrays) -> CompiledForest:
        missing = [name for name in _ARRAYS + _SCALARS if name not in arrays]
        if missing:
            raise ValueError(f"compiled forest arrays lack {', '.join(missing)}")
        return cls(**{name: arrays[name] for name in _ARRAYS + _SCALARS})

    def save(self, path: str | Path) -> None:
        with open(path, "wb") as f:
            np.savez(f, **self.to_arrays())

    @classmethod
    def load(cls, path: str | Path) -> CompiledForest:
        with np.load(path, allow_pickle=False) as npz:
            return cls.from_arrays({name: npz[name] for name in npz.files})

    @property
    def n_trees(self) -> int:
        return len(self._stored["roots"])

    def score_samples(self, X) -> np.ndarray:
        """sklearn's `score_samples`: minus the anomaly score, lower is more abnormal.

        All trees advance one level at a time for a block of rows. Like sklearn, X
        is rounded to float32 first (leaves are their own children, with a NaN
        threshold that sends every value to the `right` slot, i.e. itself).
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected X of shape (n_samples, {self.n_features_in_}), got shape {X.shape}")
        depths = np.empty(len(X))
        rows = max(1, _BLOCK_CELLS // self.n_trees)
        row_start = (np.arange(rows) * self.n_features_in_)[:, None]
        for start in range(0, len(X), rows):
            block = X[start:start + rows]
            flat = block.ravel()
            has_nan = self._any_nan_left and np.isnan(flat).any()
            node2 = np.broadcast_to(self._roots2, (len(block), self.n_trees))
            for _ in range(self._depth):
                values = flat.take(row_start[:len(block)] + self._feature2.take(node2))
                go_left = values <= self._threshold2.take(node2)
                if has_nan:
                    go_left |= np.isnan(values) & self._nan_left2.take(node2)
                node2 = self._child2.take(node2 + go_left)
            # Sequential sum over the trees in sklearn's order, as its `depths +=` loop.
            depths[start:start + len(block)] = np.add.accumulate(self._value2.take(node2), axis=1)[:, -1]
        return self._finish(depths)

    def score_one(self, x) -> float:
        """`score_samples` for one sample (1-D, n_features_in_ values), equal to the batch result.

        Rather than walking trees level by level (several numpy calls per level),
        it first computes the next node of every internal node for this sample in
        a few array operations over all nodes, then walks all trees at once with a
        single `take` per level.
        """
        x = np.asarray(x, dtype=np.float32)
        if x.shape != (self.n_features_in_,):
            raise ValueError(f"expected one sample of {self.n_features_in_} features, got shape {x.shape}")
        if self._any_nan_left and np.isnan(x.dot(x)):  # x.x is NaN only if some x is
            return float(self.score_samples(x[None, :])[0])
        go_left = np.repeat(x, self._counts) <= self._thresholds32
        next_node = np.concatenate((go_left * self._to_left_minus_right + self._to_right, self._leaf_ids),
                                   dtype=np.intp)
        node = self._roots
        for _ in range(self._depth):
            node = next_node.take(node)
        return float(self._finish(np.add.accumulate(self._value.take(node))[-1:])[0])

    def decision_function(self, X) -> np.ndarray:
        """sklearn's `decision_function`: `score_samples - offset_`, negative for outliers."""
        return self.score_samples(X) - self.offset_

    def _finish(self, depths: np.ndarray) -> np.ndarray:
        """sklearn's normalisation, -(2 ** -(depth sum / (n_trees * c(max_samples)))).

        Dividing by the negated denominator is the same IEEE result as negating the
        quotient, one numpy call fewer.
        """
        if self._negated_denominator[0] != 0:
            return -(2 ** (depths / self._negated_denominator))
        return np.full_like(depths, -0.5)
