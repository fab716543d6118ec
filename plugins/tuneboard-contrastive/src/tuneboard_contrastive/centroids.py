"""How well a model's sentence embeddings separate the classes: nearest-centroid accuracy.

Each class gets the mean of its training examples' L2-normalised embeddings; a held-out
example is assigned the class whose centroid is most cosine-similar to its embedding. High
accuracy means the classes form tight, separate clusters, which is what the contrastive term
trains for. torch and numpy are imported inside the work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuneboard import IGNORE_INDEX, Features, Precision, StageContext
from tuneboard_contrastive.supcon import Pooling, pool

if TYPE_CHECKING:
    import numpy as np


def embed(
    ctx: StageContext,
    model: Any,
    features: Features,
    *,
    pooling: Pooling,
    batch_size: int,
    precision: Precision = "auto",
) -> np.ndarray:
    """Pooled last-layer embeddings ``[N, H]`` (fp32) of `features`, in their order, computed
    on the stage's device in `precision`."""
    import torch

    model.to(ctx.device)
    model.eval()
    chunks = []
    with torch.inference_mode():
        for batch in ctx.training.batches(features, batch_size):
            ctx.check_stop()
            del batch["labels"]
            with ctx.training.autocast(precision):
                hidden = model(**batch, output_hidden_states=True).hidden_states[-1]
            chunks.append(pool(hidden, batch["attention_mask"], pooling).float().cpu())
    result: np.ndarray = torch.cat(chunks).numpy()
    return result


def centroid_accuracy(
    train: np.ndarray, train_labels: np.ndarray, held_out: np.ndarray, held_out_labels: np.ndarray
) -> float:
    """Share of labelled `held_out` rows whose nearest class centroid (cosine) of the `train`
    embeddings is their own class. Rows labelled `IGNORE_INDEX` do not count; classes without
    training rows have no centroid. NaN when nothing can be scored."""
    import numpy as np

    def unit(rows: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        normalised: np.ndarray = rows / np.maximum(norms, 1e-12)
        return normalised

    labelled = train_labels != IGNORE_INDEX
    train, train_labels = unit(train[labelled]), train_labels[labelled]
    classes = np.unique(train_labels)
    counted = held_out_labels != IGNORE_INDEX
    if classes.size == 0 or not counted.any():
        return float("nan")
    centroids = unit(np.stack([train[train_labels == c].mean(axis=0) for c in classes]))
    nearest = classes[np.argmax(unit(held_out[counted]) @ centroids.T, axis=1)]
    return float(np.mean(nearest == held_out_labels[counted]))
