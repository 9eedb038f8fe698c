"""The README's first picture: what the bundled model does, made by the README's own calls.

    python recipes/readme_figure/make.py --out docs/images/bundled-first-screen.png

Three rows, every input public domain (scikit-image's sample images), every output from the
bundled model as `FaceStudioPipeline.from_pretrained("bundled")` makes it:

1. one person: the astronaut's photo, four seeds;
2. a style: the same photo with a painted-looking style image (the coffee sample through
   OpenCV's `stylization`), four seeds: the colours and background carry, brushwork does not;
3. two people: the astronaut and a second identity (a fixed random face embedding, since no
   public-domain photo of a second person ships with the tools), 128×64, four seeds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw
from skimage import data

from facestudio import FaceStudioPipeline

SEEDS = [0, 1, 2, 3]
TILE = 128
"""Pixels of a 64-px output in the figure (shown at 2×, nearest neighbour)."""


def painted_style() -> np.ndarray:
    return cv2.stylization(np.ascontiguousarray(data.coffee()), sigma_s=60, sigma_r=0.45)


def second_person(dim: int) -> np.ndarray:
    vector = np.random.default_rng(7).normal(size=dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def rows(pipe: FaceStudioPipeline) -> list[tuple[str, list[np.ndarray], list[Image.Image]]]:
    photo, style = data.astronaut(), painted_style()
    embedding_dim = pipe.guidance.config.face_dim

    def generate(**kwargs) -> list[Image.Image]:
        out = pipe(num_inference_steps=25, num_images_per_prompt=len(SEEDS), seed=0, **kwargs)
        return out.images

    return [
        ("one person", [photo], generate(identities=[photo])),
        ("with a style image", [photo, style], generate(identities=[photo], style_image=style)),
        (
            "two people (the second: a random identity)",
            [photo],
            generate(identities=[photo, second_person(embedding_dim)]),
        ),
    ]


def figure(made: list[tuple[str, list[np.ndarray], list[Image.Image]]]) -> Image.Image:
    label_h, gap = 18, 6
    shown = [[i.resize((i.width * TILE // 64, TILE), Image.NEAREST) for i in o] for *_, o in made]
    width = 2 * (TILE + gap) + max(sum(i.width + gap for i in row) for row in shown)
    height = len(made) * (TILE + label_h + gap)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (label, inputs, _) in enumerate(made):
        top = r * (TILE + label_h + gap)
        draw.text((4, top + 2), label, fill="black")
        x = 0
        for picture in inputs:
            canvas.paste(Image.fromarray(picture).resize((TILE, TILE)), (x, top + label_h))
            x += TILE + gap
        x = 2 * (TILE + gap)
        for image in shown[r]:
            canvas.paste(image, (x, top + label_h))
            x += image.width + gap
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    pipe = FaceStudioPipeline.from_pretrained("bundled")
    pipe.set_progress_bar_config(disable=True)
    figure(rows(pipe)).save(args.out)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
