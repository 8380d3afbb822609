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


def test_deeplab_init_checkpoint_keys_map_and_report_unmatched(tmp_path):
    source = resnet50().state_dict()
    state = {f"Scale.{k}": v for k, v in source.items() if not k.startswith("fc.")}
    for i in range(4):  # a COCO classifier of 21 classes: cannot fit 19, so it is reported
        state[f"Scale.layer5.conv2d_list.{i}.weight"] = torch.zeros(21, 2048, 3, 3)
    path = tmp_path / "DeepLab_init.pth"
    torch.save(state, path)
    model = DeepLabV2("resnet50", 19)
    report = load_pretrained(model, path)
    assert report.format == "deeplab" and report.normalization == "caffe"
    assert sorted(report.unmatched) == [f"Scale.layer5.conv2d_list.{i}.weight" for i in range(4)]
    assert torch.equal(model.backbone.conv1.weight, source["conv1.weight"])
    # the same classifier with 19 classes lands in the main head
    for i in range(4):
        state[f"Scale.layer5.conv2d_list.{i}.weight"] = torch.full((19, 2048, 3, 3), float(i))
    torch.save(state, path)
    assert load_pretrained(model, path).unmatched == []
    assert float(model.head.convs[3].weight[0, 0, 0, 0]) == 3.0


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
    with pytest.raises(UserError, match="cannot load weights"):
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
