"""How long one default face run takes: the glasses clicks -> feature -> unlearning, with the registry's face
recipe (what the app, the CLI and notebook 07 run), on this machine's cores.

    python -m benchmarks.faces_time              # 2 threads (the "<= 5 minutes on 2 CPU cores" target)
    python -m benchmarks.faces_time --threads 1
    python -m benchmarks.faces_time --set steps=480 --set batch_size=16   # another recipe (UnlearnConfig fields)

Prints one line; the quality of this run is measured by ``benchmarks.faces`` (same settings, same seed).
"""

from __future__ import annotations

import argparse
import time

import torch

import feature_unlearning as fu
from feature_unlearning import examples
from feature_unlearning.unlearn import parse_overrides
from feature_unlearning.utils import machine_info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="UnlearnConfig field over the registry's face recipe")
    args = parser.parse_args(argv)
    try:
        overrides = parse_overrides(args.set)
    except ValueError as err:
        parser.error(str(err))
    torch.set_num_threads(args.threads)
    model = fu.load_pretrained("digiface-dcgan64")
    clicks = examples.GLASSES_CLICKS
    start = time.perf_counter()
    feature = fu.Feature.from_shown(model, seed=clicks["seed"], n=clicks["n"], indices=clicks["indices"],
                                    name="glasses")
    found = time.perf_counter()
    config = feature.default_config(model="digiface-dcgan64", **overrides)
    result = feature.unlearn(model, config, progress_bar=False)
    done = time.perf_counter()
    print(f"{machine_info()}: feature {found - start:.1f} s, unlearning {result.history.seconds:.1f} s "
          f"({config.steps} steps of {config.batch_size}), total {done - start:.1f} s")


if __name__ == "__main__":
    main()
