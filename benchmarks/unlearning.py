"""Unlearning benchmark: {DCGAN, VAE} x {thick strokes, digit 8} x seeds, with the default config.

    python -m benchmarks.unlearning                      # default config, 3 seeds (about 10 minutes on 2 cores)
    python -m benchmarks.unlearning --method paper       # the paper's rule as published
    python -m benchmarks.unlearning --quick              # 1 seed, 2,000 evaluation samples

For each run: define the feature with its oracle on fresh samples (collection + direction + threshold),
unlearn, then judge 10,000 fresh samples of the original and the unlearned model on the same latents:
by the oracle, and by an independent judge (benchmarks/judge.py: another classifier, another stroke
measure). Frechet distances are in a classifier's feature space; the ratio compares the unlearned model
against real digits *without* the feature to the original model against all real digits. Writes
benchmarks/results/unlearning[-<method>].md and .json (the median over seeds, and every run).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

import feature_unlearning as fu
from feature_unlearning import judges, metrics
from feature_unlearning.data import load_mnist
from feature_unlearning.unlearn import parse_overrides
from feature_unlearning.utils import machine_info

from .judge import judge_oracle

RESULTS = Path(__file__).resolve().parent / "results"


def free_of(feature: str, real, labels, judge):
    """The real digits without the feature: other true labels for ``digit:K``, else what ``judge`` finds free."""
    oracle = fu.get_oracle(feature)
    return real[labels != oracle.digit] if isinstance(oracle, fu.DigitClass) else real[~judge.labels(real)]


@torch.no_grad()
def judge_numbers(generated_before, generated_after, feature: str, real, labels) -> dict:
    """Feature shares and a Frechet ratio by the independent judge: ``generated_before`` by the original
    model, ``generated_after`` by the method's (the same latents, or independent samples for a retrained model)."""
    judge = judge_oracle(feature, real)
    clf = _frechet_classifier()
    (report,) = judges.removal_report(generated_before, generated_after, feature).values()
    fd_before = metrics.frechet_distance(generated_before, real, classifier=clf)
    fd_after = metrics.frechet_distance(generated_after, free_of(feature, real, labels, judge), classifier=clf)
    return {"share_before": report["before"], "share_after": report["after"], "removed": report["removed"],
            "share_before_strict": report["before_strict"], "share_after_strict": report["after_strict"],
            "removed_strict": report["removed_strict"], "fd_ratio": fd_after / fd_before}


@functools.lru_cache(maxsize=1)
def _frechet_classifier():
    """The feature space of the judge's Frechet ratio: ``mnist-judge`` (loaded once)."""
    return fu.load_pretrained("mnist-judge")


def judge_same_latents(original, unlearned, feature: str, real, labels, *, n: int, seed: int) -> dict:
    """:func:`judge_numbers` on ``n`` fresh latents drawn with ``seed``, rendered by both models."""
    z = original.sample_latent(n, seed=seed, device="cpu")
    return judge_numbers(fu.render(original, z), fu.render(unlearned, z), feature, real, labels)


def run_one(model_name: str, feature: str, seed: int, cfg: fu.UnlearnConfig, *, n_collect: int, n_eval: int, real, labels) -> dict:
    model = fu.load_pretrained(model_name)
    start = time.perf_counter()
    feat = fu.Feature.from_oracle(model, feature, n=n_collect, seed=10_000 + seed)
    t_direction = time.perf_counter() - start
    result = feat.unlearn(model, replace(cfg, seed=seed), progress_bar=False)
    unlearned, hist = result.unlearned, result.history
    wall = time.perf_counter() - start
    report = result.compare(n=n_eval, seed=20_000 + seed)
    judge = judge_same_latents(model, unlearned, feature, real, labels, n=n_eval, seed=20_000 + seed)  # compare's latents
    return {
        "model": model_name, "feature": feature, "seed": seed,
        "share_before": report["share_before"], "share_after": report["share_after"], "removed": report["removed"],
        "fd_before": report["fd_before"], "fd_after": report["fd_after"], "fd_ratio": report["fd_ratio"],
        "fd_before_same_reference": report["fd_before_same_reference"], "fd_ratio_fair": report["fd_ratio_fair"],
        "ssim_kept": report["preservation"]["ssim"], "l1_kept": report["preservation"]["l1"],
        "ssim_kept_clear": report["preservation_clear"]["ssim"],
        "judge": judge, "seconds_direction": t_direction, "seconds_unlearn": hist.seconds, "seconds_total": wall,
        "unresolved_last": hist.unresolved[-1] if hist.unresolved else None,
        "margin": hist.margin, "anchor": hist.anchor,  # what the run used (the config's None: the oracle's)
        "mixed_precision": hist.config["mixed_precision"],  # what ran (the config's None: bfloat16 where native)
        "direction_stats": feat.stats,
    }


def backfill_fair(tag: str) -> None:
    """Add the fair baseline to the runs of ``unlearning-TAG.json`` written before it was measured (the same
    models, latents and reference as those runs; no training)."""
    path = RESULTS / f"unlearning-{tag}.json"
    data = json.loads(path.read_text())
    for r in data["runs"]:
        if "fd_ratio_fair" not in r:
            model = fu.load_pretrained(r["model"])
            before = fu.render(model, model.sample_latent(data["n_eval"], seed=20_000 + r["seed"], device="cpu"))
            r["fd_before_same_reference"] = metrics.frechet_distance(before, fu.get_oracle(r["feature"]).reference or "all")  # as compare
            r["fd_ratio_fair"] = r["fd_after"] / r["fd_before_same_reference"]
            print(f"{r['model']} {r['feature']} seed {r['seed']}: fair FD ratio {r['fd_ratio_fair']:.2f}", flush=True)
    path.write_text(json.dumps(data, indent=2))


def median(runs: list[dict], key: str, sub: str | None = None) -> float:
    vals = [r[sub][key] if sub else r[key] for r in runs]
    return statistics.median(vals)


def table(runs: list[dict]) -> str:
    head = (
        "| model | feature | share before -> after | removed | judge: before -> after | judge removed | "
        "judge, strict: before -> after | FD ratio | fair FD ratio | judge FD ratio | SSIM kept | wall time |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = []
    for key in dict.fromkeys((r["model"], r["feature"]) for r in runs):
        rs = [r for r in runs if (r["model"], r["feature"]) == key]
        rows.append(
            f"| {key[0]} | {key[1]} | {median(rs, 'share_before'):.2%} -> {median(rs, 'share_after'):.2%} | "
            f"{median(rs, 'removed'):.1%} | {median(rs, 'share_before', 'judge'):.2%} -> "
            f"{median(rs, 'share_after', 'judge'):.2%} | {median(rs, 'removed', 'judge'):.1%} | "
            f"{_strict(rs)} | {median(rs, 'fd_ratio'):.2f} | {_fair(rs)} | {median(rs, 'fd_ratio', 'judge'):.2f} | {median(rs, 'ssim_kept'):.3f} | "
            f"{median(rs, 'seconds_total'):.1f} s |"
        )
    return head + "\n" + "\n".join(rows)


def _fair(runs: list[dict]) -> str:
    """The fair Frechet ratio (older result files lack it: "-"; ``--backfill-fair TAG`` adds it)."""
    return f"{median(runs, 'fd_ratio_fair'):.2f}" if all("fd_ratio_fair" in r for r in runs) else "-"


def _strict(runs: list[dict]) -> str:
    """The judge's shares counting only confident positives (older result files lack them: "-")."""
    if not all("removed_strict" in r["judge"] for r in runs):
        return "-"
    return f"{median(runs, 'share_before_strict', 'judge'):.2%} -> {median(runs, 'share_after_strict', 'judge'):.2%}"


def merge(tags: list[str]) -> None:
    """Write unlearning.md/.json from the runs of several tagged result files (same config required)."""
    parts = [json.loads((RESULTS / f"unlearning-{tag}.json").read_text()) for tag in tags]
    defaults = json.loads(json.dumps(asdict(fu.UnlearnConfig())))  # fields added since a file was written: defaults
    if len({json.dumps({**defaults, **p["config"]}, sort_keys=True) for p in parts}) != 1:
        raise SystemExit(f"the files {tags} were made with different configs; not merging")
    first = parts[0]
    commands = "\n".join(f"- `{p['command']}`" for p in parts)
    runs = [r for p in parts for r in p["runs"]]
    text = (
        f"# Unlearning benchmark ({first['config']['method']})\n\n"
        f"Commands (run in parallel, one thread each, then merged with "
        f"`python -m benchmarks.unlearning --merge {' '.join(tags)}`):\n\n{commands}\n\n"
        f"Machine: {first['machine']}\n\nConfig (the defaults of `UnlearnConfig()`): `{first['config']}`\n\n"
        f"{resolved(runs)}"
        f"{columns(first['seeds'], first['n_eval'])}\n\n" + table(runs) + "\n"
    )
    (RESULTS / "unlearning.md").write_text(text)
    (RESULTS / "unlearning.json").write_text(json.dumps({"machine": first["machine"], "config": first["config"],
                                                         "runs": runs}, indent=2))
    print(text)


def resolved(runs: list[dict]) -> str:
    """The margin and anchor each feature's runs used (a config's ``None`` is the oracle's own; older files
    did not record them: nothing)."""
    seen = {(r["feature"], r["margin"], r["anchor"]) for r in runs if "anchor" in r}
    if not seen:
        return ""
    parts = [f"{f}: margin {m:g}, anchor {a:g}" for f, m, a in sorted(seen, key=str)]
    text = "Margin and anchor used (`unlearn.target_margin`, `target_anchor`): " + "; ".join(parts) + "\n\n"
    ran = {r["mixed_precision"] for r in runs if "mixed_precision" in r}
    if ran:
        text += ("Precision that ran: " + " and ".join("bfloat16 autocast" if mp else "float32" for mp in sorted(ran))
                 + " (`mixed_precision`; the default, None, is bfloat16 where the hardware runs it natively)\n\n")
    return text


def columns(seeds: list[int], n_eval: int) -> str:
    """The paragraph that says what the table's columns mean."""
    return (
        f"Median over seeds {seeds}; {n_eval:,} fresh samples per run, the same latents before and after. "
        "`removed` = 1 - share after / share before. The judges (`feature_unlearning.judges`, never in the loss): "
        "`mnist-judge-resnet` for digits (arg-max; strict: confidence > 0.9, which this label-smoothed judge rarely "
        "reaches, so the strict shares are small), the skeleton stroke width for thick strokes (above the 90th "
        "percentile of real digits; strict: the 95th). FD ratio = FD(unlearned, real digits without the feature) / "
        "FD(original, all real digits), in the feature space of `mnist-classifier` (judge: `mnist-judge`); fair FD ratio "
        "= the same numerator over FD(original, real digits without the feature) on the same latents: the original "
        "draws the feature, so it is already some way from that reference, and 1 means no further. SSIM kept: "
        "mean SSIM between original and unlearned images of the latents whose original image lacks the feature. "
        "Wall time = collection + direction + unlearning."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mnist-dcgan", "mnist-vae"])
    parser.add_argument("--features", nargs="+", default=["thick", "digit:8"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--method", choices=["oracle", "paper"], default="oracle")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--n-collect", type=int, default=4000)
    parser.add_argument("--n-eval", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="one seed, 2,000 evaluation samples")
    parser.add_argument("--tag", default=None, help="suffix of the result files")
    parser.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE", help="UnlearnConfig overrides")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--merge", nargs="+", metavar="TAG", default=None,
                        help="only combine the runs of unlearning-TAG.json files (for example runs made in parallel) "
                        "into unlearning.md")
    parser.add_argument("--backfill-fair", nargs="+", metavar="TAG", default=None,
                        help="add the fair Frechet baseline to the runs of unlearning-TAG.json files that lack it (no training)")
    args = parser.parse_args(argv)
    if args.backfill_fair:
        for tag in args.backfill_fair:
            backfill_fair(tag)
        return
    if args.merge:
        merge(args.merge)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.seeds, args.n_eval = args.seeds[:1], 2000
    try:
        overrides = parse_overrides(args.set)
    except ValueError as err:
        parser.error(str(err))
    cfg = fu.UnlearnConfig.paper(**overrides) if args.method == "paper" else fu.UnlearnConfig(**overrides)
    if args.steps:
        cfg = replace(cfg, steps=args.steps)
    real, labels = load_mnist("heldout")
    runs = []
    for model_name in args.models:
        for feature in args.features:
            for seed in args.seeds:
                r = run_one(model_name, feature, seed, cfg, n_collect=args.n_collect, n_eval=args.n_eval, real=real, labels=labels)
                runs.append(r)
                print(
                    f"{model_name} {feature} seed {seed}: {r['share_before']:.2%} -> {r['share_after']:.2%} "
                    f"(removed {r['removed']:.1%}; judge {r['judge']['removed']:.1%}), FD ratio {r['fd_ratio']:.2f} "
                    f"(judge {r['judge']['fd_ratio']:.2f}), SSIM kept {r['ssim_kept']:.3f} (clear {r['ssim_kept_clear']:.3f}), "
                    f"{r['seconds_total']:.1f} s",
                    flush=True,
                )
    tag = args.tag or (args.method if args.method != "oracle" else "")
    stem = "unlearning" + (f"-{tag}" if tag else "")
    cmd = "python -m benchmarks.unlearning " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    text = (
        f"# Unlearning benchmark ({args.method})\n\n"
        f"Command: `{cmd.strip()}`\n\nMachine: {machine_info()}\n\n"
        f"Config: `{asdict(cfg)}`\n\n{resolved(runs)}"
        f"{columns(args.seeds, args.n_eval)}\n\n" + table(runs) + "\n"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(json.dumps({"machine": machine_info(), "command": cmd.strip(), "seeds": args.seeds,
                                                    "n_eval": args.n_eval, "config": asdict(cfg), "runs": runs}, indent=2))
    print(text)


if __name__ == "__main__":
    main()
