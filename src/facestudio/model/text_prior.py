"""Text to CLIP-image-space embedding: CLIP text encoder + a DALL-E-2-style diffusion prior.

This is the text branch of hybrid guidance: the prior's output lives where style embeddings
live, so the guidance Linear takes either. A Karlo-style `PriorTransformer` with an
`UnCLIPScheduler` is the reference setup.
"""

from __future__ import annotations

import torch


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
