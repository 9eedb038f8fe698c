"""What the suite measures, at which sizes, and the targets it is judged against.

`FULL` is the SD-1.5-shaped run for a CUDA device (at most about 4 minutes of an H100/H200);
`TINY` runs every section with the same code on a CPU in seconds, so CI proves the suite works
before a GPU minute is spent on it. Nothing here imports torch: the preflight reads it first.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TextEncoderShape:
    """The SD baseline's CLIP text encoder (CLIP-L/14's text tower in `FULL`)."""

    vocab_size: int = 0  # 0: the byte-level tokenizer's own size
    hidden_size: int = 32
    intermediate_size: int = 128
    layers: int = 2
    heads: int = 4


@dataclass(frozen=True)
class TrainingRun:
    """One training measurement: batch size, gradient checkpointing, optimizer."""

    batch_size: int
    checkpointing: bool
    optimizer: str = "adamw"  # "adamw" (the trainer's default) or "adamw8bit" (bitsandbytes)

    @property
    def label(self) -> str:
        return f"batch {self.batch_size}, ckpt {'on' if self.checkpointing else 'off'}, {self.optimizer}"


@dataclass(frozen=True)
class SuiteSettings:
    """Sizes and repeat counts of one suite mode; `box_s` is each section's own time box."""

    mode: str
    preset: str  # ComponentSizes preset: "sd15" or "tiny"
    size_overrides: dict = field(default_factory=dict)
    text_encoder: TextEncoderShape = field(default_factory=TextEncoderShape)
    resolution: int = 512
    steps: int = 25
    guidance_scale: float = 5.0
    repeats: int = 5
    dtype: str = "float16"
    photo_counts: tuple[int, ...] = (1, 2, 4)
    photo_repeats: int = 3
    training_model: str = "sd15"  # a key of benchmarks/training_speed.py's MODELS
    training_dtype: str = "bfloat16"
    training_runs: tuple[TrainingRun, ...] = ()
    training_warmup_steps: int = 2
    training_steps: int = 6
    compile_backend: str = "inductor"  # "eager" traces with dynamo only (CPU check of the path)
    compile_3_people: str = "if time"  # "always": the recompile probe runs whatever it costs
    box_s: dict = field(default_factory=dict)


TRAINING_RUNS = (
    TrainingRun(8, False),
    TrainingRun(8, True),
    TrainingRun(16, False),
    TrainingRun(16, True),
    TrainingRun(16, True, "adamw8bit"),
    TrainingRun(16, False, "adamw8bit"),
)

FULL = SuiteSettings(
    mode="full",
    preset="sd15",
    size_overrides={"with_text": False},
    text_encoder=TextEncoderShape(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, layers=12, heads=12
    ),
    training_runs=TRAINING_RUNS,
    box_s={
        "build": 60,
        "inference": 60,
        "memory": 20,
        "photos": 30,
        "face_encoder": 15,
        "channels_last": 25,
        "training": 70,
        "cuda_graphs": 100,
        "compile": 80,
    },
)

TINY = SuiteSettings(
    mode="tiny",
    preset="tiny",
    size_overrides={"with_text": False},
    resolution=64,
    steps=2,
    repeats=2,
    dtype="float32",
    photo_counts=(1, 2),
    photo_repeats=1,
    training_model="tiny",
    training_dtype="bfloat16",
    training_runs=(TrainingRun(2, False), TrainingRun(2, True), TrainingRun(2, True, "adamw8bit")),
    training_warmup_steps=1,
    training_steps=1,
    compile_backend="eager",
    compile_3_people="always",
    box_s={
        "build": 60,
        "inference": 60,
        "memory": 30,
        "photos": 60,
        "face_encoder": 30,
        "channels_last": 30,
        "training": 60,
        "compile": 180,
        "cuda_graphs": 30,
    },
)

MODES = {"full": FULL, "tiny": TINY}

TARGETS = {
    "ratio_facestudio_vs_sd": (
        1.03,
        "FaceStudio (1 person) s/image over diffusers' SD-1.5 pipeline",
    ),
    "ratio_3_people_vs_1": (1.03, "3 people over 1 person (multi-person overhead ≤ 3 %)"),
    "peak_memory_gb": (4.0, "peak GPU memory generating 1 person, fp16, 512² (GB)"),
    "fast_path_s_per_image": (0.4, "fast path s/image, 1 person, 512², 25 steps (on an H100)"),
}
"""Targets from the issue that asked for this suite: metric -> (upper bound, what it is)."""
