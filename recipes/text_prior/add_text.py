"""Give a FaceStudio model folder the small text path: `tokenizer`, `text_encoder`, `prior`.

    python recipes/text_prior/add_text.py --model MODEL --text RUN/text --prior RUN/prior/prior --out NEW_MODEL

Copies MODEL (a pipeline folder, or "bundled") to NEW_MODEL, adds the three components
(word-level tokenizer, `WordVectorEncoder`, `StylePrior`) and declares them in
`model_index.json`; the model's other files are copied byte for byte. Refuses a prior trained
for another style space (its `style_space` must be the model's style encoder's
`style_space_id`: a prior trained on v1's encoder would silently misguide v2). Then loads the new folder and turns a prompt into an embedding once.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from facestudio.model.style_prior import style_space_id
from facestudio.pipeline.model_info import resolve_model

COMPONENTS = {
    "tokenizer": ["transformers", "PreTrainedTokenizerFast"],
    "text_encoder": ["facestudio.model.text_encoder", "WordVectorEncoder"],
    "prior": ["facestudio.model.style_prior", "StylePrior"],
}


def check_style_space(model: Path, prior: Path) -> None:
    """The prior was trained on this model's style encoder (and so predicts its width)."""
    config = json.loads((prior / "config.json").read_text())
    if config.get("style_space") != style_space_id(model):
        raise SystemExit(
            f"the prior was trained on another style encoder than {model}'s; run "
            "make_pairs.py and train_prior.py with --model pointing at this model"
        )
    guidance = json.loads((model / "guidance" / "config.json").read_text())
    predicted = config["embedding_dim"]
    if predicted != guidance["style_dim"]:
        raise SystemExit(
            f"the prior predicts {predicted}-d embeddings but {model}'s guidance takes "
            f"{guidance['style_dim']}-d style embeddings; train the prior on this model's style encoder"
        )


def add_text(model: Path, text: Path, prior: Path, out: Path) -> Path:
    """Write `out`: a copy of `model` with the text components; returns `out`."""
    check_style_space(model, prior)
    if out.exists():
        raise SystemExit(f"'{out}' exists; give a new folder")
    shutil.copytree(model, out, ignore=shutil.ignore_patterns("__pycache__"))
    sources = {
        "tokenizer": text / "tokenizer",
        "text_encoder": text / "text_encoder",
        "prior": prior,
    }
    for name, source in sources.items():
        shutil.rmtree(out / name, ignore_errors=True)
        shutil.copytree(source, out / name)
    index_path = out / "model_index.json"
    index = json.loads(index_path.read_text())
    index |= COMPONENTS
    index["prior_scheduler"] = [None, None]  # a regression prior takes no sampling steps
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return out


def smoke_test(out: Path, prompt: str = "a pencil sketch, dark background") -> tuple[int, ...]:
    """Load the new folder and embed one prompt: the shape of the embedding."""
    from facestudio.model.text_prior import prompt_embeddings
    from facestudio.pipeline.pipeline import FaceStudioPipeline

    pipe = FaceStudioPipeline.from_pretrained(out)
    embedding = prompt_embeddings([prompt], pipe.tokenizer, pipe.text_encoder, pipe.prior, None)
    if embedding.shape[-1] != pipe.guidance.config.style_dim:
        raise SystemExit(f"the prior's embedding is {tuple(embedding.shape)}")
    return tuple(embedding.shape)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--text", type=Path, required=True)
    parser.add_argument("--prior", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    out = add_text(Path(resolve_model(args.model)), args.text, args.prior, args.out)
    print(f"{out}: text path added; a prompt embeds to {smoke_test(out)}")


if __name__ == "__main__":
    main()
