import pytest

from pit_engine.config import Config
from pit_engine.errors import UserError
from pit_resources import resource

PRESETS = ["demo.toml", "gta5_to_cityscapes.toml", "synthia_to_cityscapes.toml"]


@pytest.mark.parametrize("name", PRESETS)
def test_shipped_presets_load(name, tmp_path):
    path = tmp_path / name
    path.write_text(resource(name).read_text())
    config = Config.load(path)
    assert Config.from_dict(__import__("tomllib").loads(config.to_toml())) == config  # round trip


def test_paper_protocol_presets():
    import tomllib

    gta = Config.from_dict(tomllib.loads(resource("gta5_to_cityscapes.toml").read_text()))
    assert gta.model.backbone == "resnet101" and gta.train.lr == 2.5e-4 and gta.train.iterations == 120000
    assert gta.data.source_size == [1280, 720] and gta.data.target_size == [1024, 512]
    syn = Config.from_dict(tomllib.loads(resource("synthia_to_cityscapes.toml").read_text()))
    assert syn.data.source_kind == "synthia" and syn.data.source_size == [1280, 760]


def write(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_unknown_key_is_refused_by_name_with_a_suggestion(tmp_path):
    with pytest.raises(UserError) as err:
        Config.load(write(tmp_path, "[train]\nitertions = 5\n"))
    assert "unknown key 'train.itertions'" in err.value.line() and "did you mean 'train.iterations'" in err.value.line()
    with pytest.raises(UserError, match="unknown key 'trian'"):
        Config.load(write(tmp_path, "[trian]\niterations = 5\n"))


def test_wrong_types_are_refused_by_name(tmp_path):
    with pytest.raises(UserError, match="'train.iterations' must be int, got str"):
        Config.load(write(tmp_path, "[train]\niterations = \"many\"\n"))
    with pytest.raises(UserError, match="'method.pit.pixel_level' must be bool"):
        Config.load(write(tmp_path, "[method.pit]\npixel_level = 1\n"))
    with pytest.raises(UserError, match="'data.source_size' must be a list of int"):
        Config.load(write(tmp_path, "[data]\nsource_size = 1280\n"))
    assert Config.load(write(tmp_path, "[train]\nlr = 1\n")).train.lr == 1.0  # an int is a fine float


def test_values_without_meaning_and_bad_toml(tmp_path):
    with pytest.raises(UserError, match="'model.backbone' is 'resnet152'"):
        Config.load(write(tmp_path, "[model]\nbackbone = \"resnet152\"\n"))
    with pytest.raises(UserError, match="tau_lo <= tau_hi"):
        Config.load(write(tmp_path, "[method.pit]\ntau_lo = 0.8\n"))
    with pytest.raises(UserError, match="'method.name' is 'dann'.*use one of: source_only, adaptsegnet"):
        Config.load(write(tmp_path, "[method]\nname = \"dann\"\n"))
    with pytest.raises(UserError, match="round_every' must be at least 1"):
        Config.load(write(tmp_path, "[method.cbst]\nround_every = 0\n"))
    with pytest.raises(UserError, match="not valid TOML"):
        Config.load(write(tmp_path, "[train\n"))
    with pytest.raises(UserError, match="config file not found"):
        Config.load(tmp_path / "nope.toml")


def test_overrides(tmp_path):
    path = write(tmp_path, "[train]\niterations = 5\n")
    config = Config.load(path, ["train.iterations=7", "train.lr=1e-3", "data.source_root=/data/gta5",
                                "method.name=cbst", "method.pit.pixel_level=false", "method.cbst.lambda_st=0.5"])
    assert config.train.iterations == 7 and config.train.lr == 1e-3 and not config.notes
    assert config.data.source_root == "/data/gta5" and config.method.pit.pixel_level is False
    assert config.method.name == "cbst" and config.method_settings.lambda_st == 0.5
    with pytest.raises(UserError, match="unknown key 'method.tau_hi'.*it is method.pit.tau_hi"):
        Config.load(path, ["method.name=pit", "method.tau_hi=0.3"])  # a flat key beside the new form
    with pytest.raises(UserError, match="not section.key=value"):
        Config.load(path, ["iterations=7"])
    with pytest.raises(UserError, match="unknown key 'train.iters'"):
        Config.load(path, ["train.iters=7"])


def test_a_flat_method_table_of_earlier_versions_loads_with_a_note(tmp_path):
    pit = Config.load(write(tmp_path, "[method]\ntau_hi = 0.4\nwarmup = 7\noutput_adv = true\n"))
    assert pit.method.name == "pit" and pit.method.pit.tau_hi == 0.4 and pit.method.pit.output_adv
    assert pit.train.warmup == 7  # the warm-up is the trainer's schedule now
    assert len(pit.notes) == 1 and "flat [method] table" in pit.notes[0] and "\n" not in pit.notes[0]
    off = "[method]\npivot = false\nalign = false\nimage_level = false\npixel_level = false\n"
    assert Config.load(write(tmp_path, off)).method.name == "source_only"
    assert Config.load(write(tmp_path, "[method]\nname = \"minent\"\n")).notes == []
