"""Diffusion models as three separate objects: a noise schedule (``schedules``), a denoising network (any
registered model taking ``(x_t, t[, labels])``) and a sampler (``samplers``), plus what a network predicts
(``predictions``), generation from a run (``pipeline``) and image enhancement (``enhance``)."""

from archlab.diffusion.predictions import PREDICTIONS, get_prediction
from archlab.diffusion.samplers import SAMPLERS, Denoiser, make_sampler, reverse
from archlab.diffusion.schedules import SCHEDULES, NoiseSchedule, make_schedule, register_schedule

__all__ = ["PREDICTIONS", "SAMPLERS", "SCHEDULES", "Denoiser", "NoiseSchedule", "get_prediction", "make_sampler",
           "make_schedule", "register_schedule", "reverse"]
