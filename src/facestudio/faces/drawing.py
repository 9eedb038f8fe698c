"""Drawing detected faces on a photo, for people to check what was found."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facestudio.faces.types import Face

_COLORS = [(255, 64, 64), (64, 200, 255), (255, 200, 0), (120, 255, 120), (255, 120, 255)]


def draw_faces(image: np.ndarray, faces: list[Face]) -> Image.Image:
    """Boxes with their index and score; landmarks as dots (hollow where estimated)."""
    canvas = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    line = max(2, round(max(canvas.size) / 400))
    font = ImageFont.load_default(size=max(12, 7 * line))
    for index, face in enumerate(faces):
        color = _COLORS[index % len(_COLORS)]
        draw.rectangle(face.box, outline=color, width=line)
        radius = max(2.0, face.width / 40)
        for (x, y), estimated in zip(face.landmarks, face.landmarks_estimated, strict=True):
            dot = (x - radius, y - radius, x + radius, y + radius)
            if estimated:
                draw.ellipse(dot, outline=color, width=1)
            else:
                draw.ellipse(dot, fill=color)
        label = f"{index}: {face.score:.2f}"
        height = draw.textbbox((0, 0), label, font=font)[3]
        x0, y0 = face.box[0], max(0.0, face.box[1] - height - 2 * line)
        draw.rectangle(draw.textbbox((x0, y0), label, font=font), fill=(0, 0, 0))
        draw.text((x0, y0), label, fill=color, font=font)
    return canvas
