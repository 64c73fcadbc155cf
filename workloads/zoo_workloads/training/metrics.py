"""Accuracy metrics from collected scores (pure numpy, unit-tested).

Images: top-1/top-5 over samples. Videos (resnet3d): clip accuracy over windows, and video top-1/top-5 after
averaging the softmax of all windows of a video (the seed's sliding-window evaluation).
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose label is among the k highest scores (k is capped at the class count)."""
    if len(labels) == 0:
        return 0.0
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def image_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """top_1_accuracy and top_5_accuracy of image predictions."""
    return {
        "top_1_accuracy": topk_accuracy(logits, labels, 1),
        "top_5_accuracy": topk_accuracy(logits, labels, 5),
    }


def video_metrics(logits: np.ndarray, labels: np.ndarray, videos: np.ndarray) -> dict[str, float]:
    """clip_accuracy over windows; top_1/top_5_accuracy per video from the mean softmax of its windows."""
    probs = softmax(logits.astype(np.float64))
    ids = np.unique(videos)
    mean = np.stack([probs[videos == v].mean(axis=0) for v in ids])
    video_labels = np.array([labels[videos == v][0] for v in ids])
    return {
        "top_1_accuracy": topk_accuracy(mean, video_labels, 1),
        "top_5_accuracy": topk_accuracy(mean, video_labels, 5),
        "clip_accuracy": topk_accuracy(logits, labels, 1),
    }
