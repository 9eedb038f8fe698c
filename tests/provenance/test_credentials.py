"""C2PA content credentials: signed offline, valid when intact, invalid after a pixel edit."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from facestudio.errors import FaceStudioError
from facestudio.outputs import encode_png
from facestudio.provenance.credentials import (
    TEST_SIGNER_NAME,
    SigningConfig,
    configured_signer,
    generate_test_key,
    read_credentials,
    sign_png,
)
from tests.provenance.conftest import edit_pixels_keeping_metadata

SETTINGS = {"generated": True, "seed": 1, "warnings": ["'/home/ann/me.jpg' has 2 faces"]}


@pytest.fixture(scope="module")
def signed() -> bytes:
    return sign_png(encode_png(Image.new("RGB", (48, 40), "teal")), SETTINGS, "x.png")


def test_signed_offline_with_a_test_key_that_says_so(signed):
    report = read_credentials(signed)
    assert report.present and report.intact and report.generated
    assert report.signer == TEST_SIGNER_NAME and report.untrusted_signer
    assert report.settings["warnings"] == ["'me.jpg' has 2 faces"]  # names only
    assert Image.open(io.BytesIO(signed)).size == (48, 40)


def test_a_pixel_edit_that_keeps_the_metadata_is_detected(signed):
    report = read_credentials(edit_pixels_keeping_metadata(signed))
    assert report.present and not report.intact
    assert "assertion.dataHash.mismatch" in report.problems


def test_an_image_without_credentials_reports_none():
    assert not read_credentials(encode_png(Image.new("RGB", (8, 8)))).present


def test_a_configured_key_signs_instead_of_the_test_key(tmp_path, monkeypatch):
    key = generate_test_key()  # stands in for a user's own chain and key
    (tmp_path / "chain.pem").write_text(key.certificate_chain)
    (tmp_path / "key.pem").write_text(key.private_key)
    monkeypatch.setenv("FACESTUDIO_C2PA_CERT", str(tmp_path / "chain.pem"))
    monkeypatch.setenv("FACESTUDIO_C2PA_KEY", str(tmp_path / "key.pem"))
    configured = configured_signer()
    assert not configured.is_test_key
    data = sign_png(encode_png(Image.new("RGB", (8, 8))), SETTINGS, "y.png", configured)
    report = read_credentials(data)
    assert report.intact and report.generated


def test_a_half_configured_or_bad_key_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESTUDIO_C2PA_CERT", str(tmp_path / "chain.pem"))
    monkeypatch.delenv("FACESTUDIO_C2PA_KEY", raising=False)
    with pytest.raises(FaceStudioError, match="set both FACESTUDIO_C2PA_CERT"):
        configured_signer()
    (tmp_path / "chain.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    with pytest.raises(FaceStudioError, match="is not a PEM file"):
        SigningConfig.from_files(tmp_path / "chain.pem", tmp_path / "key.pem")
    broken = SigningConfig("-----BEGIN CERTIFICATE-----\nAA\n", "-----BEGIN KEY-----\nAA\n")
    with pytest.raises(FaceStudioError, match="cannot sign the content credentials"):
        sign_png(encode_png(Image.new("RGB", (8, 8))), SETTINGS, "z.png", broken)
