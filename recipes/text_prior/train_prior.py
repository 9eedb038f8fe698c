"""Train the `StylePrior` on (caption, style embedding) pairs and measure it in embedding space.

    python recipes/text_prior/train_prior.py --pairs RUN/pairs --text RUN/text --out RUN/prior

Captions are drawn afresh for every step from each pair's measured attributes
(training/captions.py: a random subset of them, in random order and phrasing; a share of
empty captions teaches the unconditional embedding guidance starts from), so the prior sees
many phrasings of each portrait. People are split: `validation_share` of them never train and
give the numbers in `metrics.json`:

- `mse`: validation loss (standardised units; 1.0 is predicting the mean), with random
  captions and with every attribute mentioned;
- per attribute value: `carry`, how well the style embedding itself tells portraits with it
  from those without (ROC AUC of a linear discriminant fitted on training people, scored on
  validation people: an attribute the style input cannot carry cannot pass this path either),
  and `seen`/`unseen`, the share of the value's training / never-seen phrasings whose
  predicted embedding that discriminant puts on the attribute's side.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import PreTrainedTokenizerFast

from facestudio.evaluation.verification import roc_auc
from facestudio.model.style_prior import StylePrior
from facestudio.model.text_encoder import WordVectorEncoder, encode_prompts
from facestudio.training.captions import Attributes, caption, phrases, vocabulary


@dataclass
class PriorTrainingConfig:
    """Settings of one prior training run (defaults: the shipped candidate)."""

    steps: int = 800
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 0.01
    empty_caption: float = 0.1  # share of captions dropped to "" (the unconditional embedding)
    mention: float = 0.7  # probability that a caption names each measured attribute
    width: int = 64
    num_layers: int = 2
    num_heads: int = 4
    dropout: float = 0.1
    validation_share: float = 0.1
    seed: int = 0


def load_pairs(folder: Path) -> tuple[torch.Tensor, list[dict], str]:
    """Embeddings, attribute rows and the style space (`style_space_id`) they were made in."""
    path = folder / "pairs.safetensors"
    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as file:
        style_space = (file.metadata() or {}).get("style_space", "")
    rows = [json.loads(line) for line in (folder / "attributes.jsonl").open()]
    if len(rows) != len(tensors["embeddings"]):
        raise SystemExit(
            f"{folder}: {len(rows)} attribute rows for {len(tensors['embeddings'])} embeddings"
        )
    return tensors["embeddings"].float(), rows, style_space


def load_text(folder: Path):
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer")
    encoder = WordVectorEncoder.from_pretrained(folder / "text_encoder", use_safetensors=True)
    return tokenizer, encoder.float().eval()


def split_people(rows: list[dict], share: float, seed: int) -> np.ndarray:
    """True for rows whose person trains; a whole person (both twins) is on one side."""
    people = sorted({row["person"] or f"#{row['index']}" for row in rows})
    rng = np.random.default_rng(seed)
    held = set(rng.choice(people, size=max(1, round(share * len(people))), replace=False))
    return np.array([(row["person"] or f"#{row['index']}") not in held for row in rows])


def draw_captions(attributes: list[Attributes], rng, config: PriorTrainingConfig) -> list[str]:
    return [
        "" if rng.random() < config.empty_caption else caption(a, rng, config.mention)
        for a in attributes
    ]


def encode(texts: list[str], tokenizer, encoder) -> tuple[torch.Tensor, torch.Tensor]:
    encoded = encode_prompts(texts, tokenizer, encoder)
    return encoded.last_hidden_state, encoded.attention_mask


def train(
    embeddings,
    attributes,
    train_rows,
    tokenizer,
    encoder,
    config: PriorTrainingConfig,
    style_space="",
):
    """A trained `StylePrior` (eval mode) and its loss curve."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    targets = embeddings[train_rows]
    kept = [a for a, keep in zip(attributes, train_rows, strict=True) if keep]
    prior = StylePrior(
        text_dim=encoder.config.embedding_dim,
        embedding_dim=embeddings.shape[1],
        width=config.width,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        max_tokens=tokenizer.model_max_length,
        dropout=config.dropout,
        style_space=style_space,
    )
    prior.set_embedding_statistics(targets.mean(0), targets.std(0))
    optimiser = torch.optim.AdamW(
        prior.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    curve = []
    for step in range(config.steps):
        for group in optimiser.param_groups:  # cosine decay to 0
            group["lr"] = config.learning_rate * 0.5 * (1 + math.cos(math.pi * step / config.steps))
        batch = rng.integers(len(kept), size=config.batch_size)
        hidden, mask = encode(
            draw_captions([kept[i] for i in batch], rng, config), tokenizer, encoder
        )
        target = (targets[batch] - prior.embedding_mean) / prior.embedding_std
        loss = torch.nn.functional.mse_loss(prior.standardised(hidden, mask), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        curve.append(loss.item())
        if step % 100 == 0 or step == config.steps - 1:
            print(f"step {step}: loss {np.mean(curve[-100:]):.4f}", flush=True)
    return prior.eval(), curve


@torch.no_grad()
def predict(prior: StylePrior, texts: list[str], tokenizer, encoder, scale: float = 1.0):
    hidden, mask = encode(texts, tokenizer, encoder)
    return prior.guided(hidden, mask, scale)


@torch.no_grad()
def validation_mse(prior, embeddings, attributes, rows, tokenizer, encoder, mention, seed=1):
    """Standardised MSE on `rows` with captions drawn at `mention`."""
    rng = np.random.default_rng(seed)
    texts = [caption(attributes[i], rng, mention) for i in rows]
    predicted = predict(prior, texts, tokenizer, encoder)
    error = (predicted - embeddings[rows]) / prior.embedding_std
    return float(error.pow(2).mean())


def discriminant(x: np.ndarray, labels: np.ndarray, shrink: float = 0.1):
    """A linear discriminant (direction, threshold midway between the class means)."""
    positive, negative = x[labels].mean(0), x[~labels].mean(0)
    covariance = np.cov(x.T) + shrink * np.eye(x.shape[1])
    direction = np.linalg.solve(covariance, positive - negative)
    return direction, float((positive + negative) @ direction / 2)


def has_value(attributes: list[Attributes], attribute: str, value: str) -> np.ndarray:
    return np.array([getattr(a, attribute) == value for a in attributes])


def attribute_metrics(prior, embeddings, attributes, train_rows, tokenizer, encoder) -> dict:
    """Per (attribute, value): counts, carry AUC, seen and unseen phrasing agreement."""
    standard = ((embeddings - prior.embedding_mean) / prior.embedding_std).numpy()
    results = {}
    for attribute, value in vocabulary():
        labels = has_value(attributes, attribute, value)
        entry = {"train_count": int(labels[train_rows].sum())}
        if labels[train_rows].sum() < 5 or labels[~train_rows].sum() < 2:
            results[f"{attribute}={value}"] = entry | {"note": "too few portraits"}
            continue
        direction, threshold = discriminant(standard[train_rows], labels[train_rows])
        entry["carry"] = roc_auc(labels[~train_rows], standard[~train_rows] @ direction)
        for kind in ("seen", "unseen"):
            texts = list(phrases(attribute, value, unseen=kind == "unseen"))
            predicted = predict(prior, texts, tokenizer, encoder)
            score = ((predicted - prior.embedding_mean) / prior.embedding_std).numpy() @ direction
            entry[kind] = float((score > threshold).mean())
        results[f"{attribute}={value}"] = entry
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument(
        "--text", type=Path, required=True, help="folder with tokenizer/ and text_encoder/"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=PriorTrainingConfig.steps)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    config = PriorTrainingConfig(steps=args.steps)
    embeddings, rows, style_space = load_pairs(args.pairs)
    attributes = [Attributes.from_dict(r["attributes"]) for r in rows]
    tokenizer, encoder = load_text(args.text)
    train_rows = split_people(rows, config.validation_share, config.seed)
    started = time.time()
    prior, curve = train(
        embeddings, attributes, train_rows, tokenizer, encoder, config, style_space
    )
    validation = np.flatnonzero(~train_rows)
    metrics = {
        "config": asdict(config),
        "pairs": len(rows),
        "validation_pairs": len(validation),
        "seconds": round(time.time() - started, 1),
        "final_loss": float(np.mean(curve[-100:])),
        "mse": {
            "captions": validation_mse(
                prior, embeddings, attributes, validation, tokenizer, encoder, config.mention
            ),
            "every_attribute": validation_mse(
                prior, embeddings, attributes, validation, tokenizer, encoder, 1.0
            ),
        },
        "attributes": attribute_metrics(
            prior, embeddings, attributes, train_rows, tokenizer, encoder
        ),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    prior.half().save_pretrained(args.out / "prior", safe_serialization=True)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps({k: v for k, v in metrics.items() if k != "attributes"}, indent=2))


if __name__ == "__main__":
    main()
