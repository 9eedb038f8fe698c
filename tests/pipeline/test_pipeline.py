"""FaceStudioPipeline on tiny random components: determinism, persistence, the paper's
identities (mixing, multi-shot, α), multi-person routing, image-to-image, and bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from facestudio.errors import FaceStudioError, ModelLoadError, NoFaceError
from facestudio.pipeline import FaceStudioPipeline
from tests.conftest import shared_file

STEPS = 3


def _faces(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=128).astype(np.float32) for _ in range(count)]


def _pixels(output) -> np.ndarray:
    return np.stack([np.asarray(image) for image in output.images])


def _run(pipe, **kwargs):
    kwargs.setdefault("num_inference_steps", STEPS)
    kwargs.setdefault("seed", 7)
    return pipe(**kwargs)


def test_same_seed_same_images_and_each_image_remade_alone(tiny_pipeline):
    (a,) = _faces(1)
    first = _pixels(_run(tiny_pipeline, identities=[a], num_images_per_prompt=2))
    again = _pixels(_run(tiny_pipeline, identities=[a], num_images_per_prompt=2))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[0], first[1])
    second_alone = _pixels(_run(tiny_pipeline, identities=[a], seed=8)).astype(int)
    # Image 1 remade alone matches up to float rounding between batch sizes.
    difference = np.abs(first[1].astype(int) - second_alone[0])
    assert difference.max() <= 2 and difference.mean() < 0.2


def test_identity_changes_the_image(tiny_pipeline):
    a, b = _faces(2)
    assert not np.array_equal(
        _pixels(_run(tiny_pipeline, identities=[a])), _pixels(_run(tiny_pipeline, identities=[b]))
    )


def test_save_and_load_give_identical_outputs(tiny_pipeline, tiny_pipeline_folder):
    loaded = FaceStudioPipeline.from_pretrained(tiny_pipeline_folder)
    loaded.set_progress_bar_config(disable=True)
    (a,) = _faces(1)
    kwargs = dict(
        identities=[a],
        prompt="a portrait",
        alpha=0.5,
        style_image=Image.new("RGB", (40, 30), "red"),
    )
    np.testing.assert_array_equal(
        _pixels(_run(tiny_pipeline, **kwargs)), _pixels(_run(loaded, **kwargs))
    )
    assert loaded.config.face_analysis == tiny_pipeline.config.face_analysis
    weights = {
        p.suffix
        for p in tiny_pipeline_folder.rglob("*")
        if p.is_file() and p.suffix not in (".json", ".txt") and p.name != "facestudio_pipeline.py"
    }
    assert weights == {".safetensors"}


def test_mixing_one_zero_equals_the_first_identity(tiny_pipeline):
    a, b = _faces(2)
    np.testing.assert_array_equal(
        _pixels(_run(tiny_pipeline, identities=[a, b], mix_weights=[1.0, 0.0])),
        _pixels(_run(tiny_pipeline, identities=[a])),
    )
    half = _pixels(_run(tiny_pipeline, identities=[a, b], mix_weights=[0.5, 0.5]))
    assert not np.array_equal(half, _pixels(_run(tiny_pipeline, identities=[a])))


def test_multi_shot_of_one_photo_repeated_equals_single_shot(tiny_pipeline):
    (a,) = _faces(1)
    np.testing.assert_array_equal(
        _pixels(_run(tiny_pipeline, identities=[[a, a, a]])),
        _pixels(_run(tiny_pipeline, identities=[a])),
    )


def test_alpha_one_ignores_text_and_alpha_zero_ignores_the_style_image(tiny_pipeline):
    (a,) = _faces(1)
    style = Image.new("RGB", (50, 50), (0, 90, 200))
    other_style = Image.new("RGB", (50, 50), (250, 200, 0))
    with_text = _pixels(
        _run(tiny_pipeline, identities=[a], style_image=style, prompt="a knight", alpha=1.0)
    )
    no_text = _pixels(_run(tiny_pipeline, identities=[a], style_image=style, alpha=1.0))
    np.testing.assert_array_equal(with_text, no_text)
    text_only = _pixels(
        _run(tiny_pipeline, identities=[a], style_image=style, prompt="a knight", alpha=0.0)
    )
    other = _pixels(
        _run(tiny_pipeline, identities=[a], style_image=other_style, prompt="a knight", alpha=0.0)
    )
    np.testing.assert_array_equal(text_only, other)
    assert not np.array_equal(text_only, with_text)


def test_people_are_routed_per_call_on_processors_installed_once(tiny_pipeline, monkeypatch):
    from facestudio.model import IdentityRouting, MultiIdentityAttnProcessor

    installed = dict(tiny_pipeline.unet.attn_processors)
    assert all(isinstance(p, MultiIdentityAttnProcessor) for p in installed.values())
    seen = []
    original = tiny_pipeline.unet.forward

    def spy(*args, **kwargs):
        seen.append(kwargs.get("cross_attention_kwargs"))
        return original(*args, **kwargs)

    monkeypatch.setattr(tiny_pipeline.unet, "forward", spy)
    a, b = _faces(2)
    out = _run(tiny_pipeline, identities=[a, b], height=64, width=96)
    assert len(seen) == STEPS and all(s is seen[0] for s in seen)
    routing = seen[0]["identity_routing"]
    tokens = tiny_pipeline.guidance.config.num_tokens
    assert isinstance(routing, IdentityRouting) and routing.latent_size == (8, 12)
    assert routing.token_owner.tolist() == [0] * tokens + [1] * tokens
    assert all(p is installed[n] for n, p in tiny_pipeline.unet.attn_processors.items())
    assert out.images[0].size == (96, 64)
    assert out.metadata[0]["regions"]["source"] == "even split"
    seen.clear()
    _run(tiny_pipeline, identities=[a])
    assert seen == [None] * STEPS  # one person: no routing, the default attention


def test_one_person_is_exactly_the_default_attention(tiny_pipeline):
    from diffusers.models.attention_processor import AttnProcessor2_0

    from facestudio.model.components import random_components

    plain = FaceStudioPipeline(**random_components())  # the fixture's weights
    plain.set_progress_bar_config(disable=True)
    plain.unet.set_attn_processor(AttnProcessor2_0())
    (a,) = _faces(1)
    style = Image.new("RGB", (40, 30), "red")
    kwargs = dict(identities=[a], style_image=style, prompt="a portrait", alpha=0.5)
    np.testing.assert_array_equal(
        _pixels(_run(tiny_pipeline, **kwargs)), _pixels(_run(plain, **kwargs))
    )
    with pytest.raises(FaceStudioError, match="install_identity_routing"):
        _run(plain, identities=_faces(2))


def test_swapping_people_between_regions_changes_the_image(tiny_pipeline):
    a, b = _faces(2)
    boxes = [(0, 0, 32, 64), (32, 0, 64, 64)]
    first = _pixels(_run(tiny_pipeline, identities=[a, b], regions=boxes, background="all"))
    swapped = _pixels(_run(tiny_pipeline, identities=[b, a], regions=boxes, background="all"))
    assert not np.array_equal(first, swapped)


def test_image_to_image_runs_strength_times_steps(tiny_pipeline, monkeypatch):
    (a,) = _faces(1)
    calls = []
    original = tiny_pipeline.unet.forward
    monkeypatch.setattr(
        tiny_pipeline.unet, "forward", lambda *x, **k: calls.append(1) or original(*x, **k)
    )
    content = Image.new("RGB", (64, 64), (120, 60, 30))
    out = _run(tiny_pipeline, identities=[a], image=content, strength=0.5, num_inference_steps=8)
    assert len(calls) == 4 and out.metadata[0]["image_to_image"] is True
    again = _run(tiny_pipeline, identities=[a], image=content, strength=0.5, num_inference_steps=8)
    np.testing.assert_array_equal(_pixels(out), _pixels(again))


def test_the_step_callback_sees_every_step_once_and_in_order(tiny_pipeline):
    (a,) = _faces(1)
    seen = []

    def record(pipe, step_index, timestep, callback_kwargs):
        assert pipe is tiny_pipeline and list(callback_kwargs) == ["latents"]
        seen.append((step_index, float(timestep), callback_kwargs["latents"].clone()))
        return {}

    out = _run(tiny_pipeline, identities=[a], output_type="latent", callback_on_step_end=record)
    assert [step for step, _, _ in seen] == list(range(STEPS))
    timesteps = [t for _, t, _ in seen]
    assert timesteps == sorted(timesteps, reverse=True) and len(set(timesteps)) == STEPS
    assert torch.equal(seen[-1][2], out.images)  # the latents after each step, the last final
    seen.clear()
    content = Image.new("RGB", (64, 64), (120, 60, 30))
    _run(
        tiny_pipeline,
        identities=[a],
        image=content,
        strength=0.5,
        num_inference_steps=8,
        callback_on_step_end=record,
    )
    assert [step for step, _, _ in seen] == [0, 1, 2, 3]  # image-to-image runs 4 of 8


def test_latents_returned_by_the_step_callback_replace_the_loops(tiny_pipeline):
    (a,) = _faces(1)
    plain = _pixels(_run(tiny_pipeline, identities=[a]))

    def zero_at(step):
        def callback(pipe, step_index, timestep, callback_kwargs):
            if step_index != step:
                return {}
            return {"latents": torch.zeros_like(callback_kwargs["latents"])}

        return callback

    zeroed = _run(
        tiny_pipeline, identities=[a], output_type="latent", callback_on_step_end=zero_at(STEPS - 1)
    )
    assert torch.count_nonzero(zeroed.images) == 0
    assert not np.array_equal(
        _pixels(_run(tiny_pipeline, identities=[a], callback_on_step_end=zero_at(0))), plain
    )
    unchanged = _run(tiny_pipeline, identities=[a], callback_on_step_end=lambda *args: {})
    np.testing.assert_array_equal(_pixels(unchanged), plain)
    # The callback belonged to its call: the next call without one is the plain image.
    np.testing.assert_array_equal(_pixels(_run(tiny_pipeline, identities=[a])), plain)


def test_photos_as_identities_and_metadata(tiny_pipeline):
    photo = shared_file("data/groups/couple.jpg")
    out = _run(tiny_pipeline, identities=[photo], face_index=1)
    meta = out.metadata[0]
    assert (
        meta["generated"] is True
        and meta["seed"] == 7
        and meta["generator"].startswith("FaceStudio")
    )
    assert meta["people"] == [{"sources": [{"photo": "couple.jpg", "face_index": 1}]}]
    json.dumps(meta)  # metadata is plain JSON


def test_auto_regions_come_from_people_in_the_style_image(tiny_pipeline):
    a, b = _faces(2)
    style = Image.open(shared_file("data/groups/couple.jpg"))
    out = _run(tiny_pipeline, identities=[a, b], style_image=style, regions="auto")
    regions = out.metadata[0]["regions"]
    assert regions["source"] == "segmented"  # the segment extra is part of the test install
    left, right = regions["faces"]
    assert left[0] < right[0]


def test_a_masking_model_greys_the_faces_of_the_style_image(tiny_pipeline, tmp_path):
    from facestudio.faces.regions import mask_faces

    photo = np.asarray(Image.open(shared_file("data/groups/couple.jpg")).convert("RGB"))
    boxes = [face.box for face in tiny_pipeline.face_analyzer.analyze(photo).faces]
    assert len(boxes) == 2
    by_hand = _pixels(
        _run(tiny_pipeline, identities=_faces(1), style_image=mask_faces(photo, boxes))
    )
    kept = _pixels(_run(tiny_pipeline, identities=_faces(1), style_image=photo))
    assert not np.array_equal(by_hand, kept)

    tiny_pipeline.save_pretrained(tmp_path / "masking")
    config = json.loads((tmp_path / "masking" / "model_index.json").read_text())
    config["style_faces"] = "mask"
    (tmp_path / "masking" / "model_index.json").write_text(json.dumps(config))
    masking = FaceStudioPipeline.from_pretrained(tmp_path / "masking")
    masking.set_progress_bar_config(disable=True)
    masked = _pixels(_run(masking, identities=_faces(1), style_image=photo))
    masking.register_to_config(style_faces="keep")
    by_hand = _pixels(_run(masking, identities=_faces(1), style_image=mask_faces(photo, boxes)))
    assert np.array_equal(masked, by_hand)

    config["style_faces"] = "blur"
    (tmp_path / "masking" / "model_index.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="style_faces must be one of keep, mask"):
        FaceStudioPipeline.from_pretrained(tmp_path / "masking")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(identities="WHITE"), NoFaceError, "no face found"),
        (
            dict(identities=["A", "B", "C"], regions=[(0, 0, 32, 64), (32, 0, 64, 64)]),
            FaceStudioError,
            "3 people but 2 region",
        ),
        (
            dict(identities=["A", "B"], regions=[(0, 0, 32, 64), (32, 0, 80, 64)]),
            FaceStudioError,
            "outside the 64×64 canvas",
        ),
        (
            dict(identities=["A", "B"], mix_weights=[0.5, -0.5]),
            FaceStudioError,
            "non-negative|≥ 0",
        ),
        (dict(identities=["A", "B"], mix_weights=[0, 0]), FaceStudioError, "all zero"),
        (dict(identities=["A"], height=60), FaceStudioError, "multiples? of 8"),
        (dict(identities=["A"], num_inference_steps=0), FaceStudioError, "whole number"),
        (dict(identities=[np.ones(512)]), FaceStudioError, "must have 128"),
        (
            dict(identities=["A"], callback_on_step_end_tensor_inputs=["prompt_embeds"]),
            FaceStudioError,
            "list of names from latents; got \\['prompt_embeds'\\]",
        ),
        (dict(identities=["A"], callback_on_step_end="print"), FaceStudioError, "a function"),
    ],
)
def test_bad_input_gets_a_clear_error(tiny_pipeline, kwargs, error, message):
    a, b, c = _faces(3)
    named = {"A": a, "B": b, "C": c, "WHITE": shared_file("data/misc/white.png")}
    identities = kwargs["identities"]
    kwargs["identities"] = (
        named[identities]
        if isinstance(identities, str)
        else [named.get(x, x) if isinstance(x, str) else x for x in identities]
    )
    with pytest.raises(error, match=message) as raised:
        _run(tiny_pipeline, **kwargs)
    assert "\n" not in str(raised.value)


def test_a_prompt_without_a_text_prior_asks_for_a_style_image(tiny_pipeline_folder):
    from facestudio.model.components import ComponentSizes, random_components

    pipe = FaceStudioPipeline(**random_components(ComponentSizes.tiny(with_text=False)))
    with pytest.raises(FaceStudioError, match=r"no text prior.*give a style image"):
        pipe(prompt="a cat", identities=_faces(1), num_inference_steps=1)


def test_missing_corrupt_and_pickled_weights_are_refused(tiny_pipeline_folder, tmp_path):
    with pytest.raises(ModelLoadError, match=r"no model_index\.json"):
        FaceStudioPipeline.from_pretrained(tmp_path)
    missing = tmp_path / "missing"
    shutil.copytree(tiny_pipeline_folder, missing)
    (missing / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="cannot load the pipeline"):
        FaceStudioPipeline.from_pretrained(missing)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_pipeline_folder, corrupt)
    weights = corrupt / "guidance" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match="cannot load the pipeline"):
        FaceStudioPipeline.from_pretrained(corrupt)
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_pipeline_folder, pickled)
    torch.save({"x": torch.zeros(1)}, pickled / "unet" / "diffusion_pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pickle"):
        FaceStudioPipeline.from_pretrained(pickled)
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"pickle")
    with pytest.raises(ModelLoadError, match="pickle checkpoint"):
        FaceStudioPipeline.from_pretrained(checkpoint)
