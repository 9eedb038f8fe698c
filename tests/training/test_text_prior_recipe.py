"""recipes/text_prior/train_prior.py: the prior learns what captions say about embeddings."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facestudio.model.text_encoder import WordVectorEncoder, word_tokenizer
from facestudio.training.captions import Attributes, training_words

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "text_prior"


@pytest.fixture(scope="module")
def train_prior():
    sys.path.insert(0, str(RECIPE))
    try:
        yield importlib.import_module("train_prior")
    finally:
        sys.path.remove(str(RECIPE))
        sys.modules.pop("train_prior", None)


def synthetic_pairs(count: int = 400):
    """Dark / light backgrounds whose style embeddings differ along one direction."""
    rng = np.random.default_rng(0)
    lights = rng.choice(["dark", "light", None], size=count)
    embeddings = torch.from_numpy(rng.normal(size=(count, 8)).astype(np.float32))
    embeddings[:, 0] += torch.tensor([{"dark": -3.0, "light": 3.0}.get(v, 0.0) for v in lights])
    attributes = [Attributes(background_light=v) for v in lights]
    rows = [{"person": f"p{i // 2}", "index": i} for i in range(count)]
    return embeddings, attributes, rows


def text_parts():
    words = sorted(training_words())
    vectors = np.random.default_rng(1).normal(size=(len(words), 12)).astype(np.float32)
    return word_tokenizer(words), WordVectorEncoder.from_vectors(vectors).eval()


def test_a_trained_prior_puts_phrasings_on_their_attributes_side(train_prior):
    embeddings, attributes, rows = synthetic_pairs()
    tokenizer, encoder = text_parts()
    train_rows = train_prior.split_people(rows, 0.2, seed=0)
    config = train_prior.PriorTrainingConfig(
        steps=150, batch_size=64, width=32, num_layers=1, learning_rate=3e-3, dropout=0.0
    )
    prior, curve = train_prior.train(
        embeddings, attributes, train_rows, tokenizer, encoder, config, "space"
    )
    assert prior.config.style_space == "space"
    # One of 8 dimensions is predictable, so the loss can only fall to about 0.9.
    assert np.mean(curve[-20:]) < np.mean(curve[:20]) - 0.05
    dark = train_prior.predict(prior, ["dark background"], tokenizer, encoder)[0, 0]
    light = train_prior.predict(prior, ["bright background"], tokenizer, encoder)[0, 0]
    assert dark < -1.0 < 1.0 < light
    metrics = train_prior.attribute_metrics(
        prior, embeddings, attributes, train_rows, tokenizer, encoder
    )
    assert metrics["background_light=dark"]["carry"] > 0.95
    assert metrics["background_light=dark"]["seen"] == 1.0
    assert metrics["background_light=light"]["seen"] == 1.0


def test_people_stay_on_one_side_of_the_split(train_prior):
    _, _, rows = synthetic_pairs()
    keep = train_prior.split_people(rows, 0.25, seed=3)
    by_person = {}
    for row, kept in zip(rows, keep, strict=True):
        by_person.setdefault(row["person"], set()).add(bool(kept))
    assert all(len(sides) == 1 for sides in by_person.values())
    assert 0.6 < keep.mean() < 0.9
