"""FaceAnalyzer on real photos, for both backends: detection, choice of face, identity,
multi-shot, comparison and the cache."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facestudio.errors import FaceStudioError, NoFaceError
from facestudio.faces import LANDMARK_NAMES, FaceAnalyzer, FaceAnalyzerConfig
from facestudio.faces.backends import DlibBackend
from tests.conftest import shared_file


def test_faces_are_listed_largest_first_with_five_landmarks_inside_the_box(analyzer):
    found = analyzer.analyze(shared_file("data/groups/bbt3.jpg"))
    assert len(found.faces) == 5
    areas = [face.area for face in found.faces]
    assert areas == sorted(areas, reverse=True)
    for face in found.faces:
        assert face.landmarks.shape == (len(LANDMARK_NAMES), 2)
        x0, y0, x1, y1 = face.box
        eyes_and_nose = face.landmarks[:3]
        assert ((eyes_and_nose[:, 0] > x0 - 5) & (eyes_and_nose[:, 0] < x1 + 5)).all()
        assert ((eyes_and_nose[:, 1] > y0 - 5) & (eyes_and_nose[:, 1] < y1 + 5)).all()
        assert face.landmarks[0, 0] < face.landmarks[1, 0]  # eye_left is left in the image


def test_identity_photo_with_several_faces_warns_and_uses_the_largest(analyzer):
    photo = shared_file("data/groups/couple.jpg")
    identity = analyzer.identity(photo)
    assert identity.face_index == 0
    assert len(identity.warnings) == 1 and "has 2 faces; using face 0" in identity.warnings[0]
    chosen = analyzer.identity(photo, face_index=1)
    assert chosen.warnings == [] and chosen.face_index == 1
    assert float(identity.embedding @ chosen.embedding) < analyzer.threshold


def test_face_index_out_of_range_and_no_face_are_clear_errors(analyzer):
    with pytest.raises(FaceStudioError, match="face index 5 does not exist"):
        analyzer.identity(shared_file("data/groups/couple.jpg"), face_index=5)
    with pytest.raises(NoFaceError, match=r"no face found in .*white\.png"):
        analyzer.identity(shared_file("data/misc/white.png"))


def test_embeddings_are_unit_length_and_compare_by_person(analyzer, person_photos):
    a1, a2 = person_photos["id03"][:2]
    b1 = person_photos["id04"][0]
    same, first, _ = analyzer.compare(a1, a2)
    different, _, _ = analyzer.compare(a1, b1)
    assert abs(np.linalg.norm(first.embedding) - 1.0) < 1e-5
    assert same.same_person and not different.same_person
    assert same.similarity > different.similarity + 0.05


def test_multi_shot_of_one_person_is_consistent_and_flags_an_impostor(analyzer, person_photos):
    photos = person_photos["id05"][:4]
    identity = analyzer.multi_shot(photos)
    assert identity.warnings == []
    assert identity.consistency >= analyzer.threshold
    mean = np.mean([analyzer.identity(p).embedding for p in photos], axis=0)
    np.testing.assert_allclose(identity.embedding, mean / np.linalg.norm(mean), atol=1e-6)

    impostor = person_photos["id06"][0]
    mixed = analyzer.multi_shot([*photos[:3], impostor])
    assert len(mixed.warnings) == 1 and str(impostor) in mixed.warnings[0]
    assert int(np.argmin(mixed.similarity_to_others)) == 3


def test_one_photo_repeated_is_the_single_shot_identity(analyzer, person_photos):
    photo = person_photos["id04"][0]
    np.testing.assert_allclose(
        analyzer.multi_shot([photo, photo, photo]).embedding,
        analyzer.identity(photo).embedding,
        atol=1e-6,
    )


def test_arrays_and_pil_images_give_the_same_identity_as_the_file(analyzer, person_photos):
    photo = person_photos["id04"][1]
    from facestudio.images import load_image

    pixels = load_image(photo)
    from_file = analyzer.identity(photo).embedding
    np.testing.assert_allclose(analyzer.identity(pixels).embedding, from_file, atol=1e-5)
    np.testing.assert_allclose(
        analyzer.identity(Image.fromarray(pixels)).embedding, from_file, atol=1e-5
    )


class _CountingBackend(DlibBackend):
    def __init__(self):
        super().__init__()
        self.detections = 0
        self.embeddings = 0

    def detect(self, image):
        self.detections += 1
        return super().detect(image)

    def embed(self, image, face):
        self.embeddings += 1
        return super().embed(image, face)


def test_cache_by_content_means_no_recomputation(tmp_path, person_photos):
    photo = person_photos["id09"][0]
    copy = tmp_path / "renamed-copy.jpg"
    copy.write_bytes(photo.read_bytes())
    config = FaceAnalyzerConfig(cache_dir=str(tmp_path / "cache"))
    backend = _CountingBackend()
    first = FaceAnalyzer(config, backend=backend).identity(photo)
    assert (backend.detections, backend.embeddings) == (1, 1)
    # A fresh analyzer (a re-run) and a renamed copy of the same bytes: all from the cache.
    again = FaceAnalyzer(config, backend=backend).identity(copy)
    assert (backend.detections, backend.embeddings) == (1, 1)
    np.testing.assert_array_equal(first.embedding, again.embedding)
    assert again.source == str(copy)
    # Other bytes are other content.
    FaceAnalyzer(config, backend=backend).identity(person_photos["id09"][1])
    assert (backend.detections, backend.embeddings) == (2, 2)


def test_config_round_trips_through_a_dict_and_rejects_unknown_keys():
    config = FaceAnalyzerConfig(backend="dlib", cache_dir="/tmp/x")
    assert FaceAnalyzerConfig.from_dict(config.to_dict()) == config
    with pytest.raises(FaceStudioError, match=r"unknown face analysis setting.*detektor"):
        FaceAnalyzerConfig.from_dict({"detektor": "hog"})


def test_identity_reports_how_many_faces_the_photo_has(dlib_analyzer):
    assert dlib_analyzer.identity(shared_file("data/groups/bbt3.jpg")).faces_in_photo == 5


def test_dlib_takes_array_views_such_as_a_decoded_batch(dlib_analyzer):
    photo = np.asarray(Image.open(shared_file("data/lfw/Aaron_Sorkin/Aaron_Sorkin_0001.jpg")))
    rgba = np.concatenate([photo, np.full_like(photo[..., :1], 255)], axis=-1)
    view = rgba[..., :3]  # an (H, W, 3) view that is not C-contiguous
    assert not view.flags["C_CONTIGUOUS"]
    backend = dlib_analyzer.backend
    faces = backend.detect(view)
    np.testing.assert_allclose(
        backend.embed(view, faces[0]), backend.embed(photo.copy(), faces[0]), atol=1e-6
    )
