"""The gold-standard baseline: retrain each bundled architecture from scratch without the feature.

    python -m benchmarks.retrain                       # 4 models (about 1 hour on 2 CPU cores)
    python -m benchmarks.retrain --models mnist-vae    # only the VAEs (minutes)
    python -m benchmarks.retrain --budget 0.25         # a quarter of the bundled training steps/epochs
    python -m benchmarks.retrain --floor               # what the judges find in the retrained models (no training)

Trains with the same config that made the bundled checkpoint (times ``--budget`` for its steps or
epochs), on the offline training digits minus those with the feature (true label 8 for digit:8; the
stroke-width oracle's positives for thick), and writes
benchmarks/models/<model>-without-<feature>/ (a model folder + retrain.json with the measured training time).
benchmarks/run.py loads them.

``--floor`` writes results/retrain_floor.md: the share of samples in which the oracle and the independent judges
see the feature, in each bundled model and in its retrained-without-the-feature counterpart (10,000 samples each,
own latents). A model that never saw the feature still draws samples the judges read as it (a generator's spread past
the cut for thick strokes, ambiguous digits for an 8): what retraining, the gold standard, leaves.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import feature_unlearning as fu
from feature_unlearning import baselines, hub, judges
from feature_unlearning.data import load_mnist
from feature_unlearning.utils import machine_info

from .run import RETRAINED, load_retrained

FLOOR = RETRAINED.parent / "results" / "retrain_floor.md"


def _shares(model, feature: str, n: int, seed: int) -> dict[str, float]:
    """Share of ``n`` samples with ``feature``: by its oracle, and by each judge at the plain and strict reading."""
    images = model.generate(n, seed=seed)
    out = {"oracle": fu.get_oracle(feature).share(images)}
    for name, row in judges.removal_report(images, images[:0], feature).items():
        out[name], out[name + " strict"] = row["before"], row["before_strict"]
    return out


def floor(models: list[str], features: list[str], *, n: int = 10_000, seed: int = 30_000) -> str:
    """The table of results/retrain_floor.md (see the module docstring)."""
    lines = ["| model | feature | retrained on | oracle: original / retrained | judge: original / retrained | "
             "judge, strict: original / retrained | judge's share that retraining removes |",
             "|---|---|---|---|---|---|---|"]
    for model_name in models:
        base = fu.load_pretrained(model_name)
        for feature in features:
            retrained, info = load_retrained(model_name, feature)
            if retrained is None:
                continue
            a, b = _shares(base, feature, n, seed), _shares(retrained, feature, n, seed)
            judge = next(k for k in a if k not in ("oracle",) and not k.endswith("strict"))
            lines.append(
                f"| {model_name} | {feature} | {info['training']} (budget {info['budget']:g}), {info['n_train']:,} digits | "
                f"{a['oracle']:.2%} / {b['oracle']:.2%} | {a[judge]:.2%} / {b[judge]:.2%} | "
                f"{a[judge + ' strict']:.2%} / {b[judge + ' strict']:.2%} | {1 - b[judge] / a[judge]:.1%} |")
            print(lines[-1], flush=True)
    return "\n".join(lines)


def budget_text(config) -> str:
    return f"{config.steps:,} steps" if hasattr(config, "steps") else f"{config.epochs} epochs"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mnist-dcgan", "mnist-vae"])
    parser.add_argument("--features", nargs="+", default=["thick", "digit:8"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--budget", type=float, default=1.0,
                        help="fraction of the bundled training budget (steps for a GAN, epochs for a VAE)")
    parser.add_argument("--floor", action="store_true", help="measure the retrained models (writes results/retrain_floor.md)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.floor:
        start = time.perf_counter()
        table = floor(args.models, args.features)
        FLOOR.write_text(
            "# The judges' floor: what they find in models retrained without the feature\n\n"
            f"Command: `python -m benchmarks.retrain --floor` ({time.perf_counter() - start:.0f} s), {machine_info()}.\n\n"
            "10,000 samples of each model (seed 30,000, each model's own latents). Judge: `mnist-judge-resnet` (arg-max; "
            "strict: confidence > 0.9) for digit:8, the skeleton stroke width (90th / 95th percentile of real digits) for "
            "thick. The retrained model was trained from scratch on the training digits without the feature "
            "(`python -m benchmarks.retrain`), the gold standard of unlearning: what the oracle and the judges still find in it "
            "is what even retraining leaves. For a continuous feature (thick) that is the generator's own spread, which puts "
            "some samples past a cut it never saw; for a digit, ambiguous samples a classifier reads as an 8. No removal figure "
            "measured against the original can be read without it.\n\n" + table + "\n")
        return print(f"wrote {FLOOR}")
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
