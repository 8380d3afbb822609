"""The `pit` command line.

User errors print one line, `error: <what> (<where>) — <what to do>`, and exit with code 2;
`--debug` shows the traceback. Exit code 1 means a bug.
"""
from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from tqdm import tqdm

from pit_engine.errors import UserError


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

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError("not a folder", out, "choose a folder for --out")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise UserError("output folder is not empty", out, "choose a new folder or pass --overwrite")
    start = time.perf_counter()
    paths = make_demo(out, seed=args.seed, n_source=args.source, n_train=args.train, n_val=args.val,
                      progress=_progress("generating"))
    print(f"wrote the demo pair (seed {args.seed}) in {time.perf_counter() - start:.1f} s:")
    print(f"  source, GTA5 layout:       {paths['source']}  ({args.source} frames)")
    print(f"  target, Cityscapes layout: {paths['target']}  (train {args.train}, val {args.val} frames)")
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pit", description="PIT Studio: domain-adaptive semantic segmentation (PIT, CVPR 2020).")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = sub.add_parser("data", help="data sets: make the demo pair, check a folder")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)

    demo = data_sub.add_parser("make-demo", help="generate the demo domain pair (GTA5-format source, "
                                                  "Cityscapes-format target)")
    demo.add_argument("--out", required=True, help="output folder")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--source", type=int, default=300, help="source frames (default 300)")
    demo.add_argument("--train", type=int, default=300, help="target train frames (default 300)")
    demo.add_argument("--val", type=int, default=100, help="target val frames (default 100)")
    demo.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    demo.set_defaults(func=cmd_make_demo)

    check = data_sub.add_parser("check", help="validate a data set folder and summarise it")
    check.add_argument("kind", choices=["gta5", "synthia", "cityscapes", "folder"])
    check.add_argument("root")
    check.add_argument("--split", help="Cityscapes split (default train)")
    check.add_argument("--export-train-ids", metavar="DIR", help="write one trainId PNG per label file into DIR")
    check.add_argument("--overwrite", action="store_true", help="replace existing exported files")
    check.set_defaults(func=cmd_check)
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
    except Exception as exc:  # a bug: say so in one line unless asked for the traceback
        if debug:
            traceback.print_exc()
        else:
            print(f"error: internal error: {exc!r} — this is a bug; rerun with --debug and report the traceback",
                  file=sys.stderr)
        return 1
