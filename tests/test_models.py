import pickle

import pytest
import torch
from torchvision.models import resnet50

from pit_engine.errors import UserError
from pit_engine.models import DeepLabV2, ImageDiscriminator, OutputDiscriminator, build_model, load_pretrained


def test_small_deeplab_shapes_and_output_stride():
    model = DeepLabV2("small", 19)
    out = model(torch.randn(2, 3, 64, 128))
    assert out.logits.shape == (2, 19, 8, 16) and out.aux.shape == (2, 19, 8, 16)
    assert out.pivot.shape == (2, 19)
    up = torch.nn.functional.interpolate(out.logits, size=(64, 128), mode="bilinear")
    assert OutputDiscriminator(19, 8)(up.softmax(1)).shape == (2, 1, 2, 4)
    assert ImageDiscriminator(out.features.shape[1])(out.features).shape == (2, 1)


def test_resnet_deeplab_is_dilated_with_frozen_bn_and_summed_rates():
    model = DeepLabV2("resnet50", 19, rates=(6, 12), aux=True)
    out = model(torch.randn(1, 3, 64, 64))
    assert out.logits.shape == (1, 19, 8, 8)  # output stride 8
    assert len(model.head.convs) == 2 and [c.dilation[0] for c in model.head.convs] == [6, 12]
    bn_params = [n for n, _ in model.named_parameters() if "bn" in n]
    assert bn_params == []  # FrozenBatchNorm2d: statistics and affine terms are buffers
    groups = model.param_groups(1e-3)
    assert groups[1]["lr"] == pytest.approx(10 * groups[0]["lr"])
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_frozen_batchnorm_keeps_the_activation_dtype_and_torchvision_values():
    from torchvision.ops.misc import FrozenBatchNorm2d

    from pit_engine.models import FrozenBatchNorm

    ours, theirs = FrozenBatchNorm(8), FrozenBatchNorm2d(8)
    for name, buf in theirs.named_buffers():
        buf.copy_(torch.rand(8) + 0.5)
    ours.load_state_dict(theirs.state_dict())  # the same state-dict keys: checkpoints and weights load
    x = torch.randn(2, 8, 5, 6).contiguous(memory_format=torch.channels_last)
    assert torch.allclose(ours(x), theirs(x), atol=1e-6)
    assert ours(x).is_contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        # torchvision's returns float32 here (bf16 x float32 buffers): activations would double in size
        assert theirs(x.bfloat16()).dtype == torch.float32 and ours(x.bfloat16()).dtype == torch.bfloat16


def test_the_classifier_is_a_sum_over_rates():
    model = DeepLabV2("small", 19)
    x = torch.randn(1, model.backbone.channels[1], 6, 6)
    assert torch.allclose(model.head(x), sum(conv(x) for conv in model.head.convs), atol=1e-6)


def test_cam_pools_to_the_pivot_logits():
    model = DeepLabV2("small", 19).eval()
    out = model(torch.randn(1, 3, 64, 64))
    cam = model.pivot_head.cam(out.features)
    assert cam.shape == (1, 19, 8, 8)
    assert torch.allclose(cam.mean((2, 3)), out.pivot, atol=1e-5)  # linear head: mean of CAM = logits


def test_torchvision_weights_load_by_name(tmp_path):
    source = resnet50()
    path = tmp_path / "resnet50.pth"
    torch.save(source.state_dict(), path)
    model = DeepLabV2("resnet50", 19)
    report = load_pretrained(model, path)
    assert report.format == "torchvision" and report.normalization == "imagenet"
    assert report.unmatched == ["fc.weight", "fc.bias"] and report.missing == []
    assert torch.equal(model.backbone.layer3[2].conv2.weight, source.layer3[2].conv2.weight)


def _deeplab_backbone_state(model) -> dict:
    """The backbone keys of a DeepLab-format file (ours, less the `backbone.` prefix)."""
    return {k[len("backbone."):]: torch.randn_like(v) if v.is_floating_point() else v
            for k, v in model.state_dict().items() if k.startswith("backbone.")}


def _classifier(layer: str, cin: int, classes: int = 19) -> dict:
    state = {}
    for i in range(4):
        state[f"{layer}.conv2d_list.{i}.weight"] = torch.randn(classes, cin, 3, 3)
        state[f"{layer}.conv2d_list.{i}.bias"] = torch.randn(classes)
    return state


def test_the_deeplab_init_file_loads_into_the_deeplab_layout_only(tmp_path):
    model = DeepLabV2("resnet50", 19, layout="deeplab")
    backbone = _deeplab_backbone_state(model)
    state = {f"Scale.{k}": v for k, v in backbone.items()}
    state.update({f"Scale.{k}": v for k, v in _classifier("layer5", 2048, 21).items()})  # COCO: skipped
    path = tmp_path / "DeepLab_resnet_pretrained_init.pth"
    torch.save(state, path)
    report = load_pretrained(model, path)
    assert report.format == "deeplab" and report.normalization == "caffe" and report.missing == []
    assert sorted(report.unmatched) == sorted(f"Scale.{k}" for k in _classifier("layer5", 2048, 21))
    landed = model.state_dict()
    assert all(torch.equal(landed[f"backbone.{k}"], v) for k, v in backbone.items())
    with pytest.raises(UserError, match="model.layout is 'torchvision'.*set model.layout = \"deeplab\""):
        load_pretrained(DeepLabV2("resnet50", 19), path)


def test_a_trained_multi_level_model_maps_layer5_to_the_auxiliary_head(tmp_path):
    # AdaptSegNet's and ADVENT's multi-level models: layer5 on layer3 (1024 in), layer6 on layer4
    model = DeepLabV2("resnet50", 19, layout="deeplab", batchnorm="batch")
    backbone = _deeplab_backbone_state(model)
    aux, main = _classifier("layer5", 1024), _classifier("layer6", 2048)
    path = tmp_path / "GTA2Cityscapes_multi.pth"
    torch.save({**backbone, **aux, **main}, path)
    report = load_pretrained(model, path)
    assert report.unmatched == [] and report.missing == [] and report.format == "deeplab"
    landed = model.state_dict()
    for i in range(4):
        assert torch.equal(landed[f"head.convs.{i}.weight"], main[f"layer6.conv2d_list.{i}.weight"])
        assert torch.equal(landed[f"aux_head.convs.{i}.bias"], aux[f"layer5.conv2d_list.{i}.bias"])
    assert all(torch.equal(landed[f"backbone.{k}"], v) for k, v in backbone.items() if "num_batches" not in k)
    # a single-level model's layer5 is its main head
    torch.save({**backbone, **{k.replace("layer6", "layer5"): v for k, v in main.items()}}, path)
    assert load_pretrained(model, path).unmatched == []
    assert torch.equal(model.head.convs[0].weight, main["layer6.conv2d_list.0.weight"])


def test_a_torchvision_file_is_refused_by_the_deeplab_layout(tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(resnet50().state_dict(), path)
    with pytest.raises(UserError, match="torchvision ResNet file, but model.layout is 'deeplab'"):
        load_pretrained(DeepLabV2("resnet50", 19, layout="deeplab"), path)


@pytest.mark.parametrize("layout", ["torchvision", "deeplab"])
def test_each_block_has_its_layouts_stride_and_dilation(layout):
    net = DeepLabV2("resnet101", 19, layout=layout).backbone
    assert net.maxpool.ceil_mode == (layout == "deeplab")
    for name, rate in (("layer1", 1), ("layer2", 1), ("layer3", 2), ("layer4", 4)):
        for i, block in enumerate(getattr(net, name)):
            strided = name == "layer2" and i == 0
            if layout == "deeplab":  # the stride in the 1x1, every block of a stage at its rate
                expect = ((2, 2) if strided else (1, 1), (1, 1), (rate, rate))
            else:  # the stride in the 3x3, a stage's first block at the previous rate
                first = {"layer3": 1, "layer4": 2}.get(name, rate) if i == 0 else rate
                expect = ((1, 1), (2, 2) if strided else (1, 1), (first, first))
            assert (block.conv1.stride, block.conv2.stride, block.conv2.dilation) == expect, (name, i)
            assert block.conv2.padding == block.conv2.dilation
            assert (block.downsample is not None) == (i == 0)


def _reference(x, sd, layout):
    """A hand-written forward of a one-block-per-stage ResNet in either layout, from a state dict."""
    import torch.nn.functional as F

    def bn(t, key):
        scale = sd[f"{key}.weight"] / (sd[f"{key}.running_var"] + 1e-5).sqrt()
        return t * scale[None, :, None, None] + (sd[f"{key}.bias"] - sd[f"{key}.running_mean"] * scale)[None, :, None, None]

    def block(t, key, stride, dilation):
        s1, s2 = (stride, 1) if layout == "deeplab" else (1, stride)
        out = F.relu(bn(F.conv2d(t, sd[f"{key}.conv1.weight"], stride=s1), f"{key}.bn1"))
        out = F.relu(bn(F.conv2d(out, sd[f"{key}.conv2.weight"], stride=s2, padding=dilation, dilation=dilation),
                        f"{key}.bn2"))
        out = bn(F.conv2d(out, sd[f"{key}.conv3.weight"]), f"{key}.bn3")
        skip = bn(F.conv2d(t, sd[f"{key}.downsample.0.weight"], stride=stride), f"{key}.downsample.1")
        return F.relu(out + skip)

    t = F.relu(bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), "bn1"))
    t = F.max_pool2d(t, 3, 2, 1, ceil_mode=layout == "deeplab")
    t = block(t, "layer1.0", 1, 1)
    t = block(t, "layer2.0", 2, 1)
    mid = block(t, "layer3.0", 1, 2 if layout == "deeplab" else 1)
    return mid, block(mid, "layer4.0", 1, 4 if layout == "deeplab" else 2)


def test_each_layout_computes_its_hand_built_reference():
    from pit_engine.models import ResNetBackbone

    torch.manual_seed(0)
    x = torch.randn(1, 3, 41, 57)  # odd sizes: the max-pool's rounding shows
    outputs = {}
    for layout in ("torchvision", "deeplab"):
        net = ResNetBackbone("resnet50", layout, "frozen", blocks=(1, 1, 1, 1)).eval()
        sd = {k: torch.rand_like(v) + 0.5 if "running_var" in k else torch.randn_like(v) * 0.1
              for k, v in net.state_dict().items()}
        net.load_state_dict(sd)
        with torch.no_grad():
            mid, last = net(x)
            ref_mid, ref_last = _reference(x, sd, layout)
        assert mid.shape == ref_mid.shape and torch.allclose(mid, ref_mid, atol=1e-4), layout
        assert torch.allclose(last, ref_last, atol=1e-4), layout
        outputs[layout] = (sd, last)
    # the same weights in the other layout compute another function (and another map size)
    sd, last = outputs["deeplab"]
    other = ResNetBackbone("resnet50", "torchvision", "frozen", blocks=(1, 1, 1, 1)).eval()
    other.load_state_dict(sd)
    with torch.no_grad():
        wrong = other(x)[1]
    assert wrong.shape != last.shape or not torch.allclose(wrong, last, atol=1e-3)


def test_batch_statistics_in_training_stored_ones_in_evaluation():
    model = DeepLabV2("resnet50", 19, layout="deeplab", batchnorm="batch")
    assert not any(p.requires_grad for n, p in model.named_parameters() if ".bn" in n or "downsample.1" in n)
    before = model.backbone.bn1.running_mean.clone()
    model.train()(torch.randn(2, 3, 48, 48))
    assert not torch.equal(model.backbone.bn1.running_mean, before)  # updated, as the published code does
    model.eval()
    x = torch.randn(1, 3, 48, 48)
    assert torch.equal(model(x).logits, model(x).logits)


class _Boom:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_weights_that_would_run_code_or_are_garbage_are_refused(tmp_path, capsys):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"conv1.weight": _Boom()}, f)
    model = DeepLabV2("resnet50", 19)
    with pytest.raises(UserError, match="cannot load weights"):
        load_pretrained(model, evil)
    assert "this must never run" not in capsys.readouterr().out
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="not a PyTorch weights file"):
        load_pretrained(model, junk)
    other = tmp_path / "other.pth"
    torch.save({"something.else": torch.zeros(3)}, other)
    with pytest.raises(UserError, match="no key of the weights file matches"):
        load_pretrained(model, other)
    with pytest.raises(UserError, match="weights file not found"):
        build_model("resnet50", 19, (6, 12), True, str(tmp_path / "missing.pth"))


def test_from_scratch_warns_for_resnets():
    with pytest.warns(UserWarning, match="not comparable with published numbers"):
        build_model("resnet50", 19, (6, 12), False)
