"""Published AdaptSegNet / ADVENT models, imported as runs that eval, export and the GUI open."""
import torch

from pit_engine.checkpoint import restore_model
from pit_engine.cli import main
from pit_engine.models import DeepLabV2


def _advent_like(path, classes=19, prefix=""):
    """A file with the keys and shapes of ADVENT's multi-level GTA5 -> Cityscapes model (ResNet-50
    here, to stay small): the Caffe-layout backbone, layer5 on layer3, layer6 on layer4."""
    torch.manual_seed(0)
    model = DeepLabV2("resnet50", 19, layout="deeplab", batchnorm="batch")
    state = {prefix + k[len("backbone."):]: v.clone() for k, v in model.state_dict().items() if k.startswith("backbone.")}
    for layer, cin in (("layer5", 1024), ("layer6", 2048)):
        for i in range(4):
            state[f"{prefix}{layer}.conv2d_list.{i}.weight"] = torch.randn(classes, cin, 3, 3) * 0.01
            state[f"{prefix}{layer}.conv2d_list.{i}.bias"] = torch.randn(classes)
    torch.save(state, path)
    return state


def test_an_advent_model_imports_and_evaluates_beside_our_runs(tiny_demo, tmp_path, capsys):
    state = _advent_like(tmp_path / "gta2cityscapes_advent.pth")
    run = tmp_path / "advent_published"
    assert main(["import", str(tmp_path / "gta2cityscapes_advent.pth"), "--out", str(run), "--backbone", "resnet50",
                 "--method", "advent", "--set", "eval.size=[64,32]"]) == 0
    assert "pit eval --checkpoint" in capsys.readouterr().out
    model, ckpt = restore_model(run)
    assert ckpt["normalization"] == "caffe" and ckpt["method"] == "advent" and ckpt["name"] == "gta2cityscapes_advent"
    assert ckpt["config"]["model"]["layout"] == "deeplab" and model.backbone.layer4[0].conv2.dilation == (4, 4)
    assert torch.equal(model.head.convs[2].weight, state["layer6.conv2d_list.2.weight"])
    assert torch.equal(model.aux_head.convs[2].bias, state["layer5.conv2d_list.2.bias"])
    assert "multi-level" in (run / "events.log").read_text()
    assert main(["eval", "--checkpoint", str(run), "--data", f"cityscapes:{tiny_demo / 'target'}:val",
                 "--device", "cpu", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "4 frame(s)" in out and "(mIoU19" in out and "pivot" not in out  # ADVENT has no pivot to report
    assert main(["import", str(tmp_path / "gta2cityscapes_advent.pth"), "--out", str(run),
                 "--backbone", "resnet50"]) == 2  # never over a run's checkpoints
    assert "already holds checkpoints" in capsys.readouterr().err


def test_what_is_not_a_trained_19_or_16_class_model_is_refused_in_one_line(tmp_path, capsys):
    _advent_like(tmp_path / "init.pth", prefix="Scale.")
    assert main(["import", str(tmp_path / "init.pth"), "--out", str(tmp_path / "a"), "--backbone", "resnet50"]) == 2
    assert "no trained DeepLab segmentation model" in capsys.readouterr().err
    _advent_like(tmp_path / "other.pth", classes=12)  # neither GTA5's 19 nor SYNTHIA's 16
    assert main(["import", str(tmp_path / "other.pth"), "--out", str(tmp_path / "b"), "--backbone", "resnet50"]) == 2
    err = capsys.readouterr().err
    assert "predicts 12 classes" in err and err.count("\n") == 1
    _advent_like(tmp_path / "r50.pth")
    assert main(["import", str(tmp_path / "r50.pth"), "--out", str(tmp_path / "c")]) == 2  # resnet101 expected
    assert "does not fill the resnet101 model" in capsys.readouterr().err


def test_the_preset_network_trains_from_the_init_file(tiny_demo, tmp_path):
    # deeplab layout, BatchNorm on batch statistics, weights from a file of the init file's keys
    from pit_engine.checkpoint import load_checkpoint
    from pit_engine.train import Trainer
    from tests.conftest import tiny_config

    state = _advent_like(tmp_path / "init.pth", prefix="Scale.")
    config = tiny_config(tiny_demo, "source_only", train={"iterations": 2, "warmup": 2, "batch_size": 1},
                         model={"backbone": "resnet50", "layout": "deeplab", "batchnorm": "batch",
                                "weights": str(tmp_path / "init.pth")})
    lines = []
    finished = Trainer(config, tmp_path / "run", log=lines.append).run()
    assert finished.reason == "done", finished.message
    assert any("deeplab format, expects caffe normalisation" in line for line in lines)
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["normalization"] == "caffe"
    # the stored statistics moved with the batches, as in the published code; the affine did not
    assert not torch.equal(ckpt["model"]["backbone.bn1.running_mean"], state["Scale.bn1.running_mean"])
    assert torch.equal(ckpt["model"]["backbone.bn1.weight"], state["Scale.bn1.weight"])
