"""The prepared-sample schema: what encode_sample writes, decode_sample reads back, and a shard
written twice is byte-identical."""

from __future__ import annotations

import tarfile

import numpy as np

from facestudio.data import samples


def _sample(with_face: bool = True) -> samples.PreparedSample:
    rng = np.random.default_rng(1)
    ramp = np.linspace(0, 255, 32, dtype=np.uint8)
    image = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], 128 + 0 * ramp[None, :]), -1)
    return samples.PreparedSample(
        image=image,
        style=np.full_like(image, 127),
        meta={"box": [1.5, 2.0, 30.0, 31.0], "source": "a.jpg"},
        embedding=rng.normal(size=128).astype(np.float32) if with_face else None,
        face_crop=image if with_face else None,
        mask=np.zeros((32, 32), np.uint8),
    )


def test_a_sample_round_trips_through_its_members():
    original = _sample()
    files = samples.encode_sample(original, jpeg_quality=95)
    assert set(files) == {
        samples.IMAGE,
        samples.STYLE,
        samples.FACE_CROP,
        samples.MASK,
        samples.EMBEDDING,
        samples.META,
    }
    decoded = samples.decode_sample(files)
    assert decoded.has_face and decoded.meta == original.meta
    np.testing.assert_array_equal(decoded.embedding, original.embedding)
    np.testing.assert_array_equal(decoded.face_crop, original.face_crop)  # PNG: lossless
    np.testing.assert_array_equal(decoded.mask, original.mask)
    assert np.abs(decoded.image.astype(int) - original.image).mean() < 3  # JPEG
    assert decoded.style.shape == (32, 32, 3)


def test_faceless_samples_have_no_embedding_and_encoded_images_are_kept_bit_exact():
    jpeg = samples.jpeg_bytes(_sample().image, 80)
    files = samples.encode_sample(
        samples.PreparedSample(jpeg, jpeg, {"face_present": False}), jpeg_quality=95
    )
    assert samples.EMBEDDING not in files and files[samples.IMAGE] == jpeg
    assert not samples.decode_sample(files).has_face


def test_shards_are_deterministic_and_index_members_by_key(tmp_path):
    shards = []
    for name in ("a.tar", "b.tar"):
        with tarfile.open(tmp_path / name, "w") as archive:
            for position in (12, 3):
                files = samples.encode_sample(_sample(with_face=position == 3))
                samples.add_sample(archive, samples.sample_key(position), files)
        shards.append((tmp_path / name).read_bytes())
    assert shards[0] == shards[1]
    members = samples.shard_members(tmp_path / "a.tar")
    assert list(members) == ["000000003", "000000012"]  # sorted keys
    assert samples.EMBEDDING in members["000000003"]
    assert samples.EMBEDDING not in members["000000012"]
    read = samples.read_members(tmp_path / "a.tar", members["000000003"])
    assert set(read) == set(samples.TRAINING_MEMBERS)
    assert samples.decode_sample(read).meta["source"] == "a.jpg"
