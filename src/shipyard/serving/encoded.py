"""One-hot encoding and a gradient boosting, without pandas: the churn template's pipeline, fast.

``Pipeline([ColumnTransformer([OneHotEncoder, ...], remainder="passthrough"),
HistGradientBoostingClassifier])`` is the most common shape of a tabular classifier, and
scikit-learn spends milliseconds per call on it for one row: the ColumnTransformer
validates and slices a pandas frame, the encoder checks every column, then the trees
are walked one call each. Here the encoded row is written straight into a float array
(a dictionary look-up per category, the numeric columns copied as they are) and the
trees are walked by `shipyard.serving.trees.Forest` (past its size, the classifier
itself predicts on the encoded array).

Only what can be matched exactly is taken: one-hot encoders without dropped or
infrequent categories, over string categories; identity passthrough; dropped columns.
A value the encoder never saw goes to scikit-learn when the encoder would raise, so the
error is the model's own. The gateway compares the result with the pipeline's own
predict_proba, bit for bit, before it uses it (`shipyard.serving.runtime`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.serving.trees import Forest

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, slots=True)
class OneHot:
    column: str
    start: int  # where its categories begin in the encoded row
    codes: dict[str, int]  # category → offset from start
    strict: bool  # the encoder raises on an unseen category


@dataclass(frozen=True, slots=True)
class Passthrough:
    column: str
    at: int  # its place in the encoded row


@dataclass(frozen=True, slots=True)
class EncodedForest:
    width: int
    one_hot: tuple[OneHot, ...]
    passthrough: tuple[Passthrough, ...]
    forest: Forest
    classifier: Any  # the pipeline's last step, for batches past the walk (it was fitted on encoded arrays)

    @classmethod
    def of(cls, model: Any) -> EncodedForest | None:
        """The encoded forest of a fitted ColumnTransformer → HistGradientBoostingClassifier pipeline; None otherwise."""
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

        steps = getattr(model, "steps", None) if isinstance(model, Pipeline) else None
        if not steps or len(steps) != 2 or not isinstance(steps[0][1], ColumnTransformer):
            return None
        encoder, classifier = steps[0][1], steps[1][1]
        forest = Forest.of(classifier)
        if forest is None or hasattr(classifier, "feature_names_in_") or getattr(encoder, "sparse_output_", True):
            return None
        names = list(getattr(encoder, "feature_names_in_", ()))
        one_hot: list[OneHot] = []
        passthrough: list[Passthrough] = []
        for name, transformer, columns in encoder.transformers_:
            where = encoder.output_indices_[name]
            selected = [names[c] if isinstance(c, int) and not isinstance(c, bool) else c for c in _as_list(columns)]
            if not all(isinstance(c, str) and c in names for c in selected):
                return None
            if transformer == "drop":
                continue
            if transformer == "passthrough" or (
                isinstance(transformer, FunctionTransformer) and transformer.func is None and not transformer.validate
            ):
                passthrough += [Passthrough(column, where.start + i) for i, column in enumerate(selected)]
                continue
            if type(transformer) is not OneHotEncoder or not _plain(transformer):
                return None
            start = where.start
            for column, categories in zip(selected, transformer.categories_, strict=True):
                if not all(isinstance(c, str) for c in categories):
                    return None
                one_hot.append(
                    OneHot(column, start, {c: i for i, c in enumerate(categories)}, transformer.handle_unknown == "error")
                )
                start += len(categories)
            if start != where.stop:
                return None
        width = max([p.at + 1 for p in passthrough] + [h.start + len(h.codes) for h in one_hot] + [0])
        if int(forest.feature.max()) >= width:
            return None
        return cls(width=width, one_hot=tuple(one_hot), passthrough=tuple(passthrough), forest=forest, classifier=classifier)

    def encode(self, columns: dict[str, Any]) -> np.ndarray | None:
        """The encoded rows, or None when scikit-learn must answer (an unseen category its encoder refuses, a missing one)."""
        import numpy as np

        count = len(next(iter(columns.values())))
        rows = np.zeros((count, self.width))
        for part in self.one_hot:
            for row, value in enumerate(columns[part.column]):
                code = part.codes.get(value) if isinstance(value, str) else None
                if code is not None:
                    rows[row, part.start + code] = 1.0
                elif part.strict or not isinstance(value, str):
                    return None
        for column in self.passthrough:
            values = columns[column.column]
            if not isinstance(values, np.ndarray) or values.dtype.kind not in "biuf":
                return None  # a nullable boolean with a gap, text: what it means is scikit-learn's to say
            rows[:, column.at] = values
        return rows

    def predict_proba(self, columns: dict[str, Any]) -> np.ndarray | None:
        """Class probabilities, or None when scikit-learn must answer (see `encode`)."""
        import numpy as np

        rows = self.encode(columns)
        if rows is None:
            return None
        if self.forest.walks(len(rows)):
            return self.forest.predict_proba(rows)
        return np.asarray(self.classifier.predict_proba(rows))  # past the walk: the trees one by one, still no frame

    def probe(self, rows: int = 256, seed: int = 0) -> dict[str, list[Any]]:
        """Inputs that reach many leaves: seen and unseen categories, numbers on and just above split thresholds."""
        import numpy as np

        rng = np.random.default_rng(seed)
        encoded = self.forest.probe(rows, seed)
        probe: dict[str, list[Any]] = {}
        for part in self.one_hot:
            seen = list(part.codes)
            choices = seen if part.strict else [*seen, "unseen category"]
            probe[part.column] = [choices[i] for i in rng.integers(0, len(choices), rows)]
        for column in self.passthrough:
            values = encoded[:, column.at] if column.at < encoded.shape[1] else np.zeros(rows)
            probe[column.column] = np.nan_to_num(values, nan=0.0).tolist()
        return probe


def _as_list(columns: Any) -> list[Any]:
    if isinstance(columns, str | int):
        return [columns]
    return list(columns)


def _plain(encoder: Any) -> bool:
    """A one-hot encoder whose output is one column per category seen: nothing dropped, nothing grouped."""
    return (
        getattr(encoder, "drop_idx_", None) is None
        and not getattr(encoder, "_infrequent_enabled", False)
        and encoder.handle_unknown in ("ignore", "error")
    )
