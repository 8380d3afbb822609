import numpy as np

from pit_engine import classes as C


def test_cityscapes_table_maps_the_19_ids_and_ignores_the_rest():
    ids = np.arange(256)
    train = C.labelids_to_trainids(ids)
    assert sorted(train[train != 255].tolist()) == list(range(19))
    assert train[7] == 0 and train[26] == 13 and train[33] == 18
    for unused in (0, 1, 6, 9, 10, 14, 15, 16, 18, 29, 30, 34, 200):
        assert train[unused] == C.IGNORE


def test_inverse_tables_round_trip():
    t = np.arange(19, dtype=np.uint8)
    assert np.array_equal(C.labelids_to_trainids(C.TRAINID_TO_LABELID_LUT[t]), t)
    assert np.array_equal(C.synthia_to_trainids(C.TRAINID_TO_SYNTHIA_LUT[t].astype(np.uint16)), t)


def test_synthia_table_and_subsets():
    assert C.synthia_to_trainids(np.array([3, 4, 2, 21, 1, 10, 8, 0, 13, 22], np.uint16)).tolist() == \
        [0, 1, 2, 3, 10, 11, 13, 255, 255, 255]
    assert len(C.SYNTHIA_16) == 16 and len(C.SYNTHIA_13) == 13
    assert not {9, 14, 16} & set(C.SYNTHIA_16)  # terrain, truck, train never occur in SYNTHIA
    assert set(C.SYNTHIA_16) - set(C.SYNTHIA_13) == {3, 4, 5}  # wall, fence, pole
    assert "mIoU19" not in C.EVAL_SUBSETS["synthia"]


def test_colours_are_the_standard_ones():
    assert C.CITYSCAPES_COLOURS.shape == (19, 3)
    assert tuple(C.CITYSCAPES_COLOURS[C.CITYSCAPES_CLASSES.index("car")]) == (0, 0, 142)
    rgb = C.colourize(np.array([[0, 255]], np.uint8))
    assert rgb[0, 0].tolist() == [128, 64, 128] and rgb[0, 1].tolist() == [0, 0, 0]
    # the label-id palette agrees with the trainId colours for every evaluated id
    for label_id, train_id in C.CITYSCAPES_ID_TO_TRAINID.items():
        assert np.array_equal(C.LABELID_COLOURS[label_id], C.CITYSCAPES_COLOURS[train_id])
