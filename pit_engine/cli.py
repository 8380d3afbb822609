"""The `pit` command line.

User errors print one line, `error: <what> (<where>) — <what to do>`, and exit with code 2;
`--debug` shows the traceback. Exit code 1 means a bug.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

from tqdm import tqdm

from pit_engine.errors import UserError, out_of_memory


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of argparse's usage block
        raise UserError(message, self.prog, f"see `{self.prog} --help`")


def _progress(desc: str):
    def wrap(iterable, total=None):
        return tqdm(iterable, total=total, desc=desc, unit="frame", file=sys.stderr, dynamic_ncols=True,
                    disable=None, leave=False)
    return wrap


def cmd_make_demo(args) -> int:
    from pit_engine.data.demo import make_demo
    from pit_engine.data.io import output_folder

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError("not a folder", out, "choose a folder for --out")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise UserError("output folder is not empty", out, "choose a new folder or pass --overwrite")
    output_folder(out)
    start = time.perf_counter()
    paths = make_demo(out, seed=args.seed, n_source=args.source, n_train=args.train, n_val=args.val,
                      n_test=args.test, progress=_progress("generating"))
    print(f"wrote the demo pair (seed {args.seed}) in {time.perf_counter() - start:.1f} s:")
    print(f"  source, GTA5 layout:       {paths['source']}  ({args.source} frames)")
    print(f"  target, Cityscapes layout: {paths['target']}  (train {args.train}, val {args.val}, test {args.test} frames)")
    print(f"check them with: pit data check gta5 {paths['source']}  /  "
          f"pit data check cityscapes {paths['target']} --split val")
    return 0


def cmd_check(args) -> int:
    from pit_engine.data.check import check_dataset

    report = check_dataset(args.kind, args.root, args.split, args.export_train_ids, args.overwrite,
                           progress=_progress("checking"))
    if report.frames:  # a folder-level problem leaves nothing to summarise
        print(report.summary())
    for problem in report.problems:
        print(problem.error().line(), file=sys.stderr)
    return 2 if report.problems else 0


class _TrainProgress:
    """Turns trainer events into a progress bar with the losses, and one line per evaluation."""

    def __init__(self, desc: str = "training"):
        self.desc, self.bar = desc, None

    def __call__(self, event) -> None:
        from pit_engine.events import Evaluated, Finished, Health, Started, Step

        if isinstance(event, Started):
            self.bar = tqdm(total=event.total_iterations, initial=event.start_iteration, desc=self.desc,
                            unit="it", file=sys.stderr, dynamic_ncols=True, disable=None, leave=False)
        elif isinstance(event, Step) and self.bar is not None:
            self.bar.update(event.iteration - self.bar.n)
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in event.losses.items()}, refresh=False)
        elif isinstance(event, Evaluated):  # the split named: `pit demo` prints a table of test scores beside it
            tqdm.write(f"iteration {event.iteration}: " + ", ".join(f"{k} {100 * v:.1f}" for k, v in
                                                                    event.subsets.items()) + event.scored_on,
                       file=sys.stderr)
        elif isinstance(event, Health):
            r = event.record
            said = [f"{label} {100 * r[key]:.1f}" for key, label in HEALTH_SUMMARY if r.get(key) is not None]
            tqdm.write(f"health at {event.iteration}: " + ", ".join(said), file=sys.stderr)
        elif isinstance(event, Finished) and self.bar is not None:
            self.bar.close()


HEALTH_SUMMARY = (("mean_iou", "IoU"), ("pl_coverage", "pseudo-labelled"), ("mean_pl_precision", "their precision"),
                  ("mean_q_precision", "pivot q precision"), ("mean_q_recall", "recall"))


def _finish(finished, debug: bool) -> int:
    if finished.reason == "failed":
        if finished.traceback and debug:
            print(finished.traceback, file=sys.stderr)
        print(finished.message if finished.message.startswith("error:") else f"error: {finished.message}",
              file=sys.stderr)
        return 1 if finished.traceback else 2
    print(finished.message)
    return 0


def cmd_train(args) -> int:
    from pit_engine import distributed
    from pit_engine.config import Config
    from pit_engine.train import Trainer

    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.toml").is_file():
            raise UserError("no config.toml in the run directory", run_dir, "give a run directory made by pit train")
        config = Config.load(run_dir / "config.toml", args.set)
    else:
        if not args.config:
            raise UserError("no config given", "pit train", "pass --config FILE.toml (or --resume RUN_DIR)")
        config = Config.load(args.config, args.set)
        run_dir = Path(args.out) if args.out else None
    distributed.join(config.train.device)
    finished = None
    try:
        trainer = Trainer(config, run_dir, resume=bool(args.resume),
                          log=lambda t: tqdm.write(t, file=sys.stderr))  # above the progress bar, not through it
        if trainer.is_main:
            print(f"run directory: {trainer.run_dir}" + (f" ({trainer.world} processes)" if trainer.world > 1 else ""),
                  file=sys.stderr)
        finished = trainer.run(_TrainProgress() if trainer.is_main else lambda event: None)
    finally:  # a failed rank leaves at once: waiting for the others at a barrier could hang
        distributed.leave(wait=finished is not None and finished.reason != "failed")
    return _finish(finished, args.debug)


def _parse_data(spec: str):
    from pit_engine.data.datasets import DATASETS

    kind, _, rest = spec.partition(":")
    if kind not in DATASETS or not rest:
        raise UserError(f"--data '{spec}' is not KIND:ROOT[:SPLIT]", "--data",
                        f"e.g. cityscapes:/data/cityscapes:val (KIND is one of {', '.join(DATASETS)})")
    root, split = rest, None
    if kind == "cityscapes" and ":" in rest:
        root, _, split = rest.rpartition(":")
    return kind, root, split or ("val" if kind == "cityscapes" else None)


def _nanmean(values: dict):
    finite = [v for v in values.values() if v is not None and v == v]
    return sum(finite) / len(finite) if finite else None


def cmd_eval(args) -> int:
    import json

    from pit_engine.evaluate import evaluate_checkpoint
    from pit_engine.runtime import resolve_device

    kind, root, split = _parse_data(args.data)
    if args.workers < 0:
        raise UserError("--workers must be 0 or more", "pit eval", "e.g. --workers 4")
    result = evaluate_checkpoint(args.checkpoint, kind, root, split, device=resolve_device(args.device, "--device"),
                                 progress=_progress("evaluating"), workers=args.workers,
                                 warn=lambda text: tqdm.write(text, file=sys.stderr))  # not through the bar
    print(f"{result.frames} frame(s) of {kind} {root}" + (f" ({split})" if split else "")
          + (f"; skipped {result.skipped} unreadable" if result.skipped else ""))
    # as cityscapesScripts: a class with neither ground truth nor prediction has no IoU and is left out
    for name, value in result.miou.items():
        over, left_out = result.counted(name)
        print(f"mIoU {100 * value:.2f} over {len(over)} classes ({name}"
              + (f" less {', '.join(left_out)}: neither in the ground truth nor predicted" if left_out else "") + ")")
    pct = lambda v: "    –" if v is None or v != v else f"{100 * v:5.1f}"  # noqa: E731
    has_pivot = bool(result.pivot_recall)  # pivot columns only for a method that has one
    if has_pivot:
        print(f"  {'':<25}   pivot q precision / recall   refreshed max(q, GWRP) precision / recall")
    for name, value in result.per_class.items():
        pivot = (f"   {pct(result.pivot_precision.get(name)):>17} / {pct(result.pivot_recall.get(name))}"
                 f"   {pct(result.refreshed_precision.get(name)):>30} / {pct(result.refreshed_recall.get(name))}"
                 if has_pivot else "")
        if value == value:
            print(f"  {name:<14} IoU {100 * value:6.2f}{pivot}")
        elif any(pct(d.get(name)).strip() != "–" for d in (result.pivot_precision, result.pivot_recall,
                                                               result.refreshed_precision, result.refreshed_recall)):
            # no IoU (left out, as in the mean), but the pivot's verdict on the class is a number
            print(f"  {name:<14} IoU {'–':>6}{pivot}")
    if has_pivot:
        for label, prec, rec in (("pivot q", result.pivot_precision, result.pivot_recall),
                                 ("refreshed", result.refreshed_precision, result.refreshed_recall)):
            print(f"{label} (mean over classes): precision {pct(_nanmean(prec))}, recall {pct(_nanmean(rec))}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=2))
    return 0


def cmd_import(args) -> int:
    from pit_engine.checkpoint import import_published

    out = import_published(args.weights, args.out, args.backbone, args.method, args.name or "", args.set)
    print(f"open it with: pit eval --checkpoint {out} --data cityscapes:ROOT:val, pit export, or pit-gui {out}")
    return 0


def cmd_demo(args) -> int:
    from pit_engine.config import blame_override
    from pit_engine.demo import parse_rows, run_demo

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError("not a folder", out, "choose a folder for --out")
    say = lambda t: print(t, file=sys.stderr)  # noqa: E731
    rows = parse_rows(args.methods) if args.methods else None
    try:
        run_demo(out, quick=args.quick, device=args.device, seeds=tuple(range(args.seed, args.seed + args.seeds)),
                 ablation=args.ablation, rows=rows, say=say, on_event=_TrainProgress(), data_seed=args.data_seed,
                 split=args.split, overrides=args.set)
    except UserError as exc:  # a bad --set is named as such, not as "(demo)"
        raise blame_override(exc, args.set) from None
    print((out / "report.md").read_text())
    print(f"wrote {out / 'report.json'} and {out / 'report.md'}")
    return 0


def cmd_predict(args) -> int:
    from pit_engine.export import predict_files
    from pit_engine.runtime import resolve_device

    result = predict_files(args.checkpoint, args.inputs, args.out, resolve_device(args.device, "--device"),
                           args.overwrite, progress=_progress("predicting"))
    print(f"wrote {len(result['frames'])} frame(s) to {args.out}"
          + (f"; skipped {len(result['skipped'])}" if result["skipped"] else ""))
    return 0


def cmd_export(args) -> int:
    from pit_engine.export import export_overlays
    from pit_engine.runtime import resolve_device

    if not 0 <= args.alpha <= 1:
        raise UserError(f"--alpha {args.alpha} is outside 0..1", "--alpha", "e.g. --alpha 0.5")
    index = export_overlays(args.checkpoint, args.inputs, args.out, args.compare, args.alpha,
                            resolve_device(args.device, "--device"), args.overwrite, progress=_progress("exporting"))
    print(f"wrote {len(index['frames'])} frame(s) and index.json to {args.out}"
          + (f"; skipped {len(index['skipped'])} (listed in index.json)" if index["skipped"] else ""))
    return 0


def cmd_bench(args) -> int:
    from pit_engine.bench import run_bench, table
    from pit_engine.models import BACKBONES

    if args.backbone not in BACKBONES:
        raise UserError(f"unknown backbone '{args.backbone}'", "--backbone", f"use one of: {', '.join(BACKBONES)}")
    if args.rounds < 1 or args.steps < 1:
        raise UserError("--rounds and --steps must be at least 1", "pit bench", "e.g. --rounds 3 --steps 2")
    if args.compile_mode != "default" and not args.compile:
        raise UserError("--compile-mode needs --compile", "pit bench", "add --compile")
    result = run_bench(args.device, args.backbone, args.rounds, args.steps, args.compile,
                       say=lambda text: print(text, file=sys.stderr), profile=bool(args.profile),
                       compile_mode=args.compile_mode)
    print(table(result))
    from pit_engine.data.io import atomic_write
    if args.profile:
        profile = result.pop("profile")
        atomic_write(Path(args.profile), lambda tmp: Path(tmp).write_text(profile))
    if args.json:
        atomic_write(Path(args.json), lambda tmp: Path(tmp).write_text(json.dumps(result, indent=2)))
    return 0


TRAIN_DESCRIPTION = """Train a segmenter from a TOML config: source-only, PIT or a baseline (the config's
method.name), on one device or, under torchrun, on many. The presets shipped in resources/:

  demo.toml                   the small backbone on the demo domain pair, minutes on 2 CPU cores
                              (`pit demo` runs it for you; by hand, set data.source_root and
                              data.target_root)
  gta5_to_cityscapes.toml     GTA5 -> Cityscapes, the paper's DeepLabV2-ResNet-101 protocol
                              (a GPU, the data sets and ImageNet weights needed)
  synthia_to_cityscapes.toml  SYNTHIA-RAND-CITYSCAPES -> Cityscapes, the same protocol, scored on
                              16 and 13 classes

A run directory holds config.toml, metrics.jsonl, events.log and checkpoints/; --resume continues
one from its newest checkpoint."""


DEMO_DESCRIPTION = """The main job on the embedded default (resources/demo.toml: the small backbone, 3000
iterations on the demo domain pair): generate the pair, train source-only and PIT (or the rows
--methods names) with each seed, score them on the target's test split, export comparison
overlays, and write report.md and report.json in --out.

What it can tell, measured (README, Demo results): the default is 3000 iterations because at
1000 the published baselines stayed within a seed's spread of source-only; at 3000, on the
development pair's val split over three seeds, AdvEnt and AdaptSegNet gain several points and
MinEnt about one. PIT reads its pivot from the segmenter (pivot_reading = "segmenter"), which
beat the pivot head on every val seed; on the report pairs it is about level with source-only,
while the head's pivot (--set method.pit.pivot_reading=head) loses 4 to 6 points. Seeds still
move a score by 1 to 3 points: compare methods over several seeds (--seeds 3) and choose
settings on --split val. --set changes demo.toml for every row, e.g.
--set train.iterations=1000 for the previous, quicker default, or
--set model.backbone=efficientnet_lite0 --set model.weights=imagenet --set train.lr=0.0025 for
the ImageNet-initialised backbone."""


def _debug_flag() -> argparse.ArgumentParser:
    """--debug after the command too (`pit train --config x.toml --debug`): every command takes it."""
    flag = argparse.ArgumentParser(add_help=False)
    flag.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return flag


def _command(subparsers, name: str, **kwargs) -> argparse.ArgumentParser:
    return subparsers.add_parser(name, parents=[_debug_flag()], **kwargs)


def _help(parser: argparse.ArgumentParser):
    """A command given without its subcommand prints its help (not an error)."""
    def show(_args) -> int:
        parser.print_help()
        return 0
    return show


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pit", description="PIT Studio: domain-adaptive semantic segmentation (PIT, CVPR 2020).",
                     epilog="Start with `pit demo --quick`. `pit COMMAND --help` says more of each command.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(func=_help(parser))
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    data = _command(sub, "data", help="data sets: make the demo pair, check a folder")
    data.set_defaults(func=_help(data))
    data_sub = data.add_subparsers(dest="data_command", parser_class=_Parser, metavar="SUBCOMMAND")

    demo = _command(data_sub, "make-demo", help="generate the demo domain pair (GTA5-format source, "
                                                "Cityscapes-format target)")
    demo.add_argument("--out", required=True, help="output folder")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--source", type=int, default=300, help="source frames (default 300)")
    demo.add_argument("--train", type=int, default=300, help="target train frames (default 300)")
    demo.add_argument("--val", type=int, default=100, help="target val frames (default 100)")
    demo.add_argument("--test", type=int, default=100, help="target test frames, labelled: report on these "
                                                           "after choosing settings on val (default 100)")
    demo.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    demo.set_defaults(func=cmd_make_demo)

    check = _command(data_sub, "check", help="validate a data set folder and summarise it")
    check.add_argument("kind", choices=["gta5", "synthia", "cityscapes", "folder"])
    check.add_argument("root")
    check.add_argument("--split", help="Cityscapes split (default train)")
    check.add_argument("--export-train-ids", metavar="DIR", help="write one trainId PNG per label file into DIR")
    check.add_argument("--overwrite", action="store_true", help="replace existing exported files")
    check.set_defaults(func=cmd_check)

    train = _command(sub, "train", help="train source-only, PIT or a baseline from a TOML config",
                           description=TRAIN_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--config", help="config file: a preset above, or your own (pit-gui's Train view saves one)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set train.lr=1e-3 (repeatable)")
    train.add_argument("--out", help="run directory (default runs/<date-time>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its newest checkpoint")
    train.set_defaults(func=cmd_train)

    ev = _command(sub, "eval", help="evaluate a checkpoint on a labelled data set")
    ev.add_argument("--checkpoint", required=True, help="a .pt file or a run directory")
    ev.add_argument("--data", required=True, metavar="KIND:ROOT[:SPLIT]", help="e.g. cityscapes:/data/cityscapes:val")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--workers", type=int, default=2, help="processes that read the frames (default 2; 0: none)")
    ev.add_argument("--json", help="also write the result as JSON")
    ev.set_defaults(func=cmd_eval)

    imp = _command(sub, "import", help="a published AdaptSegNet / ADVENT model (.pth) as a run directory "
                                       "that eval, export and the GUI open")
    imp.add_argument("weights", help="a trained DeepLab-format checkpoint, e.g. ADVENT's GTA2Cityscapes model")
    imp.add_argument("--out", required=True, help="the run directory to write")
    imp.add_argument("--backbone", default="resnet101", choices=["resnet101", "resnet50"])
    imp.add_argument("--method", default="source_only", help="the method that trained it, as this tool names "
                     "methods (e.g. advent, adaptsegnet; default source_only)")
    imp.add_argument("--name", help="the name the GUI and reports show (default: the file's name)")
    imp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a value of the recorded config, e.g. --set eval.size=[2048,1024]")
    imp.set_defaults(func=cmd_import)

    predict = _command(sub, "predict", help="class maps, colour maps and category vectors for frames")
    predict.add_argument("--checkpoint", required=True, help="a .pt file or a run directory")
    predict.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    predict.add_argument("--out", required=True)
    predict.add_argument("--device", default="auto")
    predict.add_argument("--overwrite", action="store_true", help="replace existing output files")
    predict.set_defaults(func=cmd_predict)

    export = _command(sub, "export", help="overlay PNGs, and source-only vs adapted composites with --compare")
    export.add_argument("--checkpoint", required=True, help="a .pt file or a run directory (A, e.g. source-only)")
    export.add_argument("--compare", metavar="CKPT2", help="a second checkpoint (B, e.g. PIT)")
    export.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    export.add_argument("--out", required=True)
    export.add_argument("--alpha", type=float, default=0.5, help="overlay opacity, 0..1 (default 0.5)")
    export.add_argument("--device", default="auto")
    export.add_argument("--overwrite", action="store_true", help="replace existing output files")
    export.set_defaults(func=cmd_export)

    demo = _command(sub, "demo", help="the main job: demo data, source-only vs PIT, evaluation, report",
                    description=DEMO_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--quick", action="store_true", help="a small, fast run (about a minute); not a real comparison")
    demo.add_argument("--out", default="pit-demo", help="output folder (default pit-demo)")
    demo.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    demo.add_argument("--seed", type=int, default=0, help="first seed")
    demo.add_argument("--seeds", type=int, default=1, help="how many seeds to run (mean and spread)")
    demo.add_argument("--data-seed", type=int, default=0, help="the demo pair's generator seed (default 0, the "
                      "development pair; the README also reports 11, 12 and 13)")
    demo.add_argument("--split", choices=("val", "test"), default="test",
                      help="where to score: choose settings on val, report on test (default test)")
    demo.add_argument("--methods", default="", help="comma-separated rows to train (default source_only,pit): "
                      "source_only, adaptsegnet, minent, advent, cbst, pit, the PIT ablations plus_d, plus_e, "
                      "pit_f, oracle, and target_labels (the ceiling)")
    demo.add_argument("--ablation", action="store_true", help="train PIT's ablation rows (source_only, plus_d, "
                      "plus_e, pit, pit_f, oracle)")
    demo.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="change demo.toml for every row, e.g. --set train.iterations=2000 (repeatable)")
    demo.set_defaults(func=cmd_demo)

    bench = _command(sub, "bench", help="our PIT step against the reference AdaptSegNet-style step, inference, "
                                        "overlay and GWRP costs")
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    bench.add_argument("--json", help="also write the results to this JSON file")
    bench.add_argument("--backbone", default="resnet101", help="resnet101 (default), resnet50 or small")
    bench.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    bench.add_argument("--steps", type=int, default=2, help="steps of each variant per round (default 2)")
    bench.add_argument("--compile", action="store_true", help="torch.compile our step (adds the compile time once)")
    bench.add_argument("--compile-mode", default="default",
                       choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
                       help="torch.compile's mode with --compile (reduce-overhead: CUDA graphs; an experiment)")
    bench.add_argument("--profile", metavar="FILE", help="also write torch.profiler's operator table of our step here")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print(exc.line(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:  # host memory (CUDA's torch.OutOfMemoryError is handled below)
        print("error: out of memory (pit) — use smaller frames or batches, or fewer data.workers", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: say so in one line unless asked for the traceback
        import torch
        if isinstance(exc, torch.OutOfMemoryError):
            print(out_of_memory(exc, "pit " + (argv[0] if argv else "")).line(), file=sys.stderr)
            return 2
        if debug:
            traceback.print_exc()
        else:
            print(f"error: internal error: {exc!r} — this is a bug; rerun with --debug and report the traceback",
                  file=sys.stderr)
        return 1
