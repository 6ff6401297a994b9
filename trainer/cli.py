"""``inpaint-train``: train, export, bench.

    inpaint-train --data DIR --out RUN_DIR --steps N --batch-size B --size PX [--stage S] [--config FILE]
                  [--set key.sub=value ...] [--resume] [--init MODEL ...]
    inpaint-train export RUN_DIR --out DIR [--onnx] [--name NAME] [--companion EDGE_MODEL] [--resolution PX]
    inpaint-train bench [--steps N] [--write DOC]

Settings apply in this order: built-in defaults, the ``--config`` file (or the run's own ``config.toml`` with
``--resume``), the quick flags, then ``--set``. Problems a user can cause end with a one-line message and a
non-zero exit status. Ctrl-C (or SIGTERM) saves a checkpoint and stops; ``--resume`` continues.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.errors import EngineError

PROG = "inpaint-train"
EXIT_ERROR = 2
EXIT_ABORTED = 130


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, then exit 2 (argparse's usage dump is noise here)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {PROG} --help)\n")


def _train_parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(prog=PROG, description="Train EdgeConnect / GLCIC inpainting models on a folder of photos.",
                        epilog=f"Other commands: '{PROG} export RUN_DIR --out DIR [--onnx]', '{PROG} bench'.")
    p.add_argument("--data", help="folder of training photos (searched recursively)")
    p.add_argument("--val", help="folder of validation photos (default: a tenth of --data is held out)")
    p.add_argument("--out", required=True, help="run folder: config, checkpoints, metrics.jsonl, samples")
    p.add_argument("--steps", type=int, help="total training steps")
    p.add_argument("--batch-size", type=int, help="images per step (per process under torchrun)")
    p.add_argument("--size", type=int, help="training crop size in pixels (multiple of 4)")
    p.add_argument("--stage", help="edge, image, image-on-predicted, joint, glcic or completion")
    p.add_argument("--lr", type=float, help="generator learning rate")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--workers", type=int, help="data-loading processes (-1 = automatic)")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--name", help="base name of exported models (default: the run folder's name)")
    builtin = ", ".join(sorted(f.stem for f in (Path(__file__).resolve().parent / "configs").glob("*.toml")))
    p.add_argument("--config", help=f"TOML config file, or the name of a built-in one ({builtin})")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. --set optim.lr=2e-4 --set model.edge.arguments.base_channels=32")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--init", action="append", default=[], metavar="MODEL",
                   help="start from a model file (its card says which part it is); repeat for several")
    p.add_argument("--photo", help="internal fine-tuning: the photo to train on (with --mask)")
    p.add_argument("--mask", help="internal fine-tuning: the user's hole mask of --photo (white = hole)")
    return p


def build_config(args: argparse.Namespace, command: str):
    """The validated-later config of a ``train`` command line."""
    from trainer.config import ConfigError, TrainConfig, apply_overrides, load_config, resolve_config_path
    from trainer.initial import part_of_model
    from trainer.loop import CONFIG_FILE

    run_config = Path(args.out) / CONFIG_FILE
    if args.resume and not run_config.is_file():
        raise ConfigError(f"--resume: there is no run in {args.out} (no {CONFIG_FILE}); start it without --resume")
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise ConfigError(f"--out {args.out} is a file, not a run folder")
    if args.resume:
        config = load_config(run_config)
    elif args.config:
        config = load_config(resolve_config_path(args.config))
    else:
        config = TrainConfig()
    # Paths are stored absolute: a resume or an export from another folder must find the same files.
    quick = {"data.train_dir": _absolute(args.data), "data.val_dir": _absolute(args.val),
             "run.out": _absolute(args.out), "optim.steps": args.steps, "optim.batch_size": args.batch_size,
             "data.size": args.size,
             "stage.name": args.stage, "optim.lr": args.lr, "run.device": args.device, "optim.workers": args.workers,
             "optim.seed": args.seed, "run.name": args.name, "internal.photo": _absolute(args.photo),
             "internal.mask": _absolute(args.mask)}
    assignments = [f"{key}={_toml_literal(value)}" for key, value in quick.items() if value is not None]
    for model in args.init:
        card = _absolute(str(Path(model).with_suffix(".json")))
        assignments.append(f"init.{part_of_model(model)}={_toml_literal(card)}")
    original = config.run.command if args.resume else ""
    config = apply_overrides(config, assignments)
    config = apply_overrides(config, list(args.overrides))
    history = f"{original}; {command}" if original and original != command else command  # how the run was made
    config = apply_overrides(config, ["run.resume=" + ("true" if args.resume else "false"),
                                      f"run.command={_toml_literal(history)}"])
    return config


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().absolute())


def _toml_literal(value: object) -> str:
    from trainer.config import toml_value

    return toml_value(value)


def _check_memory(config) -> None:
    """Refuse a batch that cannot fit, with the estimate the fine-tune dialog uses (before any step is built)."""
    from trainer.config import ConfigError
    from trainer.finetune_protocol import memory_problem

    channels = max(int(getattr(config.model, part).arguments.get("base_channels", 64)) for part in ("edge", "image"))
    device = "cpu" if config.run.device in ("auto", "cpu") else config.run.device
    problem = memory_problem(int(config.optim.batch_size), int(config.data.size), channels, device)
    if problem:
        raise ConfigError(problem)


def _run_train(argv: list[str], command: str) -> int:
    from trainer.loop import train

    args = _train_parser().parse_args(argv)
    config = build_config(args, command)
    _check_memory(config)
    stop = {"requested": False}

    def request_stop(_signum: int, _frame: object) -> None:
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        print(f"\n{PROG}: stopping after this step and saving a checkpoint (again to quit at once)",
              file=sys.stderr)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = train(config, abort_fn=lambda: stop["requested"])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not summary.is_main:
        return EXIT_ABORTED if summary.status == "aborted" else 0
    for message in summary.messages:
        print(f"{PROG}: {message}", file=sys.stderr)
    if summary.status == "aborted":
        print(f"{PROG}: stopped at step {summary.step}/{summary.total_steps}; checkpoint {summary.checkpoint}; "
              f"continue with: {PROG} --out {summary.run_dir} --resume", file=sys.stderr)
        return EXIT_ABORTED
    print(f"{PROG}: done, {summary.step} steps in {summary.elapsed_s:.1f} s ({summary.images_per_s:.2f} images/s); "
          f"export with: {PROG} export {summary.run_dir} --out MODELS_DIR")
    return 0


def _run_export(argv: list[str]) -> int:
    from trainer.export import export_run

    p = _ArgumentParser(prog=f"{PROG} export", description="Write a run's models as engine model files.")
    p.add_argument("run_dir", help="the training run folder")
    p.add_argument("--out", required=True, help="folder for NAME.safetensors + NAME.json (e.g. the user models)")
    p.add_argument("--onnx", action="store_true", help="also write NAME.onnx (dynamic height and width), checked")
    p.add_argument("--name", help="base name of the models (default: the run's name or folder name)")
    p.add_argument("--companion", help="image stage: the name of the edge model the image model pairs with")
    p.add_argument("--resolution", type=int,
                   help="working resolution the engine runs the models at (default: that of the model the run "
                        "started from with --init, else the training crop size)")
    p.add_argument("--best", action="store_true",
                   help="export the best validated weights of a run trained with schedule.keep_best (default: the "
                        "latest checkpoint)")
    p.add_argument("--overwrite", action="store_true", help="replace models of the same name in --out")
    args = p.parse_args(argv)
    result = export_run(args.run_dir, args.out, onnx=args.onnx, name=args.name, companion=args.companion,
                        resolution=args.resolution, best=args.best, overwrite=args.overwrite)
    for message in result.messages:
        print(f"{PROG}: {message}", file=sys.stderr)
    for path in result.models + result.onnx:
        print(path)
    return 0


def _run_bench(argv: list[str]) -> int:
    from trainer.bench import main as bench_main

    return bench_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``inpaint-train`` and ``python -m trainer``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join([PROG, *argv])
    try:
        if argv and argv[0] == "export":
            return _run_export(argv[1:])
        if argv and argv[0] == "bench":
            return _run_bench(argv[1:])
        if argv and argv[0] == "train":
            argv = argv[1:]
        return _run_train(argv, command)
    except EngineError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_ABORTED
    except MemoryError:
        print(f"{PROG}: error: out of memory; lower --batch-size or --size", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"{PROG}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_ERROR
    except RuntimeError as exc:
        if "out of memory" not in str(exc).lower():
            raise
        print(f"{PROG}: error: out of memory on the device; lower --batch-size or --size", file=sys.stderr)
        return EXIT_ERROR
