"""Config: defaults round-trip through TOML, overrides, and clear messages for bad keys and values."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    load_config,
    resolve_config_path,
    to_toml,
    validate,
)


def test_defaults_are_edgeconnects() -> None:
    c = TrainConfig()
    assert c.optim.betas == [0.0, 0.9]
    assert (c.losses.l1, c.losses.feature_matching, c.losses.adversarial, c.losses.style, c.losses.perceptual,
            c.losses.tv) == (1.0, 10.0, 0.1, 250.0, 0.1, 0.0)
    assert c.model.edge.arguments == {"base_channels": 64, "residual_blocks": 8, "use_spectral_norm": True}


def test_toml_round_trip_with_odd_strings(tmp_path: Path) -> None:
    c = apply_overrides(TrainConfig(), ['run.command="inpaint-train --out \\"a b\\"\\\\x"', "optim.lr=3e-4",
                                        "data.edge_sigma_range=[1, 3]", "stage.name=joint",
                                        "model.edge.arguments.base_channels=16", "data.masks.rectangle=1"])
    path = tmp_path / "c.toml"
    path.write_text(to_toml(c), encoding="utf-8")
    back = load_config(path)
    assert back == c
    assert back.run.command == 'inpaint-train --out "a b"\\x'
    assert back.data.edge_sigma_range == [1.0, 3.0] and back.model.edge.arguments["residual_blocks"] == 8


@pytest.mark.parametrize(("override", "message"), [
    ("optim.bach_size=4", "unknown config key 'optim.bach_size' (did you mean 'optim.batch_size'?)"),
    ("schedul.log_every=4", "did you mean 'schedule'?"),
    ("model.edge.arguments.base_chanels=8", "did you mean 'model.edge.arguments.base_channels'?"),
    ("optim.lr=fast", "optim.lr: expected a number, got 'fast'"),
    ("optim.lr=-1", "optim.lr: must be more than zero, got -1.0"),
    ("stage.name=jiont", "stage.name: 'jiont' is not one of"),
    ("data.size=30", "data.size: must be a multiple of 4"),
    ("optim.betas=[0.5]", "optim.betas: expected two numbers"),
    ("data.masks.rectangle=-1", "data.masks.rectangle"),
    ("losses.low_band=-2", "losses.low_band: must be zero or more"),
    ("model.edge.arguments.residual_blocks=0", "model.edge.arguments.residual_blocks: expected a positive"),
    ("optim.amp=maybe", "optim.amp: 'maybe' is not one of auto, on, off"),
    ("data.size=20", "data.size: the PatchGAN discriminators need crops of at least 24 px"),
    ("internal.scale=[0.9, 0.5]", "internal.scale: expected [low, high] with 0 < low <= high <= 4"),
    ("internal.scale=[0.5]", "internal.scale: expected [low, high]"),
])
def test_bad_key_or_value_names_it(tmp_path: Path, override: str, message: str) -> None:
    base = apply_overrides(TrainConfig(), [f"data.train_dir='{tmp_path}'", f"run.out='{tmp_path / 'run'}'"])
    with pytest.raises(ConfigError) as err:
        validate(apply_overrides(base, [override]))
    assert message in str(err.value)


def test_missing_folders_and_files_are_named(tmp_path: Path) -> None:
    base = apply_overrides(TrainConfig(), [f"run.out='{tmp_path}'"])
    with pytest.raises(ConfigError, match=r"data.train_dir: no photo folder"):
        validate(base)
    with pytest.raises(ConfigError, match=r"data.train_dir: folder not found"):
        validate(apply_overrides(base, [f"data.train_dir='{tmp_path / 'nope'}'"]))
    ok = apply_overrides(base, [f"data.train_dir='{tmp_path}'"])
    with pytest.raises(ConfigError, match="image-on-predicted stage needs a trained edge model"):
        validate(apply_overrides(ok, ["stage.name=image-on-predicted"]))
    with pytest.raises(ConfigError, match=r"init.edge: model card not found"):
        validate(apply_overrides(ok, [f"init.edge='{tmp_path / 'x.json'}'"]))


def test_bad_toml_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[optim\nlr = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.toml: not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="table"):
        config_from_dict({"optim": 3})


def test_builtin_configs_load_and_validate(tmp_path: Path) -> None:
    small = load_config(resolve_config_path("small"))
    full = load_config(resolve_config_path("full"))
    assert small.model.edge.arguments["base_channels"] == 32 and small.model.edge.arguments["residual_blocks"] == 4
    assert full.model.image.arguments["base_channels"] == 64 and full.model.image.arguments["residual_blocks"] == 8
    for c in (small, full):
        validate(apply_overrides(c, [f"data.train_dir='{tmp_path}'", f"run.out='{tmp_path / 'r'}'"]))
    configs = sorted((Path(__file__).parents[2] / "trainer" / "configs").glob("*.toml"))
    assert len(configs) >= 8
    for path in configs:  # every shipped config, as its comment's command line runs it
        validate(apply_overrides(load_config(path), [f"data.train_dir='{tmp_path}'", f"run.out='{tmp_path / 'r'}'"]))


def test_glcic_phases() -> None:
    c = apply_overrides(TrainConfig(), ["stage.name=glcic", "optim.steps=500"])
    assert c.stage.glcic_phases(500) == (90, 100)
    c = apply_overrides(c, ["stage.glcic_completion_steps=400", "stage.glcic_discriminator_steps=200",
                            "run.out=x", "data.train_dir=."])
    with pytest.raises(ConfigError, match=r"exceed optim.steps"):
        validate(c)
