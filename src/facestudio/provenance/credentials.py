"""C2PA content credentials: a signed manifest saying the image is AI-generated, by which
generator and with which settings (c2pa-python, offline).

Signing key: the one the user configures, a PEM certificate chain and its private key, named
by `FACESTUDIO_C2PA_CERT` and `FACESTUDIO_C2PA_KEY` (optionally `FACESTUDIO_C2PA_ALG`, default
es256, and `FACESTUDIO_C2PA_TSA_URL` for a time-stamp authority), or passed as a
`SigningConfig`. Without one, a test key chain is generated in memory for the process (an EC
P-256 CA and a leaf it signs; never written to disk) and the manifest says so: its signer is
named "FaceStudio TEST key (untrusted)". Validators then report the credentials as
well-formed and intact but from an untrusted signer, which is the truth.
"""

from __future__ import annotations

import datetime
import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path

from facestudio.errors import FaceStudioError
from facestudio.provenance.metadata import GENERATOR, names_only
from facestudio.structured_files import parse_structured

TEST_SIGNER_NAME = "FaceStudio TEST key (untrusted)"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
SETTINGS_LABEL = "org.facestudio.settings"
PNG = "image/png"


@dataclass(frozen=True)
class SigningConfig:
    """A signing certificate chain (PEM, leaf first) and its private key (PEM)."""

    certificate_chain: str
    private_key: str
    algorithm: str = "es256"
    timestamp_url: str | None = None
    is_test_key: bool = False

    @classmethod
    def from_files(
        cls,
        certificate: str | os.PathLike,
        key: str | os.PathLike,
        algorithm: str = "es256",
        timestamp_url: str | None = None,
    ) -> SigningConfig:
        texts = []
        for what, path in (("certificate", certificate), ("private key", key)):
            try:
                texts.append(Path(path).read_text(encoding="ascii"))
            except (OSError, UnicodeDecodeError) as exc:
                raise FaceStudioError(f"cannot read the C2PA {what} '{path}': {exc}") from None
            if "-----BEGIN" not in texts[-1]:
                raise FaceStudioError(f"the C2PA {what} '{path}' is not a PEM file")
        return cls(texts[0], texts[1], algorithm, timestamp_url)


def configured_signer() -> SigningConfig:
    """The key from the environment, or the process's test key."""
    cert, key = os.environ.get("FACESTUDIO_C2PA_CERT"), os.environ.get("FACESTUDIO_C2PA_KEY")
    if bool(cert) != bool(key):
        raise FaceStudioError(
            "set both FACESTUDIO_C2PA_CERT and FACESTUDIO_C2PA_KEY (PEM files), or neither to "
            "sign with a test key"
        )
    if cert and key:
        return SigningConfig.from_files(
            cert,
            key,
            os.environ.get("FACESTUDIO_C2PA_ALG", "es256"),
            os.environ.get("FACESTUDIO_C2PA_TSA_URL") or None,
        )
    return generate_test_key()


@functools.cache
def generate_test_key() -> SigningConfig:
    """A freshly generated CA and leaf (EC P-256), in memory, labelled as a test key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )

    def name(common: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "FaceStudio (test, untrusted)"),
            ]
        )

    def certificate(subject, issuer, key, signing_key, is_ca: bool):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if is_ca:
            builder = builder.add_extension(_key_usage(cert_sign=True), critical=True)
        else:
            builder = (
                builder.add_extension(_key_usage(cert_sign=False), critical=True)
                .add_extension(
                    x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
                )
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
                    critical=False,
                )
            )
        return builder.sign(signing_key, hashes.SHA256())

    ca = certificate(name("FaceStudio TEST CA"), name("FaceStudio TEST CA"), ca_key, ca_key, True)
    leaf = certificate(name(TEST_SIGNER_NAME), ca.subject, leaf_key, ca_key, False)
    pem = serialization.Encoding.PEM
    chain = (leaf.public_bytes(pem) + ca.public_bytes(pem)).decode()
    key = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return SigningConfig(chain, key, "es256", None, is_test_key=True)


def _key_usage(cert_sign: bool):
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def manifest(metadata: dict, title: str, signing: SigningConfig) -> dict:
    """The manifest: a "created" action by trained algorithmic media, and the settings."""
    generator = {"name": "FaceStudio", "version": GENERATOR.split()[-1]}
    if signing.is_test_key:
        generator["signing"] = TEST_SIGNER_NAME
    return {
        "claim_generator_info": [generator],
        "title": Path(title).name,
        "format": PNG,
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": GENERATOR},
                        }
                    ]
                },
            },
            {"label": SETTINGS_LABEL, "data": names_only(metadata)},
        ],
    }


def sign_png(
    data: bytes, metadata: dict, title: str, signing: SigningConfig | None = None
) -> bytes:
    """`data` (PNG bytes) with signed content credentials embedded."""
    import c2pa

    signing = signing or configured_signer()
    info = c2pa.C2paSignerInfo(
        signing.algorithm,
        signing.certificate_chain.encode(),
        signing.private_key.encode(),
        signing.timestamp_url,
    )
    try:
        with (
            c2pa.Signer.from_info(info) as signer,
            c2pa.Builder(manifest(metadata, title, signing)) as builder,
        ):
            output = io.BytesIO()
            builder.sign(signer, PNG, io.BytesIO(data), output)
            return output.getvalue()
    except c2pa.C2paError as exc:
        raise FaceStudioError(f"cannot sign the content credentials: {exc}") from None


@dataclass(frozen=True)
class CredentialsReport:
    """What a reader found: whether a manifest is there, its state and the failed checks."""

    present: bool
    state: str | None = None  # "Valid", "Invalid", "Trusted"
    problems: tuple[str, ...] = ()
    untrusted_signer: bool = False
    signer: str | None = None
    generated: bool = False
    settings: dict | None = None

    @property
    def intact(self) -> bool:
        """Present and unaltered (a test or private signer is untrusted, not altered)."""
        return self.present and self.state in ("Valid", "Trusted") and not self.problems


def read_credentials(data: bytes, mime: str = PNG) -> CredentialsReport:
    """Read and validate the content credentials embedded in an image's bytes."""
    import c2pa

    try:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data))
    except c2pa.C2paError as exc:
        return CredentialsReport(True, "Invalid", (f"unreadable manifest: {exc}",))
    if reader is None:
        return CredentialsReport(False)
    with reader:
        try:
            store = parse_structured(reader.json(), "JSON", "the manifest store")
        except FaceStudioError as exc:  # nested or sized past any real manifest
            return CredentialsReport(True, "Invalid", (f"unreadable manifest: {exc}",))
        state = reader.get_validation_state()
    active = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    codes = [s.get("code", "") for s in store.get("validation_status") or []]
    untrusted = "signingCredential.untrusted" in codes
    problems = tuple(c for c in codes if c != "signingCredential.untrusted")
    assertions = {a.get("label"): a.get("data") for a in active.get("assertions", [])}
    actions = (assertions.get("c2pa.actions.v2") or {}).get("actions", [])
    generated = any(a.get("digitalSourceType") == TRAINED_ALGORITHMIC_MEDIA for a in actions)
    signer = (active.get("signature_info") or {}).get("common_name") or (
        active.get("signature_info") or {}
    ).get("issuer")
    return CredentialsReport(
        True, state, problems, untrusted, signer, generated, assertions.get(SETTINGS_LABEL)
    )
