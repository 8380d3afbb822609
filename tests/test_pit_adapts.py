"""PIT's stabilised parts: D's scale, the schedule's stages, the teacher, the pivot quality of q,
and the health curves."""
import json

import pytest
import torch

from pit_engine import pit_ops as P
from pit_engine.config import Config
from pit_engine.errors import UserError
from pit_engine.events import Health, Step
from pit_engine.health import _count_of, _hits, _ratio
from pit_engine.methods.pit import PIT, PITConfig
from pit_engine.models import build_model
from pit_engine.train import Trainer

from conftest import tiny_config

STRIDE = 8
PRESET_SIZES = [(1024, 512), (1280, 720), (1280, 760), (128, 64)]  # target, GTA5, SYNTHIA, the demo


def _blob_map(size, blob_px, p=0.95, background=0.01):
    """Probabilities on the output map of an input of `size`: one class at `p` on a square blob
    of `blob_px` input pixels, `background` elsewhere."""
    w, h = size[0] // STRIDE, size[1] // STRIDE
    m = torch.full((1, 1, h, w), background)
    cells = max(1, round(blob_px / STRIDE))
    m[..., :cells, :cells] = p
    return m


@pytest.mark.parametrize("size", PRESET_SIZES[:3])
def test_a_small_confident_blob_pools_well_under_tau_hi_at_the_presets_sizes(size):
    decay = PIT(PITConfig()).decay((size[0] // STRIDE) * (size[1] // STRIDE))
    pooled = float(P.gwrp(_blob_map(size, 16), decay))
    assert pooled < 0.1 < PITConfig().tau_hi  # a 16 x 16 blob at 0.95 is not "present" by pooling


@pytest.mark.parametrize("size", PRESET_SIZES)
def test_the_pooling_is_neither_the_max_nor_the_mean(size):
    n = (size[0] // STRIDE) * (size[1] // STRIDE)
    m = _blob_map(size, 0)
    m.flatten()[torch.randperm(n)[: n // 10]] = 0.95  # a class on 10 % of the map
    pooled = float(P.gwrp(m, PIT(PITConfig()).decay(n)))
    assert float(m.mean()) + 0.05 < pooled < float(m.max()) - 0.05


def test_the_same_fraction_pools_the_same_at_the_demo_and_the_target_size():
    """The support is a fraction of the output map: a class on the same share of the frame pools
    alike at 128 x 64 and at 1024 x 512 (a fixed decay made the larger map max pooling)."""
    pooled = []
    for w, h in ((128, 64), (1024, 512)):
        m = torch.full((1, 1, h // STRIDE, w // STRIDE), 0.02)
        m[..., : h // STRIDE // 4, :] = 0.9  # the top quarter of the frame
        pooled.append(float(P.gwrp(m, PIT(PITConfig()).decay(m[0, 0].numel()))))
    assert pooled[0] == pytest.approx(pooled[1], abs=0.02)
    fixed = [float(P.gwrp(torch.nn.functional.interpolate(_blob_map((w, h), 16), size=(h, w)), 0.996))
             for w, h in ((1024, 512),)]
    assert fixed[0] > 0.5  # the old way: d = 0.996 on the upsampled map calls the blob present


def test_support_decay_and_per_class_pooling():
    assert P.support_decay(0.15, 100) == pytest.approx(1 - 1 / 15)
    assert P.support_decay(0.001, 100) == 0.0  # a pixel or less: max pooling
    p = torch.rand(2, 3, 8, 16)
    shares = torch.tensor([0.5, 0.05, 0.2])
    per_class = P.gwrp(p, P.support_decay(shares, 128))
    for c in range(3):  # a decay per class pools each class as its own decay would
        alone = P.gwrp(p[:, c:c + 1], float(P.support_decay(float(shares[c]), 128)), topk=False)
        assert torch.allclose(per_class[:, c], alone[:, 0], atol=1e-5)


def test_per_class_supports_come_from_the_source_pixel_shares():
    method = PIT(PITConfig(gwrp_per_class=True, gwrp_support=0.15))
    method.attach(build_model("small", 4, [6, 12], True)[0])
    labels = torch.zeros(2, 10, 10, dtype=torch.long)  # class 0 everywhere ...
    labels[0, :2, :5] = 1  # ... class 1 on 10 % of frame 0 only, class 2 on 30 % of frame 1
    labels[1, :3] = 2
    method._count_source_shares(labels)
    decay = method.decay(200)
    want = P.support_decay(torch.tensor([(0.9 + 0.7) / 2, 0.1, 0.3, 0.15]), 200)  # class 3 unseen: shared
    assert torch.allclose(decay, want)


def test_retired_gwrp_decay_says_what_replaced_it():
    with pytest.raises(UserError) as err:
        Config.from_dict({"method": {"name": "pit", "pit": {"gwrp_decay": 0.99}}}, "cfg.toml")
    assert "gwrp_support" in err.value.line() and "\n" not in err.value.line()


def test_the_schedule_warm_up_then_alignment_then_expansion(tiny_demo, tmp_path):
    steps = []
    config = tiny_config(tiny_demo, pit={"align_steps": 2}, train={"iterations": 6, "warmup": 2})
    assert Trainer(config, tmp_path / "run", log=lambda *_: None).run(
        lambda e: steps.append(set(e.losses)) if isinstance(e, Step) else None).reason == "done"
    warmup, align, expand = steps[:2], steps[2:4], steps[4:]
    assert all(s == {"seg", "seg_aux", "cls", "img_src"} for s in warmup)
    assert all("align" in s and not {"img_tgt", "pix"} & s for s in align)  # stage 2: the pivot aligned alone
    assert all({"align", "img_tgt", "pix"} <= s for s in expand)


def _method(**settings):
    method = PIT(PITConfig(**settings))
    method.attach(build_model("small", 4, [6, 12], True)[0])
    return method


def test_the_mean_teacher_is_an_ema_with_a_ramped_momentum():
    method = _method(teacher="mean", teacher_momentum=0.9)
    model = method.model
    method.update_teacher(0)  # the first: a copy
    teacher_w = next(method.teacher.parameters()).clone()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    method.update_teacher(1)  # ramp: momentum min(1 - 1/2, 0.9) = 0.5
    student_w = next(model.parameters())
    assert torch.allclose(next(method.teacher.parameters()), 0.5 * teacher_w + 0.5 * student_w)
    before = next(method.teacher.parameters()).clone()
    method.update_teacher(100)  # later: the configured momentum
    assert torch.allclose(next(method.teacher.parameters()), 0.9 * before + 0.1 * student_w)


def test_a_snapshot_teacher_is_refreshed_every_k_steps():
    method = _method(teacher="snapshot", refresh_every=3)
    method.update_teacher(0)
    first = method.teacher
    for step in (1, 2):
        method.update_teacher(step)
        assert method.teacher is first  # held between refreshes
    method.update_teacher(3)
    assert method.teacher is not first


def test_confidence_weighting_discounts_unsure_pseudo_labels():
    method = _method(confidence_weighted=True, seed_ratio=0.0, seed_threshold=0.5, grow_threshold=0.5)
    logits = torch.zeros(1, 4, 4, 4, requires_grad=True)
    prob = torch.full((1, 4, 4, 4), 0.1)
    prob[:, 0, :2], prob[:, 1, 2:] = 0.7, 0.7  # two classes, both at 0.7
    state = torch.tensor([[1, 1, 0, 0]])
    weighted = method.pixel_loss(logits, prob, state)
    method.config.confidence_weighted = False
    plain = method.pixel_loss(logits, prob, state)
    assert weighted.item() == pytest.approx(0.7 * plain.item(), rel=1e-4)


def test_pivot_quality_is_of_q_itself_not_of_the_refreshed_vector():
    """A confident blob of the segmenter pools high; the refresh calls the class present even
    where the classifier's q says absent. The two verdicts are told apart."""
    method = _method(gwrp_support=0.01, tau_lo=0.1, tau_hi=0.5)

    class Out:
        pivot = torch.tensor([[5.0, -5.0, -5.0, -5.0]])  # q: class 0 present, the rest absent
        logits = torch.full((1, 4, 8, 16), -5.0)
    Out.logits[:, 0] = 5.0
    Out.logits[:, 1, :2, :2] = 20.0  # a small confident blob of class 1
    verdicts = method.pivot_verdicts(Out)
    assert verdicts["q"].tolist() == [[1, 0, 0, 0]]
    assert verdicts["refreshed"][0, 1] == P.PRESENT


def test_eval_reports_the_quality_of_q_and_of_the_refreshed_vector(tiny_demo, tmp_path):
    from pit_engine.evaluate import evaluate_checkpoint

    assert Trainer(tiny_config(tiny_demo), tmp_path / "run", log=lambda *_: None).run().reason == "done"
    result = evaluate_checkpoint(tmp_path / "run", "cityscapes", tiny_demo / "target", "val").to_dict()
    for key in ("pivot_precision", "pivot_recall", "refreshed_precision", "refreshed_recall"):
        assert set(result[key]) >= {"road", "sky"}
    # the refreshed vector calls present at least what q does: its recall is never lower
    for c, r in result["pivot_recall"].items():
        if r is not None:
            assert result["refreshed_recall"][c] >= r


def test_health_counts_by_hand():
    truth = torch.tensor([[0, 0, 1, 1, 255]])
    pseudo = torch.tensor([[0, 1, 1, 255, 0]])
    hits = _hits(pseudo, truth, 3)
    assert hits.tolist() == [1, 1, 0]
    assert _ratio(hits, _count_of(pseudo, 3, where=truth != 255)) == [1.0, 0.5, None]  # precision
    assert _ratio(hits, _count_of(truth, 3)) == [0.5, 0.5, None]  # recall


@pytest.mark.parametrize("labelled", [True, False])
def test_health_curves_reach_the_metrics_and_the_events(labelled, tiny_demo, tmp_path):
    import shutil
    root = tiny_demo
    if not labelled:  # real target data without labels: only what needs none is measured
        root = tmp_path / "unlabelled"
        shutil.copytree(tiny_demo, root)
        shutil.rmtree(root / "target" / "gtFine" / "train")
    records = []
    config = tiny_config(root, pit={"align_steps": 1}, train={"iterations": 6, "health_every": 2, "health_frames": 4})
    assert Trainer(config, tmp_path / "run", log=lambda *_: None).run(
        lambda e: records.append(e.record) if isinstance(e, Health) else None).reason == "done"
    logged = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    health = [r for r in logged if r["kind"] == "health"]
    assert [r["iteration"] for r in health] == [2, 4, 6] and len(records) == 3
    last = health[-1]
    assert 0 <= last["pl_coverage"] <= 1 and set(last["q_present"]) >= {"road", "sky"}
    assert last["frames"] == 4
    if labelled:
        assert 0 <= last["mean_iou"] <= 1 and 0 <= last["mean_pl_precision"] <= 1
        assert "q_precision" in last and "refreshed_recall" in last
    else:
        assert "iou" not in last and "pl_precision" not in last and "q_precision" not in last


def test_make_demo_writes_a_labelled_test_split(tiny_demo):
    from pit_engine.data.datasets import Cityscapes

    test = Cityscapes(tiny_demo / "target", "test")
    assert len(test) == 4 and test.labelled
    val_names = {p.name for p in (tiny_demo / "target/leftImg8bit/val").rglob("*.png")}
    assert not val_names & {p.name for p in (tiny_demo / "target/leftImg8bit/test").rglob("*.png")}


def test_a_checkpoint_of_an_earlier_version_with_gwrp_decay_still_opens():
    from pit_engine.checkpoint import checkpoint_config

    flat = {"method": {"gwrp_decay": 0.99, "refresh_every": 1}}
    nested = {"method": {"name": "pit", "pit": {"gwrp_decay": 0.99}}}
    for raw in (flat, nested):
        assert checkpoint_config({"config": raw}, "old.pt").method.name == "pit"
    assert "gwrp_decay" in nested["method"]["pit"]  # the checkpoint's own record is left alone
