"""The example pipeline configs validate, and every model in them is the kind its file promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from l1flow.config import load_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
EXPECTED = {
    "axol1tl_ae.yaml": ["dense_ae"],
    "vae_encoder.yaml": ["vae"],
    "cicada_student.yaml": ["cicada_student"],
    "bdt_classifier.yaml": ["bdt_classifier"],
    "bdt_student.yaml": ["dense_ae", "bdt_student"],
}


@pytest.mark.parametrize("filename", sorted(EXPECTED))
def test_example_config_validates(filename: str) -> None:
    config = load_config(CONFIGS / filename)
    assert [m.kind for m in config.models] == EXPECTED[filename]
    names = {m.name for m in config.models}
    for model in config.models:
        if model.kind == "bdt_student":
            assert model.teacher in names
        if model.kind in ("dense_ae", "vae"):
            assert model.input_quantizer.integer < model.input_quantizer.bits


def test_axol1tl_shape_is_57_32_16_3_16_32_57() -> None:
    (ae,) = load_config(CONFIGS / "axol1tl_ae.yaml").models
    widths = [layer.units for layer in [*ae.encoder, ae.latent, *ae.decoder_layers(), ae.output]]
    assert widths == [32, 16, 3, 16, 32, 57]


def test_a_typo_in_a_model_field_names_the_field(tmp_path: Path) -> None:
    text = (CONFIGS / "bdt_classifier.yaml").read_text().replace("n_trees: 60", "n_tree: 60")
    path = tmp_path / "typo.yaml"
    path.write_text(text)
    with pytest.raises(Exception, match="n_tree"):
        load_config(path)
