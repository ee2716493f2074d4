"""Write iris's and digits' ``baseline.json`` from the data they were trained on (scikit-learn's bundled sets).

The committed files are this script's output: the same bytes on every run (``make model`` runs it after the
models are built, so a retrained model ships a baseline of its own answers).

Usage: python layers/models/build_baselines.py
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits, load_iris

from functions.config.models import load_models_config
from ops.drift.baseline import REPO_ROOT, baseline_path, make_baseline, write_baseline

TRAINING_DATA = {"iris": load_iris, "digits": load_digits}


def main() -> None:
    config = load_models_config(REPO_ROOT / "functions" / "models.json")
    for name, loader in TRAINING_DATA.items():
        model = config.model(name)
        assert model.artifact is not None
        features = loader(return_X_y=True)[0].astype(np.float32)
        baseline = make_baseline(model, REPO_ROOT / model.artifact, {model.inputs[0].name: features})
        path = baseline_path(model)
        write_baseline(baseline, path)
        print(f"wrote {path.relative_to(REPO_ROOT)} ({len(features)} rows, {len(baseline.features)} features)")


if __name__ == "__main__":
    main()
