"""Networks: DeepLabV2 (ResNet-101/50 or a small CPU backbone), the pivot head, discriminators,
and import of local pretrained weights.

The segmentation network returns, for a batch, the main and auxiliary logits (at output stride
8), the last feature map and the pivot (image-level) logits. Weights are never downloaded.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet
from torchvision.ops.misc import FrozenBatchNorm2d

from pit_engine.efficientnet_lite import BN_EPS, EfficientNetLite0, installed_weights, is_lite0_state, map_lite0_state
from pit_engine.errors import UserError
from pit_engine.torch_files import read_weights

BACKBONES = ("resnet101", "resnet50", "small", "efficientnet_lite0")


@dataclass
class SegOutput:
    logits: torch.Tensor  # B x C x h x w, main head
    aux: torch.Tensor | None  # B x C x h x w, auxiliary head
    features: torch.Tensor  # B x K x h x w, last backbone stage
    pivot: torch.Tensor  # B x C image-level logits


class ASPPClassifier(nn.Module):
    """DeepLabV2's classifier: the *sum* of dilated 3x3 convolutions, one per rate."""

    def __init__(self, in_channels: int, num_classes: int, rates=(6, 12, 18, 24)):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, 3, padding=r, dilation=r, bias=True) for r in rates)
        for conv in self.convs:
            nn.init.normal_(conv.weight, 0, 0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, x):
        out = self.convs[0](x)
        for conv in self.convs[1:]:
            out = out + conv(x)
        return out


class PivotHead(nn.Module):
    """Image-level classifier: global average pooling, then a linear layer to C logits.

    Its weights also give class activation maps, CAM_c = sum_k W[c, k] f_k.
    """

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, features):
        return self.fc(features.mean((2, 3)))

    def cam(self, features):
        return torch.einsum("ck,bkhw->bchw", self.fc.weight, features) + self.fc.bias[None, :, None, None]


class FrozenBatchNorm(FrozenBatchNorm2d):
    """torchvision's frozen BatchNorm, in the activations' dtype and one fused pass. The inherited
    one multiplies bf16 activations by float32 buffers, so under autocast every activation after
    it became float32: twice the memory, and a cast back to bf16 before every convolution."""

    def forward(self, x):
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return torch.addcmul(shift.to(x.dtype)[None, :, None, None], x, scale.to(x.dtype)[None, :, None, None])


LAYOUTS = ("torchvision", "deeplab")
BATCHNORMS = ("frozen", "batch")
RESNET_BLOCKS = {"resnet101": (3, 4, 23, 3), "resnet50": (3, 4, 6, 3)}


def _norm_layer(batchnorm: str, eps: float = 1e-5):
    """frozen: the stored statistics, always (FrozenBatchNorm). batch: as AdaptSegNet's and
    ADVENT's code trains, BatchNorm with its affine frozen that normalises with the batch's
    statistics in training and updates the stored ones, which evaluation then uses."""
    if batchnorm == "frozen":
        return lambda channels: FrozenBatchNorm(channels, eps=eps)

    def norm(channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=eps).requires_grad_(False)
    return norm


def _to_deeplab(net) -> None:
    """torchvision's dilated ResNet rewired into the Caffe-style ResNet of DeepLab, AdaptSegNet and
    ADVENT (same keys and shapes, another function): the stride in the first 1x1 convolution of
    a block, dilation 2 in every block of layer3 and 4 in every block of layer4, and a max-pool
    that rounds up."""
    net.maxpool.ceil_mode = True
    first = net.layer2[0]
    first.conv1.stride, first.conv2.stride = (2, 2), (1, 1)
    for layer, rate in ((net.layer3, 2), (net.layer4, 4)):
        for block in layer:
            block.conv2.dilation = block.conv2.padding = (rate, rate)


class ResNetBackbone(nn.Module):
    """A ResNet dilated to output stride 8, in the torchvision or the deeplab layout (the layout
    must follow the weights: each computes another function with the same keys)."""

    def __init__(self, depth: str, layout: str = "torchvision", batchnorm: str = "frozen", blocks=None):
        super().__init__()
        net = ResNet(Bottleneck, list(blocks or RESNET_BLOCKS[depth]), replace_stride_with_dilation=[False, True, True],
                     norm_layer=_norm_layer(batchnorm))
        if layout == "deeplab":
            _to_deeplab(net)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.channels = (1024, 2048)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        mid = self.layer3(x)
        return mid, self.layer4(mid)


class _Block(nn.Module):
    def __init__(self, cin, cout, stride=1, dilation=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.norm1 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, padding=dilation, dilation=dilation, bias=False)
        self.norm2 = nn.GroupNorm(8, cout)
        self.skip = None if (cin == cout and stride == 1) else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.GroupNorm(8, cout))

    def forward(self, x):
        y = F.relu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return F.relu(y + (x if self.skip is None else self.skip(x)))


class SmallBackbone(nn.Module):
    """A residual net with the ResNet stage layout at output stride 8 that trains in minutes on
    a CPU, for the demo and the tests. GroupNorm, so batches of one are fine."""

    def __init__(self, width: int = 24):
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 2, 1, bias=False), nn.GroupNorm(8, w), nn.ReLU())
        self.layer1 = _Block(w, w)
        self.layer2 = nn.Sequential(_Block(w, 2 * w, stride=2), _Block(2 * w, 2 * w))
        self.layer3 = nn.Sequential(_Block(2 * w, 4 * w, stride=2), _Block(4 * w, 4 * w, dilation=2))
        self.layer4 = nn.Sequential(_Block(4 * w, 8 * w, dilation=2), _Block(8 * w, 8 * w, dilation=4))
        self.channels = (4 * w, 8 * w)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        mid = self.layer3(x)
        return mid, self.layer4(mid)


class DeepLabV2(nn.Module):
    """DeepLabV2 with a main head on the last stage, an auxiliary head on the one before, and
    the pivot head on pooled last-stage features."""

    def __init__(self, backbone: str = "resnet101", num_classes: int = 19, rates=(6, 12, 18, 24),
                 aux: bool = True, small_width: int = 24, layout: str = "torchvision", batchnorm: str = "frozen",
                 absent_classes=()):
        super().__init__()
        # classes the source never shows (SYNTHIA's terrain, truck, train): their logits are held at
        # a floor, so the network is a network of the other classes, softmax and pivot included
        self.absent_classes = tuple(absent_classes)
        self.register_buffer("_absent", torch.tensor(self.absent_classes, dtype=torch.long), persistent=False)
        if backbone not in BACKBONES:
            raise UserError(f"unknown backbone '{backbone}'", "model.backbone", f"use one of: {', '.join(BACKBONES)}")
        self.backbone_name, self.num_classes, self.layout = backbone, num_classes, layout
        if backbone == "small":
            self.backbone = SmallBackbone(small_width)
        elif backbone == "efficientnet_lite0":
            self.backbone = EfficientNetLite0(_norm_layer(batchnorm, BN_EPS))
        else:
            self.backbone = ResNetBackbone(backbone, layout, batchnorm)
        if backbone == "small":  # the small net's stage-4 map is 16x smaller; scale the rates down with it
            rates = tuple(max(1, r // 6) for r in rates)
        mid, last = self.backbone.channels
        self.head = ASPPClassifier(last, num_classes, rates)
        self.aux_head = ASPPClassifier(mid, num_classes, rates) if aux else None
        self.pivot_head = PivotHead(last, num_classes)

    def forward(self, x) -> SegOutput:
        mid, last = self.backbone(x)
        aux = self.aux_head(mid) if self.aux_head is not None else None
        logits, pivot = self.head(last), self.pivot_head(last)
        if self.absent_classes:
            logits, pivot = self._floor(logits), self._floor(pivot)
            aux = self._floor(aux) if aux is not None else None
        return SegOutput(logits, aux, last, pivot)

    def _floor(self, t: torch.Tensor) -> torch.Tensor:
        """Absent classes' scores at -1e4: zero probability, finite logs (p·log p stays 0)."""
        return t.index_fill(1, self._absent, -1e4)

    def param_groups(self, lr: float, head_mult: float = 10.0):
        """Backbone at lr, heads (classifiers and the pivot head) at head_mult x lr."""
        heads = [p for n, p in self.named_parameters() if not n.startswith("backbone.") and p.requires_grad]
        body = [p for n, p in self.named_parameters() if n.startswith("backbone.") and p.requires_grad]
        return [{"params": body, "lr": lr, "lr_mult": 1.0}, {"params": heads, "lr": lr * head_mult, "lr_mult": head_mult}]


class OutputDiscriminator(nn.Module):
    """AdaptSegNet's fully convolutional discriminator on softmax maps: five 4x4 stride-2
    convolutions (64, 128, 256, 512, 1 channels at width 64), LeakyReLU(0.2)."""

    def __init__(self, num_classes: int, width: int = 64):
        super().__init__()
        chans = [num_classes, width, 2 * width, 4 * width, 8 * width]
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.Conv2d(chans[-1], 1, 4, 2, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class ImageDiscriminator(nn.Module):
    """A small MLP on globally pooled features: which domain did this image come from?"""

    def __init__(self, in_channels: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_channels, hidden), nn.LeakyReLU(0.2, inplace=True),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2, inplace=True), nn.Linear(hidden, 1))

    def forward(self, features):
        return self.net(features.mean((2, 3)))


# ---------------------------------------------------------------------------------------------
# Local pretrained weights


@dataclass
class WeightsReport:
    format: str  # "torchvision" or "deeplab"
    normalization: str  # what the weights expect: "imagenet" or "caffe"
    loaded: int
    unmatched: list[str]  # keys of the file that found no place in the model
    missing: list[str]  # backbone parameters the file did not provide
    path: str = ""  # the file read, where model.weights named it otherwise ("imagenet")


def weights_origin(state: dict) -> str | None:
    """Which layout a weights file was trained in, where its keys show it: `Scale.` (the DeepLab
    init file) or `layer5`/`layer6` classifiers (AdaptSegNet, ADVENT) are the deeplab layout,
    torchvision's `fc` its own; None where the keys cannot tell."""
    if any(k.startswith(("Scale.", "layer5.", "layer6.")) for k in state):
        return "deeplab"
    if any(k.startswith("fc.") for k in state):
        return "torchvision"
    return None


def classifier_target(name: str, state: dict) -> str | None:
    """Where a DeepLab classifier key goes. In the init file (`Scale.`) layer5 is a COCO
    classifier: skipped. In a multi-level model (layer6 present) layer5 is the auxiliary head on
    layer3 and layer6 the main head on layer4; in a single-level one layer5 is the main head."""
    for layer in ("layer5", "layer6"):
        if name.startswith(f"{layer}.conv2d_list."):
            rest = name[len(f"{layer}.conv2d_list."):]
            multi = any(k.startswith("layer6.") for k in state)
            if layer == "layer6" or not multi:
                return "head.convs." + rest
            return "aux_head.convs." + rest
    return None


def _spread_classes(value: torch.Tensor, like: torch.Tensor, absent) -> torch.Tensor:
    """A 16-class classifier (SYNTHIA's published models) into the rows of its classes among the
    19; the absent rows stay 0 (their scores are held at a floor anyway)."""
    if not absent or value.shape[0] != like.shape[0] - len(absent) or value.shape[1:] != like.shape[1:]:
        return value
    full = torch.zeros_like(like)
    full[[c for c in range(like.shape[0]) if c not in absent]] = value
    return full


def load_pretrained(model: DeepLabV2, path: str | Path) -> WeightsReport:
    """Load a torchvision ResNet state dict, the DeepLab initialisation file (keys
    `Scale.layer1.0.conv1.weight`, ...) or a trained AdaptSegNet / ADVENT DeepLab model (keys
    `layer1.0.conv1.weight`, `layer5.conv2d_list.0.weight`, `layer6...`), key by key. A file whose
    keys show its layout loads only into a model of that layout."""
    if model.backbone_name == "small":
        raise UserError("the small backbone has no pretrained weights", path, "leave model.weights empty")
    if model.backbone_name == "efficientnet_lite0":
        return _load_lite0(model, installed_weights() if str(path) == "imagenet" else Path(path))
    path = Path(path)
    state = read_weights(path)
    if is_lite0_state(state):
        raise UserError("the weights are an EfficientNet-Lite0 file", path,
                        'set model.backbone = "efficientnet_lite0" to use them')
    origin = weights_origin(state)
    if origin is not None and origin != model.layout:
        kind = "a DeepLab / AdaptSegNet / ADVENT (Caffe-layout)" if origin == "deeplab" else "a torchvision ResNet"
        raise UserError(f"the weights are {kind} file, but model.layout is '{model.layout}'", path,
                        f'set model.layout = "{origin}": in the other layout they compute another function')
    init_file = any(k.startswith("Scale.") for k in state)
    target = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unmatched = []
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):  # BatchNorm bookkeeping, not weights
            continue
        name = key[len("Scale."):] if key.startswith("Scale.") else key
        if init_file and name.startswith("layer5."):  # the init file's COCO classifier
            unmatched.append(key)
            continue
        name = classifier_target(name, state) or "backbone." + name
        if name.startswith(("head.", "aux_head.")) and name in target:
            value = _spread_classes(value, target[name], model.absent_classes)
        if name in target and target[name].shape == value.shape:
            mapped[name] = value
        else:
            unmatched.append(key)
    backbone_keys = [k for k in target if k.startswith("backbone.") and not k.endswith("num_batches_tracked")]
    missing = [k for k in backbone_keys if k not in mapped]
    if len(missing) == len(backbone_keys):
        raise UserError("no key of the weights file matches the backbone", path,
                        f"check that it is a {model.backbone_name} checkpoint")
    model.load_state_dict(mapped, strict=False)
    deeplab = origin == "deeplab"
    return WeightsReport("deeplab" if deeplab else "torchvision", "caffe" if deeplab else "imagenet",
                         len(mapped), unmatched, missing)


def _load_lite0(model: DeepLabV2, path: Path) -> WeightsReport:
    """EfficientNet-Lite0's ImageNet file (lukemelas or timm key names) into the backbone; its
    ImageNet classifier is left out. It expects inputs scaled to [-1, 1]."""
    state = read_weights(path)
    if not is_lite0_state(state):
        raise UserError("not an EfficientNet-Lite0 weights file", path,
                        "give the efficientnet-lite0 .pth (or model.weights = \"imagenet\" for the installed one)")
    mapped, unmatched = map_lite0_state(model.backbone, state)
    model.backbone.load_state_dict(mapped)
    return WeightsReport("efficientnet-lite0", "inception", len(mapped), unmatched, [], str(path))


def build_model(backbone: str, num_classes: int, rates, aux: bool, weights: str = "",
                log=print, layout: str = "torchvision", batchnorm: str = "frozen",
                absent_classes=()) -> tuple[DeepLabV2, str | None]:
    """The segmentation network, with pretrained weights if a file is given.

    Returns the model and the normalisation the weights expect (None when trained from scratch).
    """
    model = DeepLabV2(backbone, num_classes, tuple(rates), aux, layout=layout, batchnorm=batchnorm,
                      absent_classes=absent_classes)
    if not weights:
        if backbone != "small":
            warnings.warn(f"{backbone} trains from scratch (no model.weights given): results are not "
                          "comparable with published numbers", stacklevel=2)
        return model, None
    report = load_pretrained(model, weights)
    log(f"loaded {report.loaded} tensors from {report.path or weights} ({report.format} format, expects {report.normalization} "
        f"normalisation); {len(report.unmatched)} key(s) unmatched"
        + (f": {', '.join(report.unmatched[:6])}{' ...' if len(report.unmatched) > 6 else ''}" if report.unmatched else "")
        + (f"; {len(report.missing)} backbone tensor(s) not in the file" if report.missing else ""))
    return model, report.normalization
