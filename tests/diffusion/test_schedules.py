"""Noise schedules: one shared contract over the whole registry, and the closed form of q(x_t | x_0)."""

from __future__ import annotations

import pytest
import torch

from archlab.diffusion.schedules import SCHEDULES, NoiseSchedule, make_schedule
from archlab.errors import ConfigError


@pytest.mark.parametrize("name", sorted(SCHEDULES))
class TestEverySchedule:
    """The contract every registered schedule meets (a new one is tested by being registered)."""

    def test_abar_strictly_decreasing_inside_zero_one(self, name):
        for timesteps in (50, 1000):
            abar = make_schedule(name, timesteps).alphas_cumprod
            assert abar.shape == (timesteps,)
            assert (abar > 0).all() and (abar < 1).all()
            assert (abar[1:] < abar[:-1]).all()

    def test_betas_in_zero_one_and_nearly_all_noise_at_the_end(self, name):
        schedule = make_schedule(name, 1000)
        assert (schedule.betas > 0).all() and (schedule.betas < 1).all()
        assert schedule.alphas_cumprod[-1] < 1e-3  # x_T is (almost) pure noise
        assert schedule.alphas_cumprod[0] > 0.99  # x_0 is (almost) clean

    def test_no_parameters_and_serializable_by_name(self, name):
        schedule = make_schedule(name, 200)
        assert list(schedule.parameters()) == [] and schedule.state_dict() == {}
        again = NoiseSchedule.from_dict(schedule.to_dict())
        assert torch.equal(again.alphas_cumprod, schedule.alphas_cumprod)

    def test_q_sample_matches_the_closed_form_mean_and_variance(self, name):
        schedule = make_schedule(name, 1000)
        torch.manual_seed(0)
        x0 = torch.full((20000, 1, 2, 2), 0.7)
        for step in (10, 500, 990):
            t = torch.full((x0.shape[0],), step)
            x_t = schedule.q_sample(x0, t, torch.randn_like(x0))
            abar = float(schedule.alphas_cumprod[step])
            assert x_t.mean().item() == pytest.approx(abar**0.5 * 0.7, abs=0.01)
            assert x_t.var().item() == pytest.approx(1 - abar, abs=0.02 * max(1 - abar, 0.05))


def test_linear_is_ho_et_al():
    betas = make_schedule("linear", 1000).betas
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    assert torch.allclose(betas[1:] - betas[:-1], (betas[1] - betas[0]).expand(999))


def test_quadratic_has_linear_square_root():
    root = make_schedule("quadratic", 1000).betas.sqrt()
    assert torch.allclose(root[1:] - root[:-1], (root[1] - root[0]).expand(999))


def test_log_snr_is_linear_in_t():
    abar = make_schedule("log-snr", 1000).alphas_cumprod
    log_snr = (abar / (1 - abar)).log()
    assert log_snr[0].item() == pytest.approx(10.0, abs=1e-6) and log_snr[-1].item() == pytest.approx(-10.0, abs=1e-6)
    assert torch.allclose(log_snr[1:] - log_snr[:-1], (log_snr[1] - log_snr[0]).expand(999), atol=1e-6)


def test_cosine_clips_betas():
    assert make_schedule("cosine", 1000).betas.max().item() == pytest.approx(0.999)


def test_noise_level_lookup_inverts_abar():
    schedule = make_schedule("linear", 1000)
    abar = float(schedule.alphas_cumprod[300])
    assert schedule.index_for_noise_level(((1 - abar) / abar) ** 0.5) == 300


def test_unknown_schedule_and_bad_length_are_refused():
    with pytest.raises(ConfigError, match="Known schedules"):
        make_schedule("exponential")
    with pytest.raises(ConfigError, match="at least 2"):
        make_schedule("linear", 1)
