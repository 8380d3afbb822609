import numpy as np

from pit_engine.classes import NUM_CLASSES
from pit_engine.cli import main
from pit_engine.data.datasets import GTA5, Cityscapes
from pit_engine.data.demo import SOURCE, TARGET, make_frame


def test_frames_are_deterministic_per_seed_and_index():
    a = make_frame(3, TARGET, 7)
    assert all(np.array_equal(x, y) for x, y in zip(a, make_frame(3, TARGET, 7)))
    assert not np.array_equal(a[0], make_frame(4, TARGET, 7)[0])
    assert not np.array_equal(a[0], make_frame(3, TARGET, 8)[0])


def test_make_demo_writes_both_layouts_and_they_check_clean(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["data", "make-demo", "--out", str(out), "--source", "6", "--train", "4", "--val", "3"]) == 0
    assert len(GTA5(out / "source")) == 6
    assert len(Cityscapes(out / "target", "train")) == 4 and len(Cityscapes(out / "target", "val")) == 3
    for args in (["gta5", str(out / "source")], ["cityscapes", str(out / "target"), "--split", "val"]):
        assert main(["data", "check", *args]) == 0
        assert "problems: none" in capsys.readouterr().out
    # never writes into a folder that holds something, unless told to
    assert main(["data", "make-demo", "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err


def presence_and_colours(look, n=60):
    present = np.zeros(NUM_CLASSES)
    colour_sum = np.zeros((NUM_CLASSES, 3))
    pixels = np.zeros(NUM_CLASSES)
    for i in range(n):
        image, label = make_frame(0, look, i)
        for c in np.unique(label[label < NUM_CLASSES]):
            present[c] += 1
            colour_sum[c] += image[label == c].sum(0)
            pixels[c] += (label == c).sum()
    return present / n, colour_sum / np.maximum(pixels, 1)[:, None]


def test_domains_share_classes_but_not_colours():
    src_presence, src_colour = presence_and_colours(SOURCE)
    tgt_presence, tgt_colour = presence_and_colours(TARGET)
    # the street classes appear in most frames of both domains: image-level presence transfers
    for c in (0, 1, 2, 5, 10, 13):
        assert src_presence[c] > 0.5 and tgt_presence[c] > 0.5
    assert (src_presence > 0).sum() >= 17 and (tgt_presence > 0).sum() >= 17
    # ... with other frequencies (more people in the target)
    assert tgt_presence[11] > src_presence[11]
    # ... while the pixels look different: mean colour of road, sidewalk, vegetation, sky
    for c in (0, 1, 8, 10):
        assert np.abs(src_colour[c] - tgt_colour[c]).sum() > 60
    # the target carries an ignored ego-vehicle bonnet, as Cityscapes does
    assert (make_frame(0, TARGET, 0)[1][-1] == 255).any()
