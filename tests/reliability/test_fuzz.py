"""Property-based fuzzing (hypothesis): whatever the bytes of a PNG or the contents of a config,
the only outcomes are a loaded value or the documented one-line UserError. Any other exception
fails the test. The example counts are fixed so the README can say how many cases ran."""
import io
import struct
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pit_engine.config import Config
from pit_engine.data.check import check_dataset
from pit_engine.data.datasets import GTA5
from pit_engine.data.io import read_id_label, read_rgb, read_synthia_label
from pit_engine.errors import UserError

PNG_CASES = 300
CHECK_CASES = 60
CONFIG_CASES = 400
TOML_CASES = 300
# derandomized: CI runs the same cases every time (a failure reproduces); no example database
FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

MODES = ["RGB", "RGBA", "L", "LA", "P", "1", "I;16", "RGB16"]  # RGB16: SYNTHIA-style 16-bit colour


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _with_size(data: bytes, width: int, height: int) -> bytes:
    """A PNG whose header claims another size (its IHDR CRC recomputed, so only the size lies)."""
    ihdr = bytearray(data[12:29])  # chunk type + 13 data bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    return data[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF) + data[33:]


@st.composite
def png_bytes(draw):
    w, h = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    mode = draw(st.sampled_from(MODES))
    array = np.frombuffer(draw(st.binary(min_size=w * h * 4, max_size=w * h * 4)), np.uint8)
    if mode in ("RGB", "RGBA"):
        image = Image.fromarray(array[: w * h * len(mode)].reshape(h, w, len(mode)), mode)
    elif mode == "LA":
        image = Image.fromarray(array[: w * h * 2].reshape(h, w, 2), "LA")
    elif mode == "I;16":
        image = Image.fromarray(array[: w * h * 2].view(np.uint16).reshape(h, w))
    elif mode == "RGB16":
        image = None
    else:
        image = Image.fromarray(array[: w * h].reshape(h, w), "L").convert(mode)
    if image is None:  # Pillow cannot write 16-bit colour PNGs; OpenCV can
        wide = np.frombuffer(draw(st.binary(min_size=w * h * 6, max_size=w * h * 6)), np.uint16).reshape(h, w, 3)
        data = cv2.imencode(".png", wide)[1].tobytes()
        image = Image.fromarray(array[: w * h * 3].reshape(h, w, 3), "RGB")  # for the JPEG variant
    else:
        data = _png(image)
    damage = draw(st.sampled_from(["none", "truncate", "flip", "empty", "random", "huge", "not_png"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "flip":
        data = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        data = bytes(data)
    elif damage == "empty":
        data = b""
    elif damage == "random":
        data = draw(st.binary(max_size=300))
    elif damage == "huge":
        data = _with_size(data, draw(st.integers(20000, 2 ** 31 - 1)), draw(st.integers(20000, 2 ** 31 - 1)))
    elif damage == "not_png":
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="JPEG")
        data = buf.getvalue()
    return data


def _outcome(read, path):
    try:
        return read(path)
    except UserError as exc:
        assert exc.line().startswith("error: ") and "\n" not in exc.line()
        return None


@settings(FUZZ, max_examples=PNG_CASES)
@given(data=png_bytes())
def test_readers_load_or_refuse_in_one_line(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frame.png"
        path.write_bytes(data)
        rgb = _outcome(read_rgb, path)
        if rgb is not None:
            assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        ids = _outcome(read_id_label, path)
        if ids is not None:
            assert ids.dtype == np.uint8 and ids.ndim == 2
        synthia = _outcome(read_synthia_label, path)
        if synthia is not None:
            assert synthia.ndim == 2


@settings(FUZZ, max_examples=CHECK_CASES)
@given(image=png_bytes(), label=png_bytes())
def test_data_check_and_loader_report_problems(image, label):
    """A GTA5 folder holding one good pair and one fuzzed pair: `pit data check` reports, and the
    data set loads the pair or raises the one-line error."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        (root / "labels").mkdir()
        good = np.zeros((16, 24, 3), np.uint8)
        Image.fromarray(good).save(root / "images" / "00001.png")
        Image.fromarray(np.full((16, 24), 7, np.uint8)).save(root / "labels" / "00001.png")
        (root / "images" / "00002.png").write_bytes(image)
        (root / "labels" / "00002.png").write_bytes(label)
        report = check_dataset("gta5", root, workers=1)
        assert report.frames == 2
        for problem in report.problems:
            assert "\n" not in problem.error().line()
        data = GTA5(root)
        for i in range(len(data)):
            try:
                img, lab = data.load(i)
                assert img.dtype == np.uint8 and lab.shape == img.shape[:2]
            except UserError as exc:
                assert "\n" not in exc.line()


SECTIONS = ["data", "model", "method", "train", "eval"]
KNOWN = {s: list(getattr(Config(), s).__dataclass_fields__) for s in SECTIONS}
values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10 ** 12, 10 ** 12), st.floats(allow_nan=True),
                                st.text(max_size=12)),
                      lambda inner: st.one_of(st.lists(inner, max_size=3),
                                              st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)


@st.composite
def raw_configs(draw):
    """Mostly-right configs with a few wrong keys, types and values."""
    raw = Config().to_dict()
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from(SECTIONS + ["extra", "Data"]))
        key = draw(st.one_of(st.sampled_from(KNOWN.get(section, ["x"])), st.text(min_size=1, max_size=10)))
        what = draw(st.sampled_from(["value", "drop_section", "section_not_table"]))
        if what == "value":
            raw.setdefault(section, {}) if isinstance(raw.get(section, {}), dict) else None
            if isinstance(raw.get(section), dict):
                raw[section][key] = draw(values)
        elif what == "drop_section":
            raw.pop(section, None)
        else:
            raw[section] = draw(values)
    return raw


@settings(FUZZ, max_examples=CONFIG_CASES)
@given(raw=raw_configs())
def test_config_dicts_load_or_refuse_in_one_line(raw):
    try:
        config = Config.from_dict(raw, "fuzz")
    except UserError as exc:
        assert exc.line().startswith("error: ") and "\n" not in exc.line()
        return
    Config.from_dict(config.to_dict(), "round trip")  # what loads, saves and loads again


@settings(FUZZ, max_examples=TOML_CASES)
@given(text=st.one_of(st.text(max_size=200),
                      st.builds(lambda s, k, v: f"[{s}]\n{k} = {v}\n", st.sampled_from(SECTIONS + ["trian"]),
                                st.sampled_from(sum(KNOWN.values(), []) + ["lr", "backbon"]),
                                st.sampled_from(["1", "-1", "0.5", "1e400", "nan", "inf", "true", '"x"', "[1, 2]",
                                                 "[]", "{a = 1}", '"cuda:99"', '"auto"', "2026-11-26"]))))
def test_toml_files_load_or_refuse_in_one_line(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.toml"
        path.write_text(text)
        try:
            Config.load(path)
        except UserError as exc:
            assert exc.line().startswith("error: ") and "\n" not in exc.line()
