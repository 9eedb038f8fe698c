"""Captions measured from each training portrait, in many phrasings.

Training is by reconstruction and needs no text; the text path (a prior from a prompt into the
style encoder's space) does. No captioned portraits exist for this data, so each portrait is
described by what can be measured on it:

- medium: the stylisation applied to it (training/stylize.py names each sample's twin), or
  a photo;
- tone: colour, black and white, or sepia (saturation and how narrow the hues are);
- tint: a strong colour cast (the saturation and hue of the image's mean colour);
- background: dark or light, and its colour (pixels outside the face, above the shoulders);
- head pose: turned left/right, tilted up/down (the nose against the eyes, 5 landmarks);
- lighting side: which half of the face is brighter.

Sides are the viewer's: "looking left" means the face turns towards the image's left edge.
Framing is not an attribute: prepared portraits are aligned to one template (the face the same
size and place in every one), so it does not vary. Attributes of the face itself (expression,
glasses, age) are not captioned: the style input has the face masked out, so its embedding
cannot carry them and the text path could not either.

Each attribute value has many phrasings, split into `train` (what training captions use) and
`unseen` (never in a training caption: the test of whether the prior learned the meaning rather
than the strings). Thresholds live in `CaptionThresholds`; docs/text.md shows how they were
set on the data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

HUES = ("red", "orange", "yellow", "green", "teal", "blue", "purple", "pink")
HUE_EDGES = (15, 40, 70, 165, 195, 260, 290, 335)
"""Upper hue edge (degrees) of each name in `HUES`; above 335 is red again."""

HUE_SYNONYMS = {
    "red": "crimson",
    "orange": "amber",
    "yellow": "golden",
    "green": "emerald",
    "teal": "turquoise",
    "blue": "navy",
    "purple": "violet",
    "pink": "magenta",
}
"""Colour words that no training caption uses (for unseen phrasings)."""

MEDIUM_OF_STYLE = {
    "cartoon": "cartoon",
    "pencil": "pencil sketch",
    "colour_pencil": "colour pencil",
    "painted": "painting",
}
"""The medium a stylisation makes; the others (greyscale, sepia, casts) leave a photo whose
tone or tint the measurements describe."""


@dataclass(frozen=True)
class CaptionThresholds:
    """Where measured values become words (set on the training portraits, docs/text.md)."""

    grey_saturation: float = 0.04  # mean HSV saturation below this: black and white
    sepia_hue: tuple[float, float] = (30.0, 50.0)  # degrees of a sepia image's hue
    sepia_spread: float = 0.16  # circular spread of hues (radians) below this: one hue
    tint_saturation: float = 0.35  # saturation of the mean colour above this: a colour cast
    background_dark: float = 0.2  # mean HSV value of the background below this: dark
    background_light: float = 0.55  # above this: light
    background_colour: float = 0.35  # saturation of the background's mean colour: coloured
    yaw: float = 0.08  # nose offset from the eyes' midpoint, in eye distances
    pitch: tuple[float, float] = (0.66, 0.92)  # nose below the eyes, in eye distances: up, down
    lighting: float = 0.2  # relative brightness difference of the face's halves


@dataclass(frozen=True)
class Attributes:
    """What was measured on one portrait; None where nothing stands out."""

    medium: str = "photo"
    tone: str = "colour"
    tint: str | None = None
    background_light: str | None = None
    background_colour: str | None = None
    yaw: str | None = None
    pitch: str | None = None
    lighting: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Attributes:
        return cls(**{f.name: data.get(f.name, f.default) for f in fields(cls)})

    def values(self) -> list[tuple[str, str]]:
        """The (attribute, value) pairs a caption can mention."""
        return [(k, v) for k, v in self.to_dict().items() if v is not None]


# -- measuring ---------------------------------------------------------------------------------


def hue_name(degrees: float) -> str:
    """The colour name of a hue angle (0–360°)."""
    degrees = degrees % 360
    for name, edge in zip(HUES, HUE_EDGES, strict=True):
        if degrees < edge:
            return name
    return "red"


def measure(
    image: np.ndarray,
    face_box,
    landmarks,
    style: str | None = None,
    thresholds: CaptionThresholds | None = None,
) -> Attributes:
    """The attributes of an RGB uint8 portrait with its face box (x0, y0, x1, y1) and 5
    landmarks (eyes, nose, mouth corners); `style` is the stylisation applied, if any."""
    t = thresholds or CaptionThresholds()
    box, points = np.asarray(face_box, np.float64), np.asarray(landmarks, np.float64)
    tone = _tone(image, t)
    background_light, background_colour = _background(image, box, t)
    yaw, pitch = _pose(points, t) if box[2] > box[0] else (None, None)
    return Attributes(
        medium=MEDIUM_OF_STYLE.get(style or "", "photo"),
        tone=tone,
        tint=_tint(image, t) if tone == "colour" else None,
        background_light=background_light,
        background_colour=background_colour,
        yaw=yaw,
        pitch=pitch,
        lighting=_lighting(image, box, t) if box[2] > box[0] else None,
    )


def _tone(image: np.ndarray, t: CaptionThresholds) -> str:
    """Black and white when hardly any pixel has colour; sepia when all share one brown hue."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float64)
    saturation = hsv[..., 1] / 255.0
    if saturation.mean() < t.grey_saturation:
        return "black and white"
    weight = saturation * (hsv[..., 2] > 30)
    phasor = (weight * np.exp(1j * np.radians(hsv[..., 0] * 2.0))).sum() / max(weight.sum(), 1e-6)
    spread = np.sqrt(-2.0 * np.log(max(abs(phasor), 1e-9)))
    hue = np.degrees(np.angle(phasor)) % 360
    if spread < t.sepia_spread and t.sepia_hue[0] <= hue <= t.sepia_hue[1]:
        return "sepia"
    return "colour"


def _mean_colour(pixels: np.ndarray) -> tuple[float, float, float]:
    """(hue degrees, saturation, value) of the mean colour of (N, 3) RGB uint8 pixels."""
    mean = np.clip(pixels.reshape(-1, 3).mean(0), 0, 255).astype(np.uint8)
    h, s, v = cv2.cvtColor(mean[None, None], cv2.COLOR_RGB2HSV)[0, 0].astype(np.float64)
    return h * 2.0, s / 255.0, v / 255.0


def _tint(image: np.ndarray, t: CaptionThresholds) -> str | None:
    hue, saturation, _ = _mean_colour(image)
    return hue_name(hue) if saturation > t.tint_saturation else None


def background_mask(size: int, face_box: np.ndarray, grow: float = 1.3) -> np.ndarray:
    """Pixels of a portrait that show background: beside the face (outside its box grown by
    `grow`, so beside the hair too), in the upper 60 % of the image (below: shoulders)."""
    x0, _, x1, _ = face_box
    centre, half_width = (x0 + x1) / 2, grow * (x1 - x0) / 2
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    return (np.abs(xs - centre) >= half_width) & (ys < 0.6 * size)


def _background(image: np.ndarray, box: np.ndarray, t: CaptionThresholds):
    """(light: dark/light/None, colour name or None) of the background pixels."""
    mask = (
        background_mask(image.shape[0], box) if box[2] > box[0] else np.ones(image.shape[:2], bool)
    )
    pixels = image[mask]
    hsv = cv2.cvtColor(pixels[None], cv2.COLOR_RGB2HSV)[0].astype(np.float64)
    value = hsv[:, 2].mean() / 255.0
    light = "dark" if value < t.background_dark else "light" if value > t.background_light else None
    hue, saturation, mean_value = _mean_colour(pixels)
    coloured = saturation > t.background_colour and mean_value > 0.15
    return light, hue_name(hue) if coloured else None


def _pose(points: np.ndarray, t: CaptionThresholds) -> tuple[str | None, str | None]:
    """Yaw from the nose's sideways offset, pitch from its height, both in eye distances."""
    eyes = (points[0] + points[1]) / 2
    distance = max(float(np.linalg.norm(points[1] - points[0])), 1e-6)
    across = (points[2, 0] - eyes[0]) / distance
    down = (points[2, 1] - eyes[1]) / distance
    yaw = "left" if across < -t.yaw else "right" if across > t.yaw else None
    pitch = "up" if down < t.pitch[0] else "down" if down > t.pitch[1] else None
    return yaw, pitch


def _lighting(image: np.ndarray, box: np.ndarray, t: CaptionThresholds) -> str | None:
    """The side whose half of the (inner) face box is brighter, when clearly so."""
    x0, y0, x1, y1 = box
    inset_x, inset_y = 0.15 * (x1 - x0), 0.15 * (y1 - y0)
    top, bottom = int(max(y0 + inset_y, 0)), int(min(y1 - inset_y, image.shape[0]))
    left, right = int(max(x0 + inset_x, 0)), int(min(x1 - inset_x, image.shape[1]))
    middle = (left + right) // 2
    if bottom - top < 2 or middle - left < 1 or right - middle < 1:
        return None
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    a, b = grey[top:bottom, left:middle].mean(), grey[top:bottom, middle:right].mean()
    difference = 2.0 * (a - b) / max(a + b, 1e-6)
    return "left" if difference > t.lighting else "right" if difference < -t.lighting else None


# -- phrasing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phrasings:
    """The ways to say one attribute value: in training captions, and never in them."""

    train: tuple[str, ...]
    unseen: tuple[str, ...]


def _hued(train: tuple[str, ...], unseen: tuple[str, ...]) -> dict[str, Phrasings]:
    """One `Phrasings` per hue from templates with `{c}`; half the unseen ones use a colour
    word that training never sees (`HUE_SYNONYMS`)."""
    table = {}
    for hue in HUES:
        new = tuple(u.format(c=HUE_SYNONYMS[hue] if i % 2 else hue) for i, u in enumerate(unseen))
        table[hue] = Phrasings(tuple(p.format(c=hue) for p in train), new)
    return table


PHRASES: dict[str, dict[str, Phrasings]] = {
    "medium": {
        "photo": Phrasings(
            (
                "a photo of a person",
                "a photograph of someone",
                "a portrait photo",
                "a picture of a person",
                "a portrait",
                "a headshot",
                "photo of a face",
            ),
            ("a snapshot of an individual", "a camera image of a human"),
        ),
        "cartoon": Phrasings(
            (
                "a cartoon of a person",
                "a cartoon portrait",
                "cartoon style",
                "a cartoon drawing of someone",
                "a comic style portrait",
                "an animated cartoon image",
            ),
            ("a caricature in toon style", "an illustration like an animated film"),
        ),
        "pencil sketch": Phrasings(
            (
                "a pencil sketch of a person",
                "a pencil drawing",
                "a graphite sketch",
                "a sketch portrait",
                "drawn in pencil",
                "a black pencil sketch",
            ),
            ("a charcoal drawing of someone", "sketched with thin grey strokes"),
        ),
        "colour pencil": Phrasings(
            (
                "a colour pencil drawing",
                "a coloured pencil sketch of a person",
                "drawn with coloured pencils",
                "a color pencil portrait",
                "a colored pencil drawing",
            ),
            ("a pastel crayon illustration", "sketched with colored crayons"),
        ),
        "painting": Phrasings(
            (
                "a painting of a person",
                "a painted portrait",
                "an oil painting",
                "painterly style",
                "a portrait painting",
                "in the style of a painting",
            ),
            ("an acrylic artwork of someone", "rendered like a canvas artwork"),
        ),
    },
    "tone": {
        "colour": Phrasings(
            ("in colour", "in color", "full colour", "natural colours"),
            ("vivid natural hues",),
        ),
        "black and white": Phrasings(
            (
                "black and white",
                "in black and white",
                "monochrome",
                "greyscale",
                "grayscale",
                "a black and white photo",
                "no colour",
            ),
            ("shades of gray only", "colourless like an old newspaper print"),
        ),
        "sepia": Phrasings(
            ("sepia", "sepia toned", "in sepia", "an old brown sepia photo", "vintage sepia tones"),
            ("antique brownish tint like an old photograph", "faded brown vintage tones"),
        ),
    },
    "tint": _hued(
        (
            "with a {c} tint",
            "{c} tinted",
            "a {c} colour cast",
            "bathed in {c} light",
            "{c} toned",
            "with a strong {c} hue",
        ),
        (
            "washed in a {c} glow",
            "everything looks {c}",
            "seen through a {c} filter",
            "drenched in {c}",
        ),
    ),
    "background_light": {
        "dark": Phrasings(
            (
                "dark background",
                "against a dark backdrop",
                "in front of a black background",
                "the background is dark",
                "dark surroundings",
                "in a dark room",
            ),
            ("shadowy surroundings", "a dim setting behind the head", "at night"),
        ),
        "light": Phrasings(
            (
                "bright background",
                "light background",
                "against a white backdrop",
                "the background is bright",
                "bright surroundings",
                "in front of a pale wall",
            ),
            ("a luminous setting behind", "brilliantly lit surroundings", "on a snowy backdrop"),
        ),
    },
    "background_colour": _hued(
        (
            "{c} background",
            "in front of a {c} wall",
            "against a {c} backdrop",
            "with a {c} background",
            "the background is {c}",
            "{c} behind the person",
        ),
        (
            "standing before a {c} curtain",
            "backdrop painted {c}",
            "a {c} setting behind",
            "surrounded by {c} scenery",
        ),
    ),
    "yaw": {
        "left": Phrasings(
            (
                "looking left",
                "facing left",
                "head turned to the left",
                "turned towards the left",
                "face turned left",
                "looking to the left",
            ),
            ("gazing leftward", "glancing to the left side", "head rotated left"),
        ),
        "right": Phrasings(
            (
                "looking right",
                "facing right",
                "head turned to the right",
                "turned towards the right",
                "face turned right",
                "looking to the right",
            ),
            ("gazing rightward", "glancing to the right side", "head rotated right"),
        ),
    },
    "pitch": {
        "up": Phrasings(
            (
                "looking up",
                "head tilted up",
                "chin raised",
                "face turned upwards",
                "looking upward",
            ),
            ("gazing at the sky", "glancing skyward", "head tipped back"),
        ),
        "down": Phrasings(
            (
                "looking down",
                "head tilted down",
                "chin lowered",
                "face turned downwards",
                "looking downward",
            ),
            ("gazing at the floor", "glancing at the ground", "head bowed"),
        ),
    },
    "lighting": {
        "left": Phrasings(
            (
                "lit from the left",
                "light coming from the left",
                "left side lighting",
                "light from the left side",
                "the left side is brighter",
                "illuminated from the left",
            ),
            ("a lamp on the left", "sunlight falling from the left", "shadow on the right half"),
        ),
        "right": Phrasings(
            (
                "lit from the right",
                "light coming from the right",
                "right side lighting",
                "light from the right side",
                "the right side is brighter",
                "illuminated from the right",
            ),
            ("a lamp on the right", "sunlight falling from the right", "shadow on the left half"),
        ),
    },
}

JOINERS = (", ", ", ", " , ", "; ", " and ", " with ")


def phrases(attribute: str, value: str, unseen: bool = False) -> tuple[str, ...]:
    """The phrasings of one attribute value, as training uses them or never seen by it."""
    table = PHRASES[attribute][value]
    return table.unseen if unseen else table.train


def caption(
    attributes: Attributes,
    rng: np.random.Generator,
    mention: float = 0.7,
    unseen: bool = False,
) -> str:
    """One caption of `attributes`: each attribute mentioned with probability `mention` (the
    medium of a photo and a colour tone less often: they are the default), in random order,
    each in a random phrasing. Never empty."""
    clauses = []
    for attribute, value in attributes.values():
        default = (attribute, value) in (("medium", "photo"), ("tone", "colour"))
        if rng.random() < (mention * 0.5 if default else mention):
            options = phrases(attribute, value, unseen)
            clauses.append(options[rng.integers(len(options))])
    if not clauses:
        options = phrases("medium", attributes.medium, unseen)
        clauses.append(options[rng.integers(len(options))])
    order = rng.permutation(len(clauses))
    text = clauses[order[0]]
    for i in order[1:]:
        text += JOINERS[rng.integers(len(JOINERS))] + clauses[i]
    return text


def vocabulary() -> list[tuple[str, str]]:
    """Every (attribute, value) a caption can name, except the defaults (a colour photo)."""
    return [
        (attribute, value)
        for attribute, values in PHRASES.items()
        for value in values
        if (attribute, value) not in (("medium", "photo"), ("tone", "colour"))
    ]


def training_words() -> set[str]:
    """Every lower-cased word of the training phrasings (the vocabulary must hold these)."""
    words = set()
    for values in PHRASES.values():
        for table in values.values():
            for phrase in table.train:
                words.update(phrase.lower().replace(",", " ").split())
    return words
