"""The run configuration: TOML with sections data, model, method, train and eval.

Unknown keys and wrong types are refused by name. `--set section.key=value` overrides take
TOML literals (`--set train.lr=1e-3`, `--set data.source_root="/data/gta5"`); a bare word is
read as a string.
"""
from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from pit_engine.errors import UserError


@dataclass
class DataConfig:
    source_kind: str = "gta5"
    source_root: str = ""
    target_kind: str = "cityscapes"
    target_root: str = ""
    target_split: str = "train"
    val_kind: str = "cityscapes"
    val_root: str = ""  # empty: the target root
    val_split: str = "val"
    source_size: list[int] = field(default_factory=lambda: [1280, 720])  # resize to (width, height)
    target_size: list[int] = field(default_factory=lambda: [1024, 512])
    crop: list[int] = field(default_factory=list)  # random crop (width, height) after resizing; empty: none
    flip: bool = True
    workers: int = 2


@dataclass
class ModelConfig:
    backbone: str = "resnet101"  # resnet101, resnet50, small or efficientnet_lite0
    aspp_rates: list[int] = field(default_factory=lambda: [6, 12, 18, 24])  # [6, 12]: the two-rate variant
    aux: bool = True
    aux_weight: float = 0.1
    weights: str = ""  # a local torchvision ResNet state dict, DeepLab init checkpoint or Lite0 file ("imagenet": the installed one); empty: from scratch
    layout: str = "torchvision"  # the ResNet's layout, which must follow the weights: torchvision or deeplab
    batchnorm: str = "frozen"  # frozen (stored statistics) or batch (batch statistics in training, as published)
    normalization: str = "auto"  # auto (from the weights), imagenet, caffe or inception


def _method_config() -> type:
    """[method]: `name` picks the method; each method's own settings are a table of their own,
    [method.<name>], made from the method's Config dataclass (so adding a method edits no config)."""
    from pit_engine.methods import METHODS

    fields = [("name", str, field(default="pit"))]
    fields += [(name, method.Config, field(default_factory=method.Config)) for name, method in METHODS.items()]
    return dataclasses.make_dataclass("MethodConfig", fields)


MethodConfig = _method_config()


@dataclass
class TrainConfig:
    iterations: int = 120000
    batch_size: int = 1  # source and target images per step, each
    lr: float = 2.5e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    poly_power: float = 0.9
    poly_iterations: int = 0  # the poly schedule's horizon, if longer than the run (0: train.iterations)
    warmup: int = 0  # source-only iterations before the method's target terms start
    head_lr_mult: float = 10.0
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    amp: str = "off"  # mixed precision: off, bf16, fp16 (with loss scaling), or auto (bf16/fp16 on GPUs, off on CPUs)
    channels_last: bool = False  # NHWC memory layout for the convolutions
    compile: bool = False  # torch.compile the segmentation network (a one-off compile time per run)
    log_every: int = 10
    eval_every: int = 5000  # 0: only at the end
    health_every: int = 0  # measure pseudo-labels, pivot and IoU on fixed target train frames (0: never)
    health_frames: int = 16
    timeline: bool = True  # at each health step, record the health frames' pseudo-labels, pivot and predictions (RUN/timeline)
    checkpoint_every: int = 5000
    keep_checkpoints: int = 3
    tensorboard: bool = False  # also write TensorBoard event files to RUN/tensorboard (pip install 'pit-studio[tensorboard]')


@dataclass
class EvalConfig:
    size: list[int] = field(default_factory=lambda: [1024, 512])  # the network input (width, height)
    max_frames: int = 0  # 0: all


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    notes: typing.ClassVar[list[str]] = []  # what loading changed, for the caller to show

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def save(self, path: Path) -> None:
        from pit_engine.data.io import atomic_write
        atomic_write(Path(path), lambda tmp: Path(tmp).write_text(self.to_toml()))

    @classmethod
    def from_dict(cls, raw: dict, where: str = "config") -> "Config":
        """A checked config. A flat [method] table of before the method registry is converted,
        and `notes` says so (the caller shows it)."""
        raw, notes = upgrade_method_table(raw, where)
        config = _build(cls, raw, where, "")
        config.validate(where)
        config.notes = notes
        return config

    @property
    def method_settings(self):
        """The chosen method's own table."""
        return getattr(self.method, self.method.name)

    def validate(self, where: str = "config") -> None:
        """Values that have the right type but no meaning."""
        from pit_engine.data.datasets import DATASETS
        from pit_engine.methods import METHODS
        from pit_engine.models import BACKBONES, BATCHNORMS, LAYOUTS

        choices = {
            "data.source_kind": (self.data.source_kind, [k for k in DATASETS if k != "folder"]),
            "data.target_kind": (self.data.target_kind, list(DATASETS)),
            "data.val_kind": (self.data.val_kind, [k for k in DATASETS if k != "folder"]),
            "model.backbone": (self.model.backbone, BACKBONES),
            "model.layout": (self.model.layout, LAYOUTS),
            "model.batchnorm": (self.model.batchnorm, BATCHNORMS),
            "model.normalization": (self.model.normalization, ["auto", "imagenet", "caffe", "inception"]),
            "method.name": (self.method.name, list(METHODS)),
            "train.amp": (self.train.amp, ["off", "bf16", "fp16", "auto"]),
        }
        for key, (value, allowed) in choices.items():
            if value not in allowed:
                raise UserError(f"'{key}' is '{value}'", where, f"use one of: {', '.join(allowed)}")
        for key in ("data.source_size", "data.target_size", "eval.size"):
            section, name = key.split(".")
            size = getattr(getattr(self, section), name)
            if len(size) != 2 or min(size) < 8:
                raise UserError(f"'{key}' must be [width, height] of at least 8 pixels", where, f"got {size}")
        if self.data.crop and (len(self.data.crop) != 2 or min(self.data.crop) < 8):
            raise UserError("'data.crop' must be empty or [width, height]", where, f"got {self.data.crop}")
        for name in METHODS:  # every table, so a config never holds a bad value for later
            check = getattr(getattr(self.method, name), "validate", None)
            if check:
                check(where, f"method.{name}")
        for key in ("train.iterations", "train.batch_size", "train.log_every", "train.health_frames"):
            section, name = key.split(".")
            if getattr(getattr(self, section), name) < 1:
                raise UserError(f"'{key}' must be at least 1", where, "fix the value")
        if self.train.poly_iterations and self.train.poly_iterations < self.train.iterations:
            raise UserError("'train.poly_iterations' must be 0 (the run's length) or at least train.iterations",
                            where, f"got {self.train.poly_iterations} < {self.train.iterations}")
        if self.train.health_every < 0:
            raise UserError("'train.health_every' must be 0 (never) or more", where, "fix the value")
        device = self.train.device
        if not is_device_name(device):
            raise UserError(f"'train.device' is '{device}'", where, "use auto, cpu, cuda or cuda:N")

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] = ()) -> "Config":
        path = Path(path)
        if not path.is_file():
            raise UserError("config file not found", path, "give a .toml file, e.g. from resources/")
        try:
            raw = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"not valid TOML: {exc}", path, "fix the syntax") from None
        apply_overrides(raw, overrides)
        try:
            return cls.from_dict(raw, str(path))
        except UserError as exc:
            raise blame_override(exc, overrides) from None


def field_docs(cls) -> dict[str, str]:
    """Each field's documentation: the comment after it in the class's source (what the GUI's
    tooltips show, so that the form's help cannot drift from the config's)."""
    import inspect
    import re

    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # no source (a frozen build): no tooltips
        return {}
    docs = {}
    for line in source.splitlines():
        match = re.match(r"\s+(\w+):[^#]*#\s*(.+)$", line)
        if match and not match.group(1).isupper():
            docs[match.group(1)] = match.group(2).strip()
    return docs


def section_classes() -> dict[str, type]:
    """The config's sections, by name, as dataclasses (the schema the GUI's form is generated from)."""
    from pit_engine.methods import METHODS

    sections = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig}
    sections.update({f"method.{name}": method.Config for name, method in METHODS.items()})
    return sections


def upgrade_method_table(raw: dict, where: str) -> tuple[dict, list[str]]:
    """A flat [method] table (PIT's switches and numbers, from before [method] name = "...") as
    [method] name = "pit" or "source_only" with a [method.pit] table; its `warmup` goes to
    [train]. A flat key beside `name` is refused with the table it belongs in."""
    from pit_engine.methods import METHODS
    from pit_engine.methods.pit import PITConfig

    table = raw.get("method")
    if not isinstance(table, dict):
        return raw, []
    pit_keys = {f.name for f in dataclasses.fields(PITConfig)} | set(PITConfig.RETIRED) | {"warmup"}
    flat = [k for k in table if k in pit_keys and k not in METHODS]
    if not flat:
        return raw, []
    if "name" in table or any(k in METHODS for k in table):
        owner = next((n for n, m in METHODS.items() if flat[0] in {f.name for f in dataclasses.fields(m.Config)}),
                     "pit")
        hint = "it is train.warmup" if flat[0] == "warmup" else f"it is method.{owner}.{flat[0]}"
        raise UserError(f"unknown key 'method.{flat[0]}'", where, hint)
    raw = {**raw, "train": dict(raw.get("train", {}))}
    settings = dict(table)
    if "warmup" in settings:
        raw["train"].setdefault("warmup", settings.pop("warmup"))
    switches = {f.name: f.default for f in dataclasses.fields(PITConfig)
                if f.name in ("align", "image_level", "pixel_level", "output_adv")}
    adapts = any(settings.get(k, default) for k, default in switches.items())
    name = "pit" if adapts or settings.get("pivot", True) else "source_only"
    raw["method"] = {"name": name, "pit": settings}
    note = (f"note: {where} has the flat [method] table of earlier versions; read as [method] name = \"{name}\" "
            "with [method.pit] (and train.warmup); write it that way to silence this note")
    return raw, [note]


def drop_retired(raw: dict) -> dict:
    """A checkpoint's recorded config without the settings later versions retired (the record
    of a finished run must open; a config file that sets them is refused with the replacement)."""
    from pit_engine.methods.pit import PITConfig

    method = raw.get("method")
    if not isinstance(method, dict):
        return raw
    tables = [method] + [method["pit"]] if isinstance(method.get("pit"), dict) else [method]
    for table in tables:
        for key in PITConfig.RETIRED:
            table.pop(key, None)
    return raw


def is_device_name(name: str) -> bool:
    return name in ("auto", "cpu", "cuda") or name.startswith("cuda:") and name[5:].isdigit()


def _check_type(value, hint, key: str, where: str):
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise UserError(f"'{key}' must be a list of {item.__name__}", where, f"got {value!r}")
        return [_check_type(v, item, key, where) for v in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool) or not isinstance(value, hint) \
            or hint is int and isinstance(value, bool):
        raise UserError(f"'{key}' must be {hint.__name__}, got {type(value).__name__} {value!r}", where,
                        "fix its type")
    return value


def _build(cls, raw: dict, where: str, prefix: str):
    if not isinstance(raw, dict):
        raise UserError(f"'{prefix.rstrip('.')}' must be a table", where, "fix the config")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    retired = getattr(cls, "RETIRED", {})
    for key in raw:
        if key in retired:
            raise UserError(f"'{prefix}{key}' is retired", where, retired[key])
        if key not in names:
            import difflib
            close = difflib.get_close_matches(key, names, 1)
            hint = f"did you mean '{prefix}{close[0]}'?" if close else f"known: {', '.join(sorted(names))}"
            raise UserError(f"unknown key '{prefix}{key}'", where, hint)
    values = {}
    for key, value in raw.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, where, f"{prefix}{key}.")
        else:
            values[key] = _check_type(value, hint, f"{prefix}{key}", where)
    return cls(**values)


def blame_override(exc: UserError, overrides) -> UserError:
    """An error about a key that a `--set` gave names that option, not the file it changed."""
    for item in reversed(list(overrides)):  # the last one given is the one that counts
        key = item.split("=", 1)[0].strip()
        if f"'{key}'" in exc.what:
            return UserError(exc.what, f"--set {item}", exc.todo)
    return exc


def apply_overrides(raw: dict, overrides) -> None:
    """Apply `section.key=value` strings to a raw config dict, in place."""
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise UserError(f"override '{item}' is not section.key=value", "--set", "e.g. --set train.lr=1e-3")
        key, text = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text  # a bare word: a string
        *sections, name = key.strip().split(".")
        node = raw
        for s in sections:
            node = node.setdefault(s, {})
            if not isinstance(node, dict):
                raise UserError(f"'{s}' is not a section", "--set", "use section.key=value")
        node[name] = value
