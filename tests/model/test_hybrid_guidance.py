"""Hybrid guidance: branch blending, null embeddings, shapes."""

from __future__ import annotations

import pytest
import torch

from facestudio.model import HybridGuidance


@pytest.fixture
def guidance() -> HybridGuidance:
    torch.manual_seed(0)
    module = HybridGuidance(style_dim=16, face_dim=8, cross_attention_dim=12, num_tokens=3)
    with torch.no_grad():
        module.null_style.normal_()
        module.null_face.normal_()
    return module


def test_tokens_have_the_unet_context_shape(guidance):
    out = guidance(torch.randn(5, 8), torch.randn(5, 16))
    assert out.shape == (5, 3, 12)


def test_alpha_one_ignores_the_text_branch_and_zero_ignores_the_style(guidance):
    face, style = torch.randn(2, 8), torch.randn(2, 16)
    prior_a, prior_b = torch.randn(2, 16), torch.randn(2, 16)
    assert torch.equal(
        guidance(face, style, prior_a, alpha=1.0), guidance(face, style, prior_b, alpha=1.0)
    )
    other_style = torch.randn(2, 16)
    assert torch.equal(
        guidance(face, style, prior_a, alpha=0.0), guidance(face, other_style, prior_a, alpha=0.0)
    )


def test_blend_is_the_papers_formula(guidance):
    face, style, prior = torch.randn(1, 8), torch.randn(1, 16), torch.randn(1, 16)
    expected = 0.3 * guidance.tokens(style, face) + 0.7 * guidance.tokens(prior, face)
    torch.testing.assert_close(guidance(face, style, prior, alpha=0.3), expected)


def test_missing_inputs_use_the_null_embeddings(guidance):
    out = guidance(None, None, batch_size=2)
    expected = guidance.tokens(guidance.null_style[None], guidance.null_face[None]).expand(
        2, -1, -1
    )
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match="alpha"):
        guidance(None, alpha=1.5)


def test_zero_nulls_are_fixed_when_not_learned():
    module = HybridGuidance(
        style_dim=4, face_dim=4, cross_attention_dim=4, num_tokens=1, learned_null=False
    )
    assert not module.null_face.requires_grad and not module.null_style.requires_grad
    assert module.null_face.abs().sum() == 0


def test_face_statistics_keep_outputs_and_survive_save_and_load(guidance, tmp_path):
    face, style = torch.randn(4, 8) * 0.05 + 0.3, torch.randn(4, 16)
    before = guidance(face, style)
    assert not guidance.has_face_statistics
    guidance.set_face_statistics(torch.full((8,), 0.3), torch.full((8,), 0.05))
    guidance.set_face_statistics(torch.linspace(0.2, 0.4, 8), torch.linspace(0.02, 0.08, 8))
    assert guidance.has_face_statistics
    torch.testing.assert_close(guidance(face, style), before, rtol=1e-4, atol=1e-4)
    guidance.save_pretrained(tmp_path)
    loaded = HybridGuidance.from_pretrained(tmp_path)
    torch.testing.assert_close(loaded.face_std, guidance.face_std)
    torch.testing.assert_close(loaded(face, style), before, rtol=1e-4, atol=1e-4)


def test_standardised_face_columns_learn_faster_under_adam(guidance):
    # Same data, same steps: with statistics set, the identity part of the tokens moves further.
    faces = torch.randn(16, 8) * 0.04 + 0.3
    style = torch.randn(16, 16)
    target = torch.randn(16, 3, 12) + faces.sum(-1)[:, None, None] * 10

    def identity_spread(module: HybridGuidance) -> float:
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
        for _ in range(20):
            loss = (module(faces, style) - target).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            return module(faces, style.mean(0).expand(16, -1)).std(0).mean().item()

    plain = HybridGuidance(style_dim=16, face_dim=8, cross_attention_dim=12, num_tokens=3)
    standardised = HybridGuidance(style_dim=16, face_dim=8, cross_attention_dim=12, num_tokens=3)
    standardised.load_state_dict(plain.state_dict())
    standardised.set_face_statistics(faces.mean(0), faces.std(0))
    fast, slow = identity_spread(standardised), identity_spread(plain)
    assert fast > 3 * slow


def test_a_guidance_saved_without_face_statistics_loads_with_none(guidance, tmp_path):
    from safetensors.torch import load_file, save_file

    guidance.save_pretrained(tmp_path)
    weights = tmp_path / "diffusion_pytorch_model.safetensors"
    old = {k: v for k, v in load_file(weights).items() if not k.startswith("face_")}
    save_file(old, weights)
    loaded = HybridGuidance.from_pretrained(tmp_path)
    assert not loaded.has_face_statistics
    face, style = torch.randn(2, 8), torch.randn(2, 16)
    torch.testing.assert_close(loaded(face, style), guidance(face, style))
