"""The small text path inside a pipeline: prompts reach the guidance, the components save and
load as pipeline parts, and recipes/text_prior/add_text.py adds them to a model folder."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facestudio.model.style_prior import StylePrior, style_space_id
from facestudio.model.text_encoder import WordVectorEncoder, word_tokenizer
from facestudio.pipeline.model_info import ModelInfo

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "text_prior"
WORDS = ["a", "pencil", "sketch", "dark", "background", "red"]


@pytest.fixture(scope="module")
def add_text():
    sys.path.insert(0, str(RECIPE))
    try:
        yield importlib.import_module("add_text")
    finally:
        sys.path.remove(str(RECIPE))
        sys.modules.pop("add_text", None)


def text_components(style_dim: int, style_space: str = "") -> dict:
    torch.manual_seed(1)
    vectors = np.random.default_rng(1).normal(size=(len(WORDS), 8)).astype(np.float32)
    prior = StylePrior(
        text_dim=8, embedding_dim=style_dim, width=16, num_heads=2, style_space=style_space
    )
    with torch.no_grad():  # a prior that visibly moves the embedding
        prior.head.weight.normal_(0, 1.0)
    return {
        "tokenizer": word_tokenizer(WORDS),
        "text_encoder": WordVectorEncoder.from_vectors(vectors, "test vectors"),
        "prior": prior.eval(),
    }


@pytest.fixture(scope="module")
def small_text_pipeline():
    from facestudio.model.components import ComponentSizes, random_components
    from facestudio.pipeline import FaceStudioPipeline

    parts = random_components(ComponentSizes.tiny(with_text=False))
    parts |= text_components(parts["guidance"].config.style_dim)
    pipe = FaceStudioPipeline(**parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def face() -> np.ndarray:
    vector = np.random.default_rng(0).normal(size=128).astype(np.float32)
    return vector / np.linalg.norm(vector)


def run(pipe, **kwargs) -> np.ndarray:
    settings = {"identities": [face()], "num_inference_steps": 2, "seed": 0, "output_type": "np"}
    return pipe(**settings | kwargs).images


def test_a_prompt_reaches_the_image_on_a_model_with_the_small_text_path(small_text_pipeline):
    pipe = small_text_pipeline
    assert ModelInfo.from_pipeline(pipe).has_text_prior
    plain = run(pipe)
    sketch = run(pipe, prompt="a pencil sketch")
    assert not np.array_equal(plain, sketch)
    np.testing.assert_array_equal(sketch, run(pipe, prompt="a pencil sketch"))
    assert not np.array_equal(sketch, run(pipe, prompt="a red background"))
    # α = 1 gives the text branch no weight: the prompt changes nothing.
    np.testing.assert_array_equal(plain, run(pipe, prompt="a pencil sketch", alpha=1.0))


def test_words_the_vocabulary_lacks_are_named_in_a_warning(small_text_pipeline):
    def warnings(**kwargs) -> list[str]:
        settings = {"identities": [face()], "num_inference_steps": 1, "seed": 0}
        return small_text_pipeline(**settings | kwargs, output_type="np").metadata[0]["warnings"]

    assert warnings(prompt="a pencil sketch") == []
    (line,) = warnings(prompt="a Pencil sketch in watercolour, watercolour!")
    assert "2 word(s) of `prompt`" in line and "'!'" not in line  # punctuation is no word
    assert "'in'" in line and "'watercolour'" in line and line.count("watercolour") == 1
    assert warnings(prompt="watercolour", alpha=1.0) == []  # the text branch has no weight


def test_the_prior_guidance_scale_reaches_the_small_prior(small_text_pipeline):
    one = run(small_text_pipeline, prompt="dark background", prior_guidance_scale=1.0)
    four = run(small_text_pipeline, prompt="dark background", prior_guidance_scale=4.0)
    assert not np.array_equal(one, four)


def test_the_text_components_save_and_load_as_pipeline_parts(small_text_pipeline, tmp_path):
    from facestudio.pipeline import FaceStudioPipeline

    small_text_pipeline.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["prior"] == ["facestudio.model.style_prior", "StylePrior"]
    assert index["text_encoder"] == ["facestudio.model.text_encoder", "WordVectorEncoder"]
    assert ModelInfo.from_folder(tmp_path).has_text_prior
    loaded = FaceStudioPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    np.testing.assert_allclose(
        run(loaded, prompt="a pencil sketch"), run(small_text_pipeline, prompt="a pencil sketch")
    )


@pytest.fixture(scope="module")
def textless_folder(tmp_path_factory) -> Path:
    from facestudio.model.components import ComponentSizes, random_components
    from facestudio.pipeline import FaceStudioPipeline

    folder = tmp_path_factory.mktemp("textless")
    FaceStudioPipeline(**random_components(ComponentSizes.tiny(with_text=False))).save_pretrained(
        folder
    )
    return folder


def write_text_run(folder: Path, style_dim: int, style_space: str) -> tuple[Path, Path]:
    parts = text_components(style_dim, style_space)
    parts["tokenizer"].save_pretrained(folder / "text" / "tokenizer")
    parts["text_encoder"].half().save_pretrained(folder / "text" / "text_encoder")
    parts["prior"].half().save_pretrained(folder / "prior")
    return folder / "text", folder / "prior"


def test_add_text_gives_a_model_folder_the_text_path(add_text, textless_folder, tmp_path):
    from facestudio.pipeline import FaceStudioPipeline

    style_dim = json.loads((textless_folder / "guidance" / "config.json").read_text())["style_dim"]
    text, prior = write_text_run(tmp_path, style_dim, style_space_id(textless_folder))
    out = add_text.add_text(textless_folder, text, prior, tmp_path / "with-text")
    assert not ModelInfo.from_folder(textless_folder).has_text_prior  # the source is untouched
    assert ModelInfo.from_folder(out).has_text_prior
    assert add_text.smoke_test(out) == (1, style_dim)
    pipe = FaceStudioPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    assert not np.array_equal(run(pipe), run(pipe, prompt="a pencil sketch"))


def test_add_text_refuses_a_prior_of_another_style_encoder(add_text, textless_folder, tmp_path):
    style_dim = json.loads((textless_folder / "guidance" / "config.json").read_text())["style_dim"]
    text, prior = write_text_run(tmp_path, style_dim, "0" * 64)
    with pytest.raises(SystemExit, match="another style encoder"):
        add_text.add_text(textless_folder, text, prior, tmp_path / "with-text")
    assert not (tmp_path / "with-text").exists()
