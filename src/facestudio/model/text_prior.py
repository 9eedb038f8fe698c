"""Prompt -> style-space embedding: the text branch of hybrid guidance, for every kind of model.

The prior's output lives where style embeddings live, so the guidance Linear takes either.
Two kinds of text path exist, and this module is the one place that tells them apart:

- full-size models: a CLIP text encoder and a DALL-E-2-style diffusion prior (a Karlo-style
  `PriorTransformer` with an `UnCLIPScheduler`), sampled by `sample_prior_embeddings`;
- small models (the bundled one): frozen word vectors (`WordVectorEncoder`) and a trained
  regression prior (`StylePrior`) into the model's own style space, see `regress_prior_embeddings`.
"""

from __future__ import annotations

import torch

from facestudio.model.style_prior import StylePrior
from facestudio.model.text_encoder import encode_prompts

DEFAULT_GUIDANCE = {"diffusion": 4.0, "regression": 1.0}
"""Prior guidance scale when none is given. Regression (`StylePrior` on v1, docs/text.md): 1
renders the prompt (black and white 6 of 8 images, dark background 7 of 8), 4 breaks the images
(Sim(GT) 0.18 -> 0.02), so the scale that suits a diffusion prior does not carry over."""


def prompt_embeddings(
    prompts: list[str],
    tokenizer,
    text_encoder,
    prior,
    scheduler,
    num_inference_steps: int = 25,
    guidance_scale: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, style_dim) embeddings of `prompts` in the style encoder's space, by the model's kind
    of prior. The step count and generator only matter to a diffusion prior; `guidance_scale`
    None is the kind's default (`DEFAULT_GUIDANCE`)."""
    if guidance_scale is None:
        guidance_scale = DEFAULT_GUIDANCE[
            "regression" if isinstance(prior, StylePrior) else "diffusion"
        ]
    if isinstance(prior, StylePrior):
        return regress_prior_embeddings(prompts, tokenizer, text_encoder, prior, guidance_scale)
    return sample_prior_embeddings(
        prompts,
        tokenizer,
        text_encoder,
        prior,
        scheduler,
        num_inference_steps,
        guidance_scale,
        generator,
    )


@torch.no_grad()
def regress_prior_embeddings(
    prompts: list[str], tokenizer, text_encoder, prior: StylePrior, guidance_scale: float = 1.0
) -> torch.Tensor:
    """(B, embedding_dim) style embeddings predicted from `prompts` by a regression prior, with
    its guidance `u + s·(c − u)` (s = `guidance_scale`)."""
    encoded = encode_prompts(prompts, tokenizer, text_encoder)
    hidden = encoded.last_hidden_state.to(prior.device)
    return prior.guided(hidden, encoded.attention_mask.to(prior.device), guidance_scale)


@torch.no_grad()
def sample_prior_embeddings(
    prompts: list[str],
    tokenizer,
    text_encoder,
    prior,
    scheduler,
    num_inference_steps: int = 25,
    guidance_scale: float = 4.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, embedding_dim) image embeddings predicted from `prompts` by the prior."""
    device = prior.device
    do_guidance = guidance_scale > 1.0
    # The prior's guidance convention: unconditional (empty prompt) first.
    texts = [""] * len(prompts) + prompts if do_guidance else prompts
    tokens = tokenizer(
        texts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    encoded = text_encoder(tokens.input_ids.to(device))
    text_embeds, hidden = encoded.text_embeds, encoded.last_hidden_state
    mask = tokens.attention_mask.bool().to(device)

    scheduler.set_timesteps(num_inference_steps, device=device)
    shape = (len(prompts), prior.config.embedding_dim)
    latents = torch.randn(shape, generator=generator, dtype=text_embeds.dtype).to(device)
    latents = latents * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        model_input = torch.cat([latents] * 2) if do_guidance else latents
        predicted = prior(
            model_input,
            timestep=t,
            proj_embedding=text_embeds,
            encoder_hidden_states=hidden,
            attention_mask=mask,
        ).predicted_image_embedding
        if do_guidance:
            uncond, cond = predicted.chunk(2)
            predicted = uncond + guidance_scale * (cond - uncond)
        latents = scheduler.step(
            predicted, timestep=t, sample=latents, generator=generator
        ).prev_sample
    return prior.post_process_latents(latents)
