"""Classical baselines on attnkit's digits split (same 360 test images as `data=digits`), for scale.

    python benchmarks/digits_baselines.py

Fits on the training and validation images together (1,437) with scikit-learn defaults plus a small grid where
noted, and prints test accuracy as a Markdown table.
"""

from __future__ import annotations

import time

import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

from attnkit.tasks.vit.data import DigitsData


def main() -> None:
    splits = DigitsData().load()
    fit_sets = (splits.train.tensors, splits.val.tensors)
    x = torch.cat([images for images, _ in fit_sets]).flatten(1).numpy()
    y = torch.cat([labels for _, labels in fit_sets]).numpy()
    x_test, y_test = splits.test.tensors[0].flatten(1).numpy(), splits.test.tensors[1].numpy()
    models = {
        "SVC (RBF, C=10)": SVC(C=10.0),
        "k-nearest neighbours (k=3)": KNeighborsClassifier(n_neighbors=3),
        "logistic regression": LogisticRegression(max_iter=2000),
    }
    print("| model | test accuracy | fit time (s) |")
    print("|---|---:|---:|")
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(x, y)
        fit_s = time.perf_counter() - start
        print(f"| {name} | {(model.predict(x_test) == y_test).mean():.2%} | {fit_s:.2f} |")


if __name__ == "__main__":
    main()
