"""LoRA adapters for `train.trainable = "lora"` (peft, the train extra)."""

from __future__ import annotations

from torch import nn


def add_lora(unet: nn.Module, rank: int) -> None:
    """LoRA adapters on the U-Net's attention projections; the rest of the U-Net frozen."""
    from peft import LoraConfig  # optional; checked in Reconstruction.check

    unet.requires_grad_(False)
    unet.add_adapter(
        LoraConfig(
            r=rank,
            lora_alpha=rank,
            init_lora_weights="gaussian",
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
    )
