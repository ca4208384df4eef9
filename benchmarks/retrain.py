"""The gold-standard baseline: retrain each bundled architecture from scratch without the feature.

    python -m benchmarks.retrain                       # 4 models (about 1 hour on 2 CPU cores)
    python -m benchmarks.retrain --models mnist-vae    # only the VAEs (minutes)
    python -m benchmarks.retrain --budget 0.25         # a quarter of the bundled training steps/epochs

Trains with the same config that made the bundled checkpoint (times ``--budget`` for its steps or
epochs), on the offline training digits minus those with the feature (true label 8 for digit:8; the
stroke-width oracle's positives for thick), and writes
benchmarks/models/<model>-without-<feature>/ (a model folder + retrain.json with the measured training time).
benchmarks/run.py loads them.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import feature_unlearning as fu
from feature_unlearning import baselines, hub
from feature_unlearning.data import load_mnist
from feature_unlearning.utils import machine_info

from .run import RETRAINED


def budget_text(config) -> str:
    return f"{config.steps:,} steps" if hasattr(config, "steps") else f"{config.epochs} epochs"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mnist-dcgan", "mnist-vae"])
    parser.add_argument("--features", nargs="+", default=["thick", "digit:8"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--budget", type=float, default=1.0,
                        help="fraction of the bundled training budget (steps for a GAN, epochs for a VAE)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    images, labels = load_mnist("train")
    for model_name in args.models:
        base = fu.load_pretrained(model_name)
        for feature in args.features:
            start = time.perf_counter()
            config = baselines.training_config(base, args.budget)
            model, hist = baselines.retrain_without(base, images, labels, fu.get_oracle(feature), config=config)
            seconds = time.perf_counter() - start
            out = RETRAINED / f"{model_name}-without-{feature.replace(':', '')}"
            card = hub.model_card(
                title=f"{model_name} retrained without {feature}",
                summary=f"The `{model_name}` architecture and training config, trained from scratch on the offline "
                f"training digits without `{feature}` ({hist['n_train']:,} digits), {budget_text(config)}. "
                "A baseline for benchmarks/run.py.",
                metadata={"license": "cc-by-sa-3.0", "datasets": ["mnist"]},
                sections={"Cost": f"{seconds / 60:.1f} min on {machine_info()}."},
            )
            hub.save_pretrained(model, out, card=card, overwrite=True)
            (out / "retrain.json").write_text(json.dumps(
                {"model": model_name, "feature": feature, "seconds": seconds, "n_train": hist["n_train"],
                 "budget": args.budget, "training": budget_text(config),
                 "machine": machine_info()}, indent=2))
            print(f"{out}: {seconds / 60:.1f} min, {hist['n_train']} training digits", flush=True)


if __name__ == "__main__":
    main()
