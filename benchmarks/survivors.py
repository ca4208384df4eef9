"""What the independent judges still see after unlearning, and what it looks like: results/survivors-dcgan.png.

    python -m benchmarks.survivors            # the two shipped digit examples, 10,000 samples of seed 777

For each shipped example of ``mnist-dcgan``, the unlearned model and the original draw the same latents; the
picture shows the first 16 latents whose unlearned image the judge of ``feature_unlearning.judges`` still reads as
the feature (a row of the original's images above the unlearned ones, same latents), and prints how many there
are, and how many of them the original already had (a survivor the original did not have is one the edit made).
The judges never took part in training, so the picture is the honest view of what is left.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from feature_unlearning import examples, judges, viz

from .run import RESULTS

EXAMPLES = ("mnist-dcgan-without-thick", "mnist-dcgan-without-8")


def survivor_rows(name: str, *, n: int, seed: int, show: int) -> tuple[np.ndarray, str]:
    ex = examples.load(name)
    model, unlearned, feature = ex.model, ex.result.unlearned, ex.example.feature
    before, after = model.generate(n, seed=seed), unlearned.generate(n, seed=seed)
    (plain_after, _), = judges.positives(after, feature).values()
    (plain_before, _), = judges.positives(before, feature).values()
    idx = torch.nonzero(plain_after).flatten()
    made = int((plain_after & ~plain_before).sum())
    line = (f"{name}: the judge reads {feature} in {len(idx):,} of {n:,} unlearned samples "
            f"({plain_before.float().mean():.2%} of the original's -> {plain_after.float().mean():.2%}); "
            f"{made} of them the original did not have")
    pick = idx[:show]
    grid = viz.image_grid(torch.cat([before[pick], after[pick]]), nrow=max(1, len(pick)), scale=2)
    title = (f"{name}: the first {len(pick)} of {len(idx)} survivors by the judge ({feature}), "
             f"original above, unlearned below (seed {seed})")
    return viz.add_title(grid, title, size=14), line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--show", type=int, default=16)
    args = parser.parse_args(argv)
    rows = []
    for name in EXAMPLES:
        grid, line = survivor_rows(name, n=args.n, seed=args.seed, show=args.show)
        rows.append(grid)
        print(line, flush=True)
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=viz.BACKGROUND) for r in rows]
    out = viz.save_image(np.concatenate(rows, axis=0), RESULTS / "survivors-dcgan.png")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
