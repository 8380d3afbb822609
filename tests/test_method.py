import numpy as np
import pytest
import torch

from pit_engine import pit_ops as M
from pit_engine.methods import adversarial_loss


def test_category_vector_counts_valid_pixels():
    labels = torch.tensor([[[0, 0, 1, 255], [255, 255, 255, 2]]])
    assert M.category_vector(labels, 4).tolist() == [[1, 1, 1, 0]]
    assert M.category_vector(labels, 4, min_pixels=2).tolist() == [[1, 0, 0, 0]]


def test_pivot_state_thresholds():
    q = torch.tensor([0.05, 0.3, 0.6, 0.1, 0.5])
    assert M.pivot_state(q, 0.1, 0.5).tolist() == [M.ABSENT, M.UNSURE, M.PRESENT, M.UNSURE, M.UNSURE]


def test_gwrp_spans_max_to_mean():
    p = torch.rand(2, 3, 8, 8)
    flat = p.flatten(2)
    assert torch.allclose(M.gwrp(p, 1e-9, topk=False), flat.amax(2), atol=1e-6)
    assert torch.allclose(M.gwrp(p, 1.0, topk=False), flat.mean(2), atol=1e-6)
    mid = M.gwrp(p, 0.9, topk=False)
    assert (mid < flat.amax(2)).all() and (mid > flat.mean(2)).all()


@pytest.mark.parametrize("decay", [0.9, 0.99, 0.996])
def test_gwrp_topk_matches_the_full_sort(decay):
    p = torch.rand(2, 19, 64, 128).softmax(1)
    full = M.gwrp(p, decay, topk=False)
    fast = M.gwrp(p, decay, topk=True)
    assert M.gwrp_support(decay) < 64 * 128  # really a top-k, not a disguised full sort
    assert torch.allclose(fast, full, atol=1e-3)
    loss = lambda pooled: M.image_level_loss(p, torch.tensor([[1, 0] * 9 + [-1]] * 2), decay, pooled=pooled)  # noqa
    assert abs(float(loss(full)) - float(loss(fast))) < 1e-3


def test_image_level_loss_expands_present_and_suppresses_absent():
    p = torch.zeros(1, 3, 4, 4)
    p[:, 0] = 1.0  # class 0 everywhere
    v_right = torch.tensor([[1, 0, -1]])
    v_wrong = torch.tensor([[0, 1, -1]])
    good = M.image_level_loss(p, v_right, 0.9)
    bad = M.image_level_loss(p, v_wrong, 0.9)
    assert float(good) < 1e-3 and float(bad) > 5
    # an unsure class is skipped: whatever its probability, the loss does not change
    p2 = p.clone()
    p2[:, 2], p2[:, 0] = 0.5, 0.5
    assert torch.isclose(M.image_level_loss(p2, torch.tensor([[-1, 0, -1]]), 0.9), torch.tensor(0.0), atol=1e-4)


def _probs(cls_map, conf_map, num_classes=3):
    """B=1 probabilities whose arg-max and confidence are given per pixel."""
    cls_map, conf_map = torch.tensor(cls_map), torch.tensor(conf_map, dtype=torch.float32)
    p = torch.full((num_classes, *cls_map.shape), 0.0)
    rest = (1 - conf_map) / (num_classes - 1)
    for c in range(num_classes):
        p[c] = torch.where(cls_map == c, conf_map, rest)
    return p[None]


@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_region_growing_keeps_only_seeded_regions(backend):
    cls = [[1, 1, 0, 1, 1],
           [1, 1, 0, 1, 1],
           [0, 0, 0, 0, 0]]
    conf = [[0.95, 0.8, 0.8, 0.8, 0.8],
            [0.8, 0.75, 0.8, 0.8, 0.8],
            [0.8, 0.8, 0.6, 0.8, 0.8]]
    state = torch.tensor([[M.PRESENT, M.PRESENT, M.UNSURE]])
    labels, seeds = M.expand_regions(_probs(cls, conf), state, 0.9, 0.7, backend=backend)
    assert seeds[0].sum() == 1 and seeds[0, 0, 0]
    expect = [[1, 1, 255, 255, 255],  # the right-hand class-1 blob has no seed; class 0 has none either
              [1, 1, 255, 255, 255],
              [255, 255, 255, 255, 255]]
    assert labels[0].tolist() == expect


@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_region_growing_uses_8_neighbours_and_renormalises_absent_classes(backend):
    cls = [[2, 0, 0],
           [0, 2, 0],
           [0, 0, 2]]
    conf = [[0.95, 0.5, 0.5], [0.5, 0.75, 0.5], [0.5, 0.5, 0.75]]
    # class 2 grows along the diagonal: diagonal pixels are 8-neighbours, not 4-neighbours.
    # Class 1 is absent: zeroed and renormalised away; class 0 is unsure: it cannot seed.
    state = torch.tensor([[M.UNSURE, M.ABSENT, M.PRESENT]])
    labels, _ = M.expand_regions(_probs(cls, conf), state, 0.9, 0.7, backend=backend)
    assert labels[0].tolist() == [[2, 255, 255], [255, 2, 255], [255, 255, 2]]
    # if class 2 is absent, nothing may be labelled 2
    labels, seeds = M.expand_regions(_probs(cls, conf), torch.tensor([[M.PRESENT, M.PRESENT, M.ABSENT]]), 0.9, 0.7,
                                     backend=backend)
    assert not (labels == 2).any()


def _blobby(rng, b, h, w, classes, cell):
    """Random class maps made of blocks with ragged edges, like a segmenter's arg-max."""
    coarse = rng.integers(0, classes, (b, -(-h // cell) + 1, -(-w // cell) + 1))
    cls = np.repeat(np.repeat(coarse, cell, 1), cell, 2)[:, :h, :w]
    noise = rng.random((b, h, w)) < 0.05
    return np.where(noise, rng.integers(0, classes, (b, h, w)), cls)


@pytest.mark.parametrize("seed", range(12))
def test_torch_region_growing_equals_opencv(seed):
    rng = np.random.default_rng(seed)
    b, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 70)), int(rng.integers(1, 90))
    cls = torch.from_numpy(_blobby(rng, b, h, w, int(rng.integers(1, 6)), int(rng.integers(1, 12))))
    grow = torch.from_numpy(rng.random((b, h, w)) < rng.uniform(0.3, 0.95))
    seeds = grow & torch.from_numpy(rng.random((b, h, w)) < rng.uniform(0.0, 0.05))
    expect = M.grow_seeds_opencv(cls, grow, seeds)
    assert torch.equal(M.grow_seeds_torch(cls, grow, seeds), expect)
    assert not (expect & ~grow).any() and (expect | ~seeds).all()  # grown pixels are in `grow`, seeds grown


def test_torch_region_growing_follows_a_long_serpentine():
    # one 1-pixel-wide path that turns at every wall, ~n*n/2 pixels long: the worst case for
    # label propagation (here each round crosses one turn per pointer jump)
    n = 41
    path = np.zeros((n, n), bool)
    path[::2] = True
    path[1::4, -1] = True
    path[3::4, 0] = True
    cls = torch.zeros(1, n, n, dtype=torch.long)
    grow = torch.from_numpy(path)[None]
    seeds = torch.zeros_like(grow)
    seeds[0, 0, 0] = True
    expect = M.grow_seeds_opencv(cls, grow, seeds)
    assert int(expect.sum()) == int(path.sum())  # the seed reaches the far end
    assert torch.equal(M.grow_seeds_torch(cls, grow, seeds), expect)


def test_torch_region_growing_on_a_real_frame(real_frame):
    # the shipped Cityscapes labels as an arg-max map, confidence high away from class borders
    labels = torch.from_numpy(real_frame[2].astype(np.int64))[None]
    cls = torch.where(labels == 255, 0, labels)
    p = torch.nn.functional.one_hot(cls, 19).permute(0, 3, 1, 2).float()
    p = torch.nn.functional.avg_pool2d(p, 5, 1, 2, count_include_pad=False) + 0.02 * torch.rand(p.shape)
    p = p / p.sum(1, keepdim=True)
    state = torch.full((1, 19), M.PRESENT)
    state[0, 5] = M.ABSENT
    a, seeds_a = M.expand_regions(p, state, backend="opencv")
    b, seeds_b = M.expand_regions(p, state, backend="torch")
    assert torch.equal(seeds_a, seeds_b) and torch.equal(a, b)
    assert 0.3 < float((a != 255).float().mean()) < 1.0


def test_class_balanced_seeds_take_a_ratio_of_each_class():
    torch.manual_seed(0)
    p = torch.rand(1, 3, 10, 10).softmax(1)
    state = torch.tensor([[M.PRESENT] * 3])
    _, seeds = M.expand_regions(p, state, seed_ratio=0.2, grow_threshold=1.0)
    cls = p.argmax(1)[0]
    for c in range(3):
        n = int((cls == c).sum())
        assert int(seeds[0][cls == c].sum()) == max(1, int(n * 0.2))


def test_adversarial_loss_targets():
    logits = torch.tensor([10.0, 10.0])
    assert float(adversarial_loss(logits, True)) < 1e-3 and float(adversarial_loss(logits, False)) > 5
    assert np.isfinite(float(adversarial_loss(torch.zeros(3), True)))
