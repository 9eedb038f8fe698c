"""Two-person training samples: how portraits are paired and composed, and that a pair step
denoises with each half routed to its own person."""

from __future__ import annotations

import pytest
import torch

from facestudio.errors import FaceStudioError
from facestudio.model.multi_identity_attention import ROUTING_KWARG, level_size
from facestudio.training.pairs import pair_regions, pair_routing, partners, side_by_side


@pytest.mark.parametrize("size", [2, 3, 8, 17])
def test_every_sample_is_partnered_once_and_never_with_itself(size):
    for seed in range(5):
        partner = partners(size, torch.Generator().manual_seed(seed))
        assert sorted(partner.tolist()) == list(range(size))  # each one is somebody's partner
        assert not (partner == torch.arange(size)).any()


def test_a_single_portrait_cannot_be_paired():
    with pytest.raises(FaceStudioError, match="at least 2"):
        partners(1, torch.Generator())


def test_side_by_side_puts_centre_halves_of_sample_and_partner_together():
    columns = torch.arange(8.0).expand(3, 1, 2, 8)  # each value is its column
    maps = columns + 100 * torch.arange(3.0).view(3, 1, 1, 1)  # and 100 × its sample
    composed = side_by_side(maps, torch.tensor([2, 0, 1]))
    assert composed.shape == maps.shape
    assert composed[0, 0, 0].tolist() == [2, 3, 4, 5, 202, 203, 204, 205]
    assert composed[1, 0, 1].tolist() == [102, 103, 104, 105, 2, 3, 4, 5]
    with pytest.raises(FaceStudioError, match="divisible by 4"):
        side_by_side(torch.zeros(2, 1, 4, 6), torch.tensor([1, 0]))


def test_pair_routing_gives_each_half_its_own_person_at_every_level():
    owner = torch.tensor([0, 0, 1, 1])
    routing = pair_routing(owner, (8, 8), levels=3)
    assert routing.num_people == 2
    for level, regions in enumerate(routing.regions):
        height, width = level_size((8, 8), level)
        expected = pair_regions(height, width)
        assert torch.equal(regions[0], expected)
        assert not (regions[0, 0] & regions[0, 1]).any()
        assert (regions[0, 0] | regions[0, 1]).all()  # no cell is left as background


@pytest.mark.slow
def test_a_pair_step_routes_two_people_and_trains(tmp_path, eight_photos_prepared):
    from facestudio.training.loop import initial_pipeline
    from facestudio.training.objectives import Objective
    from tests.training.conftest import tiny_config
    from tests.training.test_identity_loss import _first_batch

    batch = _first_batch(eight_photos_prepared)
    calls = []

    def spy(module, args, kwargs):
        calls.append((kwargs["encoder_hidden_states"].shape, kwargs["cross_attention_kwargs"]))

    tokens = {}
    for probability in (0.0, 1.0):
        config = tiny_config(tmp_path / str(probability), eight_photos_prepared)
        config.train.pair_probability = probability
        objective = Objective.build(initial_pipeline(config.model), config)
        handle = objective.unet.register_forward_pre_hook(spy, with_kwargs=True)
        loss = objective.loss(batch, torch.Generator().manual_seed(0))
        handle.remove()
        loss.backward()
        assert torch.isfinite(loss)
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in objective.parameters())
        tokens[probability], kwargs = calls[-1]
        if probability == 0.0:
            assert kwargs is None  # one-person steps: no routing
            continue
        routing = kwargs[ROUTING_KWARG]
        assert routing.num_people == 2 and routing.batch_size == 1
        assert routing.num_tokens == tokens[probability][1]
        assert (routing.token_owner == 0).sum() == (routing.token_owner == 1).sum()
    # A pair's context holds both people's tokens: twice a one-person context.
    assert tokens[1.0][1] == 2 * tokens[0.0][1]


def test_pairs_need_a_batch_of_two(tmp_path, eight_photos_prepared):
    from facestudio.training.objectives import Objective
    from tests.training.conftest import tiny_config

    config = tiny_config(tmp_path, eight_photos_prepared, batch_size=1, pair_probability=0.5)
    with pytest.raises(FaceStudioError, match="batch_size to 2"):
        Objective.lookup(config.train.target).check(config)
