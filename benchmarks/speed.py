"""How fast one unlearning run is, and where its time goes: ``python -m benchmarks.speed``.

    python -m benchmarks.speed                                   # default config, DCGAN, thick, 60 steps
    python -m benchmarks.speed --steps 400 --threads 2           # a whole default run
    python -m benchmarks.speed --profile                         # + torch.profiler's top ops (CPU time)
    python -m benchmarks.speed --set oracle_weight=0             # an UnlearnConfig override

Reports the process CPU time per step (all threads together) next to the wall-clock steps/s: on a machine
shared with other jobs the wall clock depends on the neighbours, the CPU time much less, so compare
configurations by CPU time measured in the same conditions. The feature is collected first (not timed).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import feature_unlearning as fu


def measure(model_name: str, feature: str, cfg: fu.UnlearnConfig, *, n_collect: int = 4000, profile: bool = False,
            top: int = 15) -> dict:
    model = fu.load_pretrained(model_name)
    feat = fu.Feature.from_oracle(model, feature, n=n_collect, seed=0)
    feat.unlearn(model, fu.UnlearnConfig(steps=2, batch_size=cfg.batch_size), progress_bar=False)  # warm-up
    prof = None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profile:
        from torch.profiler import ProfilerActivity, profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            result = feat.unlearn(model, cfg, progress_bar=False)
    else:
        result = feat.unlearn(model, cfg, progress_bar=False)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    out = {
        "model": model_name, "feature": feature, "steps": cfg.steps, "threads": torch.get_num_threads(),
        "cpu_s_per_step": cpu / cfg.steps, "steps_per_s": cfg.steps / wall, "wall_s": wall,
        "cpu_s": cpu, "profiled": profile,
    }
    if prof is not None:
        out["table"] = prof.key_averages().table(sort_by="cpu_time_total", row_limit=top, max_name_column_width=40)
        out["self_table"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top,
                                                      max_name_column_width=40)
    out["result"] = result
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mnist-dcgan")
    parser.add_argument("--feature", default="thick")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--n-collect", type=int, default=4000)
    parser.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE", help="UnlearnConfig overrides")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler's top ops")
    parser.add_argument("--n-eval", type=int, default=0, help="also compare on this many fresh samples (0: skip)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    cfg = fu.UnlearnConfig(**{"steps": args.steps, **overrides})
    r = measure(args.model, args.feature, cfg, n_collect=args.n_collect, profile=args.profile)
    print(f"{args.model} {args.feature} {cfg.steps} steps, {r['threads']} threads, overrides {overrides}: "
          f"{r['cpu_s_per_step'] * 1000:.1f} ms CPU/step, {r['steps_per_s']:.2f} steps/s, {r['wall_s']:.1f} s wall")
    if args.profile:
        print(r["table"])
        print(r["self_table"])
    if args.n_eval:
        c = r["result"].compare(n=args.n_eval, seed=1)
        print(f"removed {c['removed']:.1%} ({c['share_before']:.2%} -> {c['share_after']:.2%}), FD ratio "
              f"{c['fd_ratio']:.3f}, SSIM kept {c['preservation']['ssim']:.3f}")


if __name__ == "__main__":
    main()
