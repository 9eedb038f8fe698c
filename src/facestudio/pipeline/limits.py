"""The limits of one generation call: the single place they are defined.

Every front end (Python, CLI, HTTP, web UI) checks a request against these numbers before
anything expensive happens, so a typo such as `--width 100000` or `--steps 100000` fails in
milliseconds with one line instead of allocating gigabytes or starting a 100-hour run. Each
bound says why it is where it is; change a bound here and every front end follows.
"""

from __future__ import annotations

MAX_SIDE = 2048
"""Largest width or height in pixels. Twice SDXL's native 1024: beyond that no model we load
was trained, and the U-Net's attention cost grows with the square of the token count."""

MAX_PIXELS = MAX_SIDE * MAX_SIDE
"""Largest width × height (4.2 MP): with MAX_SIDE, this bounds a latent's memory."""

MAX_NATIVE_MULTIPLE = 4
"""For a model that does not declare its sizes (`facestudio.pipeline.sizes`), a side may be at
most this many times its native side (its `sample_size` × the autoencoder's factor). Models
generalise poorly past ~2× their training size, and 4× per side already means 256× the
attention cost at the finest attention level: a 512-px model can make 2048-px images. A model
that declares its sizes makes only those."""

MAX_IMAGES_PER_CALL = 16
"""Images per call (`num_images_per_prompt`). The U-Net runs up to three guidance terms per
image, so 16 images are up to 48 U-Net samples per step; more belongs in several calls."""

MAX_PEOPLE = 8
"""People per image. Each adds K identity tokens and a region; past ~8 faces per image the
regions get too small for the face to carry an identity at the sizes we allow."""

MAX_PHOTOS_PER_PERSON = 16
"""Photos of one person (multi-shot). The mean embedding stops changing after a handful of
shots; the bound keeps face analysis (~0.3–0.5 s per photo on a CPU) under ten seconds."""

MIN_SEED = 0
MAX_SEED = 2**63 - 1
"""Seeds: image i uses seed + i, and every seed must fit a signed 64-bit integer, which
`torch.Generator.manual_seed`, NumPy, SQLite and JSON readers in most languages accept."""

MAX_GUIDANCE_SCALE = 100.0
"""Guidance scales: images saturate long before this; the bound catches typos (e.g. 7500)."""

MAX_PROMPT_CHARS = 2000
"""Prompt length. CLIP tokenizers keep 77 tokens (~300 characters); a longer text is a
mistake or a form field being abused, not a prompt."""

MAX_UPLOAD_BYTES = 25 * 1024 * 1024
"""Bytes of one uploaded image (a 24-MP JPEG is ~10 MB); larger uploads are refused unread."""

MAX_REQUEST_BYTES = 100 * 1024 * 1024
"""Bytes of all the images of one HTTP request together."""

MAX_MODEL_CHANNELS = 16384
"""Largest channel count (U-Net/autoencoder block widths, cross-attention width) accepted from
a model's config before it is built: 4× the widest released latent-diffusion U-Net. A config
asking for more is damaged or hostile and would allocate memory without bound."""

MAX_LATENT_CHANNELS = 64
"""Largest latent channel count a config may declare (released models use 4 to 16)."""


def max_side_for(native_side: int) -> int:
    """The largest width or height a model whose native side is `native_side` may make."""
    return min(MAX_SIDE, MAX_NATIVE_MULTIPLE * native_side)


def max_steps_for(num_train_timesteps: int) -> int:
    """Denoising steps: a scheduler cannot take more steps than it has training timesteps."""
    return num_train_timesteps
