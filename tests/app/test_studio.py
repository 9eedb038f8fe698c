"""The server's model wrapper: step progress from the pipeline, the faces preview, checks that
decode uploads, and no face cache on disk."""

from __future__ import annotations

import numpy as np
import pytest

from facestudio.app.studio import Studio
from facestudio.errors import FaceStudioError
from facestudio.pipeline.request import GenerationRequest, Upload
from tests.app.conftest import encode


def test_a_run_reports_every_denoising_step(studio, photo):
    steps = []
    request = GenerationRequest(
        people=[[Upload("astronaut.jpg", photo)]], num_inference_steps=3, seed=1
    )
    outcome = studio.run(request, lambda done, total: steps.append((done, total)))
    assert steps == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert len(outcome.results) == 1 and outcome.results[0].data.startswith(b"\x89PNG")


def test_image_to_image_reports_the_steps_it_really_takes(studio, photo):
    steps = []
    request = GenerationRequest(
        people=[[Upload("astronaut.jpg", photo)]],
        image=Upload("start.jpg", photo),
        strength=0.5,
        num_inference_steps=4,
        seed=1,
    )
    studio.run(request, lambda done, total: steps.append((done, total)))
    assert steps[0] == (0, 2) and steps[-1] == (2, 2)


def test_the_preview_numbers_faces_and_says_which_is_used(studio, photo, astronaut):
    two = encode(np.concatenate([astronaut, astronaut[:, :, :]], axis=1))
    blank = encode(np.full((120, 120, 3), 200, np.uint8))
    found = studio.preview(
        [[Upload("one.jpg", photo)], [Upload("two.png", two), Upload("wall.png", blank)]], None
    )
    assert [(p.person, p.name, p.faces, p.used) for p in found] == [
        (0, "one.jpg", 1, 0),
        (1, "two.png", 2, 0),
        (1, "wall.png", 0, None),
    ]
    assert "'two.png' has 2 faces; using face 0" in found[1].messages[0]
    assert found[2].messages[0].startswith("no face found in 'wall.png'")
    assert found[1].picture.size == (1024, 512)
    chosen = studio.preview([[Upload("two.png", two)]], 1)
    assert chosen[0].used == 1 and chosen[0].messages == []


def test_check_refuses_an_undecodable_upload_with_the_loaders_message(studio):
    request = GenerationRequest(people=[[Upload("cut.jpg", b"\xff\xd8\xff\xe0 truncated")]])
    with pytest.raises(FaceStudioError, match=r"cannot read 'cut\.jpg'"):
        studio.check(request)


def test_the_server_never_caches_faces_on_disk_even_when_the_model_says_to(tmp_path, photo):
    from facestudio.model.components import random_components
    from facestudio.pipeline.pipeline import FaceStudioPipeline

    pipeline = FaceStudioPipeline(**random_components())
    analysis = {**pipeline.config.face_analysis, "cache_dir": str(tmp_path / "cache")}
    pipeline.register_to_config(face_analysis=analysis)
    assert pipeline.config.face_analysis["cache_dir"]  # what the model asks for
    studio = Studio(pipeline)
    studio.preview([[Upload("astronaut.jpg", photo)]], None)
    assert studio.pipeline.face_analyzer.cache is None
    assert studio._preview_analyzer.cache is None
    assert not (tmp_path / "cache").exists()


def test_it_describes_the_model_and_its_limits(studio: Studio):
    described = studio.describe()
    assert described["name"] == "bundled" and described["style_image"] is True
    assert described["sizes"]["supported"][1] == {"people": 2, "width": 128, "height": 64}
    assert "max_side" not in described and described["size_multiple"] == 4


def test_check_refuses_a_request_over_the_job_budget_before_decoding(studio):
    from facestudio.app.cost import JobBudget

    budget = JobBudget(max_job_s=60, seconds_per_unit=1e-4)  # 600,000 pixel-steps
    fits = GenerationRequest(
        people=[[Upload("x.jpg", b"not decoded yet")]], num_inference_steps=100
    )
    assert budget.units(fits, studio.info) == 100 * 64 * 64 <= budget.max_units
    costly = GenerationRequest(
        people=[[Upload("x.jpg", b"never decoded")]], num_inference_steps=200, num_images=2
    )
    with pytest.raises(FaceStudioError, match=r"at most 600,000 pixel-steps"):
        studio.check(costly, budget)
    image_to_image = GenerationRequest(
        people=[[Upload("x.jpg", b"x")]],
        image=Upload("start.jpg", b"x"),
        strength=0.25,
        num_inference_steps=400,
    )
    assert budget.units(image_to_image, studio.info) == 100 * 64 * 64  # the steps it runs


def test_the_worker_speed_is_measured_once(studio):
    first = studio.seconds_per_pixel_step
    assert 0 < first < 1 and studio.seconds_per_pixel_step == first
