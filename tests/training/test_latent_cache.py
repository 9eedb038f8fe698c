"""The latent table a run keeps: reused while what made it is unchanged, re-encoded otherwise."""

from __future__ import annotations

import torch
from safetensors.torch import load_file, save_file

from facestudio.data.dataset import ReconstructionDataset
from facestudio.training.latent_cache import CACHE_FILE, encode_dataset, stored_latents


def test_the_table_is_kept_reused_and_remade_when_the_encoder_changes(
    tiny_pipeline, eight_photos_prepared, tmp_path
):
    vae, dataset = tiny_pipeline.vae, ReconstructionDataset(eight_photos_prepared)
    first = stored_latents(vae, dataset, tmp_path, write=True)
    torch.testing.assert_close(first, encode_dataset(vae, dataset))
    path = tmp_path / CACHE_FILE
    metadata = __import__("safetensors").safe_open(path, "pt").metadata()
    marked = load_file(path)["latents"] + 1.0  # a table we can recognise if it is reused
    save_file({"latents": marked}, path, metadata)
    torch.testing.assert_close(stored_latents(vae, dataset, tmp_path, write=True), marked)
    with torch.no_grad():  # the decoder does not make latents: still reused
        vae.decoder.conv_out.bias.add_(1.0)
    torch.testing.assert_close(stored_latents(vae, dataset, tmp_path, write=True), marked)
    try:
        with torch.no_grad():
            vae.encoder.conv_in.bias.add_(1.0)
        remade = stored_latents(vae, dataset, tmp_path, write=False)
        torch.testing.assert_close(remade, encode_dataset(vae, dataset))
        assert not torch.allclose(remade, marked)
    finally:
        with torch.no_grad():
            vae.encoder.conv_in.bias.sub_(1.0)
            vae.decoder.conv_out.bias.sub_(1.0)
