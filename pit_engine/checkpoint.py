"""Checkpoints: written atomically, loaded without running code.

A checkpoint is a dict of tensors and plain values only (model, optimizers, RNG states,
iteration, config, class list, normalisation), so `torch.load(weights_only=True)` reads it.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from pit_engine.data.io import atomic_write
from pit_engine.errors import UserError
from pit_engine.torch_files import read_weights, safe_load

FORMAT = "pit-studio-checkpoint-1"


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """temporary file, fsync, rename: a crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    atomic_write(path, lambda tmp: torch.save({"format": FORMAT, **state}, tmp))
    return path


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if path.is_dir():  # a run directory: its newest checkpoint
        path = latest_checkpoint(path)
    if not path.is_file():
        raise UserError("checkpoint not found", path, "give a .pt file or a run directory")
    state = safe_load(path, ("not a PyTorch checkpoint", "give a .pt file written by `pit train`, or its run "
                                                         "directory"),
                      ("cannot load checkpoint", "the file is damaged or not a PIT Studio checkpoint; use another one"),
                      map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError("not a PIT Studio checkpoint", path, "give a checkpoint written by `pit train`")
    return state


def latest_checkpoint(run_dir: str | Path) -> Path:
    ckpts = sorted(Path(run_dir, "checkpoints").glob("iter_*.pt"))
    if not ckpts:
        raise UserError("no checkpoint in the run", run_dir, "train first, or give a .pt file")
    return ckpts[-1]


def seed_everything(seed: int) -> None:
    """Every RNG the trainer draws from, seeded."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def rng_state() -> dict:
    """Every RNG the trainer draws from, as tensors and ints (weights_only-safe)."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(_as_tuple(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def restore_model(checkpoint, device="cpu"):
    """The segmentation network of a checkpoint (or a run directory's newest), in eval mode,
    with the checkpoint's state dict. The class list must match the network's."""
    from pit_engine.classes import ABSENT_CLASSES, CITYSCAPES_CLASSES
    from pit_engine.models import DeepLabV2

    state = load_checkpoint(checkpoint, map_location=device)
    classes = state.get("classes", [])
    if list(classes) != list(CITYSCAPES_CLASSES):
        raise UserError(f"checkpoint has {len(classes)} classes, this build expects {len(CITYSCAPES_CLASSES)}",
                        checkpoint, "use a checkpoint trained on the 19 Cityscapes classes")
    m = state["config"]["model"]
    model = DeepLabV2(m["backbone"], len(classes), tuple(m["aspp_rates"]), m["aux"],
                      layout=m.get("layout", "torchvision"), batchnorm=m.get("batchnorm", "frozen"),
                      absent_classes=ABSENT_CLASSES.get(state["config"]["data"]["source_kind"], ()))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise UserError(f"checkpoint does not fit its own model description: {str(exc).splitlines()[0][:120]}",
                        checkpoint, "the file is damaged; use another checkpoint") from None
    return model.to(device).eval(), state


def slim_checkpoint(source, dest, name: str = "") -> Path:
    """A model-only copy of a checkpoint for shipping: fp16 weights, config, classes,
    normalisation and iteration; no optimizer, RNG or discriminator state."""
    state = load_checkpoint(source)
    slim = {
        "model": {k: (v.half() if v.is_floating_point() else v) for k, v in state["model"].items()},
        **{k: state[k] for k in ("config", "classes", "normalization", "iteration", "method", "source_shares") if k in state},
        "name": name,
    }
    return save_checkpoint(dest, slim)


def checkpoint_config(state: dict, where):
    """A checkpoint's run config, checked (a flat [method] table of earlier versions converted)."""
    import copy

    from pit_engine.config import Config, drop_retired

    return Config.from_dict(drop_retired(copy.deepcopy(state["config"])), f"the config in {where}")


def checkpoint_method(state: dict, where):
    """The method a checkpoint was trained with, with its settings (for its pivot and regions)."""
    from pit_engine.methods import build_method

    cfg = checkpoint_config(state, where)
    method = build_method(cfg.method, cfg.model.aux_weight)
    method.load_inference_state(state)
    return method


def import_published(weights, out, backbone: str = "resnet101", method: str = "source_only", name: str = "",
                     overrides=(), log=print) -> Path:
    """A trained DeepLab-format model (AdaptSegNet's or ADVENT's published GTA5 -> Cityscapes and
    SYNTHIA -> Cityscapes checkpoints, or any single- or multi-level one) as a run directory that
    `pit eval`, `pit export` and the GUI open beside the user's own runs: `config.toml` (the preset
    of its source, 19 classes for GTA5 and 16 for SYNTHIA, with the model the file holds),
    `events.log` and one model-only checkpoint."""
    import tomllib

    from pit_engine.classes import ABSENT_CLASSES, CITYSCAPES_CLASSES
    from pit_engine.config import Config, apply_overrides, blame_override
    from pit_engine.models import DeepLabV2, classifier_target, load_pretrained, weights_origin
    from pit_resources import resource

    weights, out = Path(weights), Path(out)
    state = read_weights(weights)
    heads = {layer: state[f"{layer}.conv2d_list.0.weight"] for layer in ("layer5", "layer6")
             if f"{layer}.conv2d_list.0.weight" in state}
    if weights_origin(state) != "deeplab" or not heads or any(k.startswith("Scale.") for k in state):
        raise UserError("the file holds no trained DeepLab segmentation model (layer5 / layer6 classifiers)", weights,
                        "an initialisation file goes to model.weights for training; import trained models only")
    classes = next(iter(heads.values())).shape[0]
    sources = {len(CITYSCAPES_CLASSES): "gta5", len(CITYSCAPES_CLASSES) - len(ABSENT_CLASSES["synthia"]): "synthia"}
    if classes not in sources:
        raise UserError(f"the model predicts {classes} classes", weights,
                        "import a 19-class (GTA5 -> Cityscapes) or 16-class (SYNTHIA -> Cityscapes) model")
    source = sources[classes]
    if (out / "checkpoints").exists() and any((out / "checkpoints").iterdir()):
        raise UserError("the run directory already holds checkpoints", out, "choose another --out")
    raw = tomllib.loads(resource(f"{source}_to_cityscapes.toml").read_text())
    raw["model"].update(backbone=backbone, aux="layer6" in heads, weights="", normalization="caffe", layout="deeplab",
                        batchnorm="batch")
    raw["method"]["name"] = method
    apply_overrides(raw, overrides)
    try:
        config = Config.from_dict(raw, "pit import")
    except UserError as exc:
        raise blame_override(exc, overrides) from None
    m = config.model
    model = DeepLabV2(m.backbone, len(CITYSCAPES_CLASSES), tuple(m.aspp_rates), m.aux, layout=m.layout,
                      batchnorm=m.batchnorm, absent_classes=ABSENT_CLASSES.get(source, ()))
    report = load_pretrained(model, weights)
    filled = {t for k in state if (t := classifier_target(k, state)) is not None}
    empty = [k for k in model.state_dict() if k.startswith(("head.", "aux_head.")) and k not in filled]
    if report.missing or report.unmatched or empty:
        raise UserError(f"the file does not fill the {m.backbone} model: {len(report.missing + empty)} tensor(s) missing, "
                        f"{len(report.unmatched)} key(s) unmatched", weights,
                        "check --backbone (resnet101 or resnet50) and that the file is a multi- or single-level DeepLab")
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "config.toml")
    path = save_checkpoint(out / "checkpoints" / "iter_0000000.pt", {
        "model": model.state_dict(), "config": config.to_dict(), "classes": list(CITYSCAPES_CLASSES),
        "normalization": "caffe", "iteration": 0, "method": method, "name": name or weights.stem})
    line = (f"imported {weights} ({report.loaded} tensors, {classes} classes, {'multi' if m.aux else 'single'}-level, "
            f"deeplab layout, caffe normalisation) as {path}")
    (out / "events.log").write_text(line + "\n")
    log(line)
    return out
