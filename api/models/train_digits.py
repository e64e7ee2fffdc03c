"""Train the bundled ``digits`` model: an MLP on scikit-learn's 8×8 handwritten digits (bundled
with scikit-learn: no download), written as ``api/models/digits.safetensors``.

Inputs are the raw pixel intensities 0..16 (64 per image, row-major); the 1/16 input scaling used in
training is folded into the first layer's weights, so clients send the data as scikit-learn gives
it. ``held_out_split()`` is the evaluation split the accuracy test sends through the HTTP API.

    python -m nexpo.api.models.train_digits            # retrain and overwrite the committed file
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..inference.registry import save_model

OUT = Path(__file__).resolve().parent / "digits.safetensors"
HIDDEN = (128, 64)
SEED = 0
PIXEL_MAX = 16.0


def _dataset() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data.astype(np.float32), data.target.astype(np.int64)


def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    x, y = _dataset()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=SEED, stratify=y)
    return x_train, x_test, y_train, y_test


def held_out_split() -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) never seen in training: 450 rows of 64 raw pixel values."""
    _, x_test, _, y_test = _split()
    return x_test, y_test


def train(out: Path = OUT) -> float:
    """Train, save, and return held-out accuracy."""
    from sklearn.neural_network import MLPClassifier

    x_train, x_test, y_train, y_test = _split()
    clf = MLPClassifier(
        hidden_layer_sizes=HIDDEN, activation="relu", alpha=1e-3, max_iter=500, random_state=SEED, tol=1e-6
    )
    clf.fit(x_train / PIXEL_MAX, y_train)
    accuracy = float(clf.score(x_test / PIXEL_MAX, y_test))
    weights = [w.astype(np.float32) for w in clf.coefs_]
    weights[0] = weights[0] / np.float32(PIXEL_MAX)  # accept raw 0..16 pixels
    biases = [b.astype(np.float32) for b in clf.intercepts_]
    activations = ["relu"] * len(HIDDEN) + ["softmax"]
    labels = [str(int(c)) for c in clf.classes_]
    save_model(
        out,
        weights=weights,
        biases=biases,
        activations=activations,
        labels=labels,
        description=(
            "Handwritten digit classifier (scikit-learn digits, 8x8 images). Input: 64 pixel "
            f"intensities 0..16, row-major. Held-out accuracy {accuracy:.4f}."
        ),
    )
    return accuracy


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nexpo.api.models.train_digits", description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    accuracy = train(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes); held-out accuracy {accuracy:.4f}")
    return 0 if accuracy >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
