"""Many face-unlearning settings in one go, each screened as ``benchmarks.faces_fit`` screens one (a GPU helps).

    python -m benchmarks.faces_sweep --device cuda --out DIR [--only NAME ...] [--scale 0.1]

For each trial of ``TRIALS`` (the glasses or hat feature of the face recipe, then UnlearnConfig fields over
``V_CONFIG``), prints and appends to ``DIR/sweep.jsonl`` at every checkpoint: the L1 of the hand-labelled faces
with the feature to their oracle targets, in the feature's rows (``faces_fit.REGION``: the eye band, the top of the
head), over the original's (``faces_fit``'s "fit": 1 = unchanged, 0 = the targets), the SSIM of the labelled faces
without it, the click probe's positive share among those with it (in the loss), and the seconds spent training
(checkpoints excluded). The labelled faces each trial's final model draws go to
``DIR/after.pt`` (uint8), to be looked at. These are screens, not results: removal is counted by eye
(``benchmarks.faces``) on the settings worth it.

Two kinds of trial need more than UnlearnConfig fields (set in ``TRIALS`` by their ``kind``):

* ``clamp``: the paper's rule with the threshold lowered by ``o`` latent std, ``unlearn(gen, d, t - o,
  UnlearnConfig(method="paper", ...))``: every latent whose projection is above t - o is moved back to t - o, a
  target that is a continuous function of z (the oracle rule's target jumps by the first offset at the cut).
* ``pool``: the oversampled share of each batch is drawn from a fixed pool of ``P`` latents (drawn once, as the
  run draws them) instead of fresh ones: does seeing the same positives again fit them, and does that carry over
  to faces never trained on? The pool's own fit is printed beside the labelled faces'.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import torch

from feature_unlearning import metrics
from feature_unlearning.models.base import render
from feature_unlearning.unlearn import UnlearnConfig, find_targets, target_margin

from . import faces as F
from .faces_fit import REGION, eye_l1, setup
from .train_encoder import to_uint8

U = importlib.import_module("feature_unlearning.unlearn")  # the module (the package exports the function by that name)

#: trial V of benchmarks/faces.py, the face recipe when this sweep was made (since then the registry's is trial AA,
#: ``b64-500-3e-4-cos`` below): every trial here is these fields and its own
V_CONFIG: dict = dict(steps=480, batch_size=16, lr=1.5e-4, lr_schedule="constant", alpha=2.0, oversample=0.5,
                      linear_positives=True, trainable=("model.0", "model.1", "model.3", "model.4"), oracle_weight=0.0,
                      replay=0.0, search_offsets=(1.5, 2.5, 3.5), log_every=10)
B64 = dict(batch_size=64)
#: name -> (kind, UnlearnConfig fields over V_CONFIG, extra).
#: extra: ``feat`` (default glasses), ``o`` (clamp), ``P`` (pool)
TRIALS: dict[str, tuple[str, dict, dict]] = {
    # round 1 (2026-11-30, H200): what more compute and two other target rules do
    "V": ("plain", {}, {}),
    "clamp-0.0": ("clamp", {}, {"o": 0.0}),
    "clamp-1.0": ("clamp", {}, {"o": 1.0}),
    "pool-64": ("pool", {"steps": 960}, {"P": 64}),
    "pool-1024": ("pool", {"steps": 960}, {"P": 1024}),
    "V-b64-2000": ("plain", {**B64, "steps": 2000}, {}),
    "clamp-0.5": ("clamp", {}, {"o": 0.5}),
    "clamp-1.5": ("clamp", {}, {"o": 1.5}),
    "clamp-1.0-b64-2000": ("clamp", {**B64, "steps": 2000}, {"o": 1.0}),
    "all-b64-2000": ("plain", {**B64, "steps": 2000, "trainable": ()}, {}),
    "V-b64-8000": ("plain", {**B64, "steps": 8000}, {}),
}
# round 2: the most for a CPU's five minutes (about 500 steps of 64 on the 2-core development CPU)
for _lr, _t in ((1.5e-4, "1.5e-4"), (3e-4, "3e-4"), (6e-4, "6e-4")):
    TRIALS[f"b64-500-{_t}"] = ("plain", {**B64, "steps": 500, "lr": _lr}, {})
for _lr, _t in ((3e-4, "3e-4"), (6e-4, "6e-4"), (1e-3, "1e-3")):
    TRIALS[f"b64-500-{_t}-cos"] = ("plain", {**B64, "steps": 500, "lr": _lr, "lr_schedule": "cosine"}, {})
_R2 = {**B64, "steps": 500, "lr": 6e-4, "lr_schedule": "cosine"}
TRIALS.update({
    "b64-500-6e-4-cos-over0.75": ("plain", {**_R2, "oversample": 0.75}, {}),
    "b64-500-6e-4-cos-alpha4": ("plain", {**_R2, "alpha": 4.0}, {}),
    "b64-500-6e-4-cos-all": ("plain", {**_R2, "trainable": ()}, {}),
    "b32-1000-6e-4-cos": ("plain", {**_R2, "batch_size": 32, "steps": 1000}, {}),
    "b128-250-6e-4-cos": ("plain", {**_R2, "batch_size": 128, "steps": 250}, {}),
    "b64-500-6e-4-cos-nolinear": ("plain", {**_R2, "linear_positives": False}, {}),
    "clamp-1.0-b64-500-6e-4-cos": ("clamp", _R2, {"o": 1.0}),
    "hat-V": ("plain", {}, {"feat": "hat"}),
    "hat-b64-500-6e-4-cos": ("plain", _R2, {"feat": "hat"}),
    "hat-b64-500-3e-4-cos": ("plain", {**_R2, "lr": 3e-4}, {"feat": "hat"}),
    "hat-b64-500-6e-4-cos-over0.75": ("plain", {**_R2, "oversample": 0.75}, {"feat": "hat"}),
    "hat-V-b64-2000": ("plain", {**B64, "steps": 2000}, {"feat": "hat"}),
})
_R3 = {**B64, "steps": 500, "lr": 3e-4, "lr_schedule": "cosine"}
_N2 = len(TRIALS)
TRIALS.update({  # round 3: around the best of round 2
    "b64-500-4e-4-cos": ("plain", {**_R3, "lr": 4e-4}, {}),
    "b64-500-3e-4-cos-alpha4": ("plain", {**_R3, "alpha": 4.0}, {}),
    "b64-500-3e-4-cos-over0.75": ("plain", {**_R3, "oversample": 0.75}, {}),
    "b64-500-3e-4-cos-all": ("plain", {**_R3, "trainable": ()}, {}),
    "b64-600-3e-4-cos": ("plain", {**_R3, "steps": 600}, {}),
    "b64-400-4e-4-cos": ("plain", {**_R3, "steps": 400, "lr": 4e-4}, {}),
    "b96-340-4e-4-cos": ("plain", {**_R3, "batch_size": 96, "steps": 340, "lr": 4e-4}, {}),
    "hat-b64-500-3e-4-cos-margin2": ("plain", {**_R3, "margin": 2.0}, {"feat": "hat"}),
    "hat-b64-500-3e-4-cos-alpha4": ("plain", {**_R3, "alpha": 4.0}, {"feat": "hat"}),
    "hat-b64-500-3e-4-cos-all": ("plain", {**_R3, "trainable": ()}, {"feat": "hat"}),
    "hat-b64-500-3e-4-cos-far": ("plain", {**_R3, "search_offsets": (2.5, 3.5, 4.5)}, {"feat": "hat"}),
    "hat-clamp-1.0-b64-500-3e-4-cos": ("clamp", _R3, {"o": 1.0, "feat": "hat"}),
})
_N3 = len(TRIALS)
TRIALS.update({  # round 4: fewer steps of 64 (a CPU's time), at higher learning rates
    "b64-250-6e-4-cos": ("plain", {**_R3, "steps": 250, "lr": 6e-4}, {}),
    "b64-250-8e-4-cos": ("plain", {**_R3, "steps": 250, "lr": 8e-4}, {}),
    "b64-300-4e-4-cos": ("plain", {**_R3, "steps": 300, "lr": 4e-4}, {}),
    "b64-300-5e-4-cos": ("plain", {**_R3, "steps": 300, "lr": 5e-4}, {}),
    "b64-300-6e-4-cos": ("plain", {**_R3, "steps": 300, "lr": 6e-4}, {}),
    "b64-350-4e-4-cos": ("plain", {**_R3, "steps": 350, "lr": 4e-4}, {}),
    "b64-350-5e-4-cos": ("plain", {**_R3, "steps": 350, "lr": 5e-4}, {}),
    "b48-400-4e-4-cos": ("plain", {**_R3, "batch_size": 48, "steps": 400, "lr": 4e-4}, {}),
    "b64-300-4e-4-cos-alpha3": ("plain", {**_R3, "steps": 300, "lr": 4e-4, "alpha": 3.0}, {}),
    "b64-500-3e-4-cos-again": ("plain", _R3, {}),
})
ROUNDS = {"1": list(TRIALS)[:11], "2": list(TRIALS)[11:_N2], "3": list(TRIALS)[_N2:_N3], "4": list(TRIALS)[_N3:]}


RESULTS = F.RESULTS / "faces_sweep.jsonl"


def describe(name: str) -> str:
    """A trial's settings in words: its kind and the fields it changes from ``V_CONFIG``."""
    kind, fields, extra = TRIALS[name]

    def value(v) -> str:
        if isinstance(v, tuple):
            return "[" + ", ".join(map(str, v)) + "]"
        return f"{v:g}" if isinstance(v, float) else str(v)

    text = " ".join(f"{k}={value(v)}" for k, v in fields.items())
    if kind == "clamp":
        text = f"paper's rule at t - {extra['o']:g}; {text}"
    elif kind == "pool":
        text = f"pool of {extra['P']}; {text}"
    return text.strip("; ") or "as V"


def sweep_table(path: Path = RESULTS) -> str:
    """The last checkpoint of every trial in ``path`` (the rows ``main`` appends), as a markdown table."""
    last: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        last[row["trial"]] = row
    lines = ["| round | trial | feature | settings (over trial V: 480 steps of 16, lr 1.5e-4 constant) | fit "
             "| SSIM without | s training |", "|---|---|---|---|---|---|---|"]
    for name, r in last.items():
        lines.append(f"| {r.get('round', '')} | {name} | {r['feature']} | {describe(name)} | {r['fit_mean']:.3f} "
                     f"| {r['ssim_without']:.3f} | {r['train_s']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--round", nargs="+", default=list(ROUNDS), choices=list(ROUNDS), help="the rounds of trials run")
    ap.add_argument("--only", nargs="+", default=None, help="trial names (instead of --round)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every trial's steps (a smoke test: 0.02)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.backends.cudnn.benchmark = True
    t0 = time.perf_counter()
    loaded = F.load_faces()
    setups: dict[str, tuple] = {}
    saved: dict[str, torch.Tensor] = {}
    log = (args.out / "sweep.jsonl").open("a")
    names = args.only or [n for r in args.round for n in ROUNDS[r]]
    for name in names:
        kind, fields, extra = TRIALS[name]
        feat = extra.get("feat", "glasses")
        if feat not in setups:
            setups[feat] = setup(feat, loaded)
            pos, neg = setups[feat][4:6]
            keep_idx = torch.cat([pos, neg.nonzero().squeeze(1)[:16]])
            saved[f"{feat}:index"], saved[f"{feat}:before"] = keep_idx, to_uint8(loaded[5][keep_idx])
            print(f"setup of {feat}: {time.perf_counter() - t0:.0f} s; t = {setups[feat][1].threshold:.3f}; "
                  f"{torch.get_num_threads()} threads", flush=True)
        gen, feature, z_lab, x_lab, pos, neg, targets = setups[feat]
        rows = REGION[feat]
        base = eye_l1(x_lab[pos], targets, rows)
        keep_idx = saved[f"{feat}:index"]
        cfg_fields = {**V_CONFIG, **fields, "device": args.device, "log_every": 1}
        cfg_fields["steps"] = max(2, int(round(cfg_fields["steps"] * args.scale)))
        every = max(1, cfg_fields["steps"] // 6)
        clock = {"eval": 0.0}
        pool_state: dict = {}

        def report(step: int, info: dict) -> None:
            if step % every and step != info["steps"]:
                return
            e0 = time.perf_counter()
            after = render(info["model"], z_lab).cpu()
            ratio = eye_l1(after[pos], targets, rows) / base
            row = {"trial": name, "feature": feat, "step": step, "fit_mean": round(ratio.mean().item(), 4),
                   "fit_median": round(ratio.median().item(), 4),
                   "ssim_without": round(metrics.preservation(x_lab[neg], after[neg])["ssim"], 4),
                   "probe_positive": round(feature.oracle.labels(after[pos]).float().mean().item(), 4),
                   "train_s": round(info["elapsed"] - clock["eval"], 2)}
            if "z" in pool_state:  # the pool's own fit: the first 64 of its latents
                zp, tp, xp = pool_state["z"][:64], pool_state["targets"], pool_state["images"]
                fit = eye_l1(render(info["model"], zp).cpu(), tp, rows) / eye_l1(xp, tp, rows)
                row["pool_fit"] = round(fit.mean().item(), 4)
            print(json.dumps(row), flush=True)
            log.write(json.dumps(row) + "\n")
            log.flush()
            if step == info["steps"]:
                saved[name] = to_uint8(after[keep_idx])
            clock["eval"] += time.perf_counter() - e0

        original_sample_batch = U.sample_batch
        try:
            if kind == "pool":
                def pooled(n, latent_dim, direction, *, oversample, cut, generator):
                    z = original_sample_batch(n, latent_dim, direction, oversample=0.0, cut=cut, generator=generator)
                    if "z" not in pool_state:
                        pool_state["z"] = original_sample_batch(extra["P"], latent_dim, direction, oversample=1.0,
                                                                cut=cut, generator=torch.Generator().manual_seed(5))
                        with torch.no_grad():
                            zp = pool_state["z"][:64]
                            cfg = UnlearnConfig(**{k: v for k, v in cfg_fields.items() if k != "device"})
                            _, tp, _ = find_targets(gen, feature.oracle, zp, feature.direction, feature.threshold,
                                                    margin=target_margin(cfg, feature.oracle),
                                                    offsets=cfg.search_offsets)
                            pool_state["targets"], pool_state["images"] = tp.cpu(), render(gen, zp).cpu()
                    k = int(round(oversample * n))
                    pick = torch.randint(len(pool_state["z"]), (k,), generator=generator)
                    z[:k] = pool_state["z"][pick]
                    return z

                U.sample_batch = pooled
            if kind == "clamp":
                cfg = UnlearnConfig(**{**cfg_fields, "method": "paper"})
                U.unlearn(gen, feature.direction, feature.threshold - extra["o"], cfg, callback=report,
                          progress_bar=False)
            else:
                feature.unlearn(gen, UnlearnConfig(**cfg_fields), callback=report, progress_bar=False)
        finally:
            U.sample_batch = original_sample_batch
        torch.save(saved, args.out / "after.pt")
    print(f"all done in {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
