"""How far the face student gets towards its targets: a quick screen for glasses settings, and a diagnostic.

    OMP_NUM_THREADS=1 python -m benchmarks.faces_fit --set oversample=0.75      # one setting (a face run, ~5 min)
    OMP_NUM_THREADS=1 python -m benchmarks.faces_fit --direct                   # the diagnostic below

Counting glasses by eye (``benchmarks.faces``) is the measure; it is slow, so settings are first screened here by
a number that needs no eye: for the 43 hand-labelled glasses faces, the L1 distance in the eye band (rows 14-40) of
the student's image to the face's target f(z_hat) (found as the run finds it, offsets of the face recipe), divided
by the original's distance to it. 1 = unchanged, 0 = the target exactly. Printed every 80 steps with the SSIM of the
247 faces without glasses. Use it to compare settings, not as a removal rate: a faint frame costs little L1.

``--direct`` is a diagnostic, not a method (it trains on held-out faces): it fine-tunes the recipe's layers
directly towards the targets of the labelled glasses faces that the default run leaves framed (``--faces``), with a
batch of 32 fresh latents kept as they were (L1 only), to ask whether the generator *can* draw those faces without
glasses while keeping the others.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch

from feature_unlearning import metrics
from feature_unlearning.feature import Feature
from feature_unlearning.models.base import render
from feature_unlearning.unlearn import (UnlearnConfig, find_targets, l1_per_sample, parse_overrides, target_margin,
                                        trainable_parameters)

from . import faces as F

EYES = slice(14, 40)
#: the rows of the 64-px faces where each feature is drawn: the eye band for glasses, the top of the head for hats
REGION = {"glasses": EYES, "hat": slice(0, 32)}
#: the labelled glasses faces whose frames the default run (trial V) leaves, counted by eye (faces_by_eye.json)
LEFT_FRAMED = (0, 7, 8, 31, 53, 66, 94, 104, 153, 165, 179, 210, 222, 235, 255, 272, 274)


def eye_l1(a: torch.Tensor, b: torch.Tensor, rows: slice = EYES) -> torch.Tensor:
    return (a[:, :, rows] - b[:, :, rows]).abs().mean(dim=(1, 2, 3))


def setup(feat: str = "glasses", loaded: tuple | None = None):
    """The face model, the labelled faces, the ``feat`` feature of the recipe and the targets of the labelled faces
    that have it: ``(gen, feature, z_lab, x_lab, pos, neg, targets)``. ``loaded``: what ``faces.load_faces()``
    returned, if already at hand."""
    gen, enc, lab, _, z_lab, x_lab, z_clk, x_clk = loaded or F.load_faces()
    clicks = json.loads((F.DATA / F.FEATURES[feat]).read_text())
    probe = Feature.from_selection(z_clk, x_clk, clicks["indices"], feature_extractor=enc, name=feat).oracle
    feature = Feature.from_oracle(gen, probe, n=F.FACE_FEATURE["n_direction"], seed=11, rule=F.FACE_FEATURE["rule"])
    keep, y = F.known(lab["labels"][feat])
    pos, neg = (keep & y).nonzero().squeeze(1), keep & ~y
    cfg = UnlearnConfig(**F.FACE_CONFIG)
    with torch.no_grad():
        _, targets, _ = find_targets(gen, feature.oracle, z_lab[pos], feature.direction, feature.threshold,
                                     margin=target_margin(cfg, feature.oracle), offsets=cfg.search_offsets)
    return gen, feature, z_lab, x_lab, pos, neg, targets.cpu()


def screen(overrides: dict) -> None:
    gen, feature, z_lab, x_lab, pos, neg, targets = setup()
    base = eye_l1(x_lab[pos], targets)

    def report(step: int, info: dict) -> None:
        if step % 80 and step != info["steps"]:
            return
        after = render(info["model"], z_lab).cpu()
        ratio = eye_l1(after[pos], targets) / base
        ssim = metrics.preservation(x_lab[neg], after[neg])["ssim"]
        print(f"step {step}: eye-band L1 to the targets / original's: mean {ratio.mean():.3f}, median "
              f"{ratio.median():.3f}; SSIM of faces without glasses {ssim:.3f}; {info['elapsed']:.0f} s", flush=True)

    cfg = UnlearnConfig(**{**F.FACE_CONFIG, **overrides})
    print(f"settings: the face recipe with {overrides or 'nothing changed'}")
    feature.unlearn(gen, cfg, callback=report, progress_bar=False)


def direct(faces: tuple[int, ...], steps: int, lr: float) -> None:
    gen, feature, z_lab, x_lab, pos, neg, targets = setup()
    rows = [pos.tolist().index(f) for f in faces]
    z_f, t_f = z_lab[list(faces)], targets[rows]
    base = eye_l1(x_lab[list(faces)], t_f)
    student = copy.deepcopy(gen).eval().requires_grad_(False)
    params = trainable_parameters(student, tuple(F.FACE_CONFIG.get("trainable", ())))
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    rng = torch.Generator().manual_seed(1)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        z_other = torch.randn(32, gen.latent_dim, generator=rng)
        with torch.no_grad():
            x_other = gen(z_other)
        loss = l1_per_sample(student(z_f), t_f).mean() + l1_per_sample(student(z_other), x_other).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps:
            with torch.no_grad():
                after = render(student, z_lab).cpu()
            ratio = eye_l1(after[list(faces)], t_f) / base
            ssim = metrics.preservation(x_lab[neg], after[neg])["ssim"]
            print(f"step {step}: the {len(faces)} faces' eye-band L1 to their targets / original's: mean "
                  f"{ratio.mean():.3f}; SSIM of faces without glasses {ssim:.3f}; {time.perf_counter() - start:.0f} s",
                  flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="UnlearnConfig field")
    ap.add_argument("--direct", action="store_true", help="the diagnostic: train on the left-framed faces' targets")
    ap.add_argument("--faces", type=int, nargs="+", default=list(LEFT_FRAMED), help="with --direct")
    ap.add_argument("--steps", type=int, default=300, help="with --direct")
    ap.add_argument("--lr", type=float, default=5e-4, help="with --direct")
    args = ap.parse_args(argv)
    if args.direct:
        direct(tuple(args.faces), args.steps, args.lr)
    else:
        try:
            overrides = parse_overrides(args.set)
        except ValueError as err:
            ap.error(str(err))
        screen(overrides)


if __name__ == "__main__":
    main()
