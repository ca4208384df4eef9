"""Train a DCGAN with the plain recipe and keep snapshots, each measured cheaply, to choose the best one.

    OMP_NUM_THREADS=1 python -m benchmarks.dcgan_snapshots --steps 12000 --every 1000 --out runs/dcgan

Every ``--every`` steps the generator (BatchNorm recalibrated on 20,000 prior samples, eval mode) is saved
as ``OUT/step-XXXXX/`` (a model folder with ``history.json`` and ``train_config.json``, so that
``python -m benchmarks.train_bundled --only dcgan --dcgan-from OUT/step-XXXXX`` can bundle it) and measured on
``--n`` samples (seed 12345) with ``mnist-classifier``: the Frechet distance to the ``heldout`` split
(statistics computed here from the 2,000 digits, not the shipped file), the digit shares and the mean
confidence. The bundled model named by ``--baseline`` is measured first with the same code and reference.
Results go to ``OUT/snapshots.json`` and ``benchmarks/results/dcgan_snapshots.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from feature_unlearning import hub, metrics
from feature_unlearning.data import load_mnist
from feature_unlearning.train import GANTrainConfig, recalibrate_batchnorm, train_dcgan
from feature_unlearning.utils import machine_info

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "dcgan_snapshots.md"


@torch.no_grad()
def measure(model, clf, reference: dict, n: int) -> dict:
    images = model.generate(n, seed=12345)
    stats = metrics.digit_stats(images, clf)
    return {"fd_heldout": metrics.frechet_distance(images, reference, classifier=clf),
            "min_share": stats.min_share, "max_share": stats.max_share,
            "class_shares": stats.class_shares, "mean_confidence": stats.mean_confidence}


def row(name: str, q: dict) -> str:
    return (f"| {name} | {q['fd_heldout']:.2f} | {q['min_share']:.1%}-{q['max_share']:.1%} | "
            f"{q['mean_confidence']:.3f} |")


def write_table(path: Path, args, cfg, results: dict, speed: str) -> None:
    lines = [
        "# DCGAN snapshots (plain recipe)",
        "",
        f"Command: `python -m benchmarks.dcgan_snapshots --steps {args.steps} --every {args.every} --n {args.n}` "
        f"on {machine_info()}. Config: `{asdict(cfg)}`. {speed}",
        "",
        f"Each row: {args.n:,} samples (seed 12345) judged by `mnist-classifier`; Frechet distance in its feature "
        "space to the 2,000 digits of the `heldout` split (statistics computed from them here, the same for every "
        "row, the baseline included).",
        "",
        "| model | FD to held-out | digit shares (min-max) | mean confidence |",
        "|---|---|---|---|",
        *[row(name, q) for name, q in results.items()],
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=GANTrainConfig().steps)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--baseline", default="mnist-dcgan")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--ema-decay", type=float, default=GANTrainConfig().ema_decay,
                        help="> 0: also keep and measure an exponential moving average of G's weights")
    parser.add_argument("--translate", type=int, default=GANTrainConfig().translate,
                        help="DiffAugment shifts (px) for the discriminator's real and fake images")
    parser.add_argument("--lr-decay-start", type=int, default=GANTrainConfig().lr_decay_start,
                        help="> 0: after this step both learning rates fall linearly to 0 at the last step")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    x_train, _ = load_mnist("train")
    x_held, _ = load_mnist("heldout")
    clf = hub.load_pretrained("mnist-classifier")
    reference = metrics.reference_state(x_held, clf)
    results: dict = {}
    if args.baseline:
        results[f"{args.baseline} (bundled, old)"] = measure(hub.load_pretrained(args.baseline), clf, reference, args.n)
        print(row(f"{args.baseline} (bundled, old)", results[f"{args.baseline} (bundled, old)"]), flush=True)
    cfg = GANTrainConfig(steps=args.steps, ema_decay=args.ema_decay, translate=args.translate,
                         lr_decay_start=args.lr_decay_start)
    history: dict = {"step": [], "loss_d": [], "loss_g": []}
    start = time.perf_counter()
    measuring = [0.0]  # seconds spent in snapshot(), not counted as training time

    def callback(step: int, losses: dict) -> None:
        history["step"].append(step)
        history["loss_d"].append(losses["loss_d"])
        history["loss_g"].append(losses["loss_g"])
        if step % 500 == 0:
            print(f"step {step} {time.perf_counter() - start:.0f}s {losses}", flush=True)

    def snapshot(step: int, gens: dict) -> None:
        t0 = time.perf_counter()
        seconds = t0 - start - measuring[0]  # training time up to here (measuring is not counted)
        for kind, g in gens.items():
            recalibrate_batchnorm(g, seed=cfg.seed)  # 20,000 prior samples, as the final model gets
            g.eval()
            suffix = "" if kind == "raw" else f"-{kind}"
            folder = args.out / f"step-{step:05d}{suffix}"
            if folder.exists():
                import shutil

                shutil.rmtree(folder)
            hub.save_pretrained(g, folder)
            # train_dcgan logs the losses of this step after calling snapshot(): the step is recorded without them
            hist = {**history, "step": history["step"] + [step], "seconds": seconds}
            (folder / "history.json").write_text(json.dumps(hist) + "\n")
            snap_cfg = asdict(cfg) | {"steps": step, "ema_decay": cfg.ema_decay if kind == "ema" else 0.0}
            (folder / "train_config.json").write_text(json.dumps(snap_cfg) + "\n")
            name = f"step {step}" + ("" if kind == "raw" else f" ({kind})")
            results[name] = {**measure(g, clf, reference, args.n), "seconds": seconds}
            print(row(name, results[name]), flush=True)
        (args.out / "snapshots.json").write_text(json.dumps(results, indent=2) + "\n")
        write_table(args.results, args, cfg, results, f"Training: {step / seconds:.2f} steps/s.")
        measuring[0] += time.perf_counter() - t0

    train_dcgan(x_train, cfg, callback=callback, snapshot=snapshot, snapshot_every=args.every)


if __name__ == "__main__":
    main()
