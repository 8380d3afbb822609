import numpy as np
import pytest
import torch

from pit_engine.data.transforms import NORMALIZATIONS, Transform, resize
from pit_engine.errors import UserError


def frame():
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20] = (255, 0, 0)
    label = np.zeros((20, 40), np.uint8)
    label[:, 20:] = 13
    label[0, 0] = 255
    return image, label


def test_resize_keeps_label_values_and_blends_the_image():
    image, label = frame()
    img2, lab2 = resize(image, label, (30, 15))
    assert img2.shape == (15, 30, 3) and lab2.shape == (15, 30)
    assert set(np.unique(lab2)) <= {0, 13, 255}  # nearest: never an in-between id
    assert len(np.unique(img2[..., 0])) > 2  # bilinear: the edge is blended


def test_crop_and_flip_move_image_and_label_together():
    torch.manual_seed(0)
    image, label = frame()
    t = Transform(crop=(16, 8), flip=True, normalization="imagenet")
    for _ in range(20):
        x, y = t(image, label)
        assert x.shape == (3, 8, 16) and y.shape == (8, 16)
        red = x[0] > 0  # red pixels are exactly the class-0 pixels (bar the one ignore pixel)
        assert torch.equal(red[y != 255], (y == 0)[y != 255])


def test_crop_larger_than_frame_pads_with_ignore():
    image, label = frame()
    x, y = Transform(crop=(50, 30))(image, label)
    assert x.shape == (3, 30, 50) and (y == 255).sum() >= 50 * 30 - 40 * 20


def test_normalisations_invert_and_caffe_is_bgr():
    image, _ = frame()
    for norm in NORMALIZATIONS.values():
        assert np.array_equal(norm.invert(norm.apply(image)), image)
    caffe = NORMALIZATIONS["caffe"].apply(image)
    assert caffe[2, 0, 0] == pytest.approx(255 - 122.679, abs=1e-3)  # red sits in the last channel
    imagenet = NORMALIZATIONS["imagenet"].apply(image)
    assert imagenet[0, 0, 0] == pytest.approx((1 - 0.485) / 0.229, abs=1e-3)
    with pytest.raises(UserError, match="unknown normalisation"):
        Transform(normalization="bgr")
