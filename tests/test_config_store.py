"""Structured configs: schemas derived from the classes that own the options, checked when Hydra
composes the config (names and types) and when the groups are instantiated (ranges)."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from neuralops.config_store import conforms, make_schema, model_schema, one_line, register, validate
from neuralops.errors import ConfigError
from neuralops.models import available, model_class
from neuralops.training.optim import AdamWConfig, CosineSchedule, StepSchedule, build_optimizer, build_scheduler

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def composed(*overrides: str):
    register()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [
        (3, int, True),
        (True, int, False),  # a bool is not a count
        (3, float, True),
        ("3", float, False),
        ([4, 5], int | Sequence[int], True),
        ([4, "x"], int | Sequence[int], False),
        ("abc", int | Sequence[int], False),
        (None, Optional[int | Sequence[int]], True),
        ("cell", str | Sequence[str], True),
        (["cell", 3], str | Sequence[str], False),
        ({"factorization": "cp"}, dict | None, True),
        ([1, 2], tuple[int, ...], True),
    ],
)
def test_conforms_matches_the_annotation(value, annotation, expected):
    assert conforms(value, annotation) is expected


def test_make_schema_types_what_omegaconf_can_and_checks_the_rest():
    schema = make_schema(
        "Example",
        "example",
        [("count", int, 2), ("modes", int | Sequence[int], inspect.Parameter.empty), ("ratio", Optional[float], None)],
    )
    types = {f.name: f.type for f in dataclasses.fields(schema)}
    assert types == {"count": int, "modes": Any, "ratio": Optional[float]}
    config = OmegaConf.merge(OmegaConf.structured(schema), {"modes": [3, 4]})
    assert OmegaConf.to_object(config).modes == [3, 4]
    with pytest.raises(Exception, match="could not be converted"):
        OmegaConf.merge(OmegaConf.structured(schema), {"count": "abc"})
    with pytest.raises(ConfigError, match=r"example\.modes='abc' is not a valid value: expected int \| Sequence\[int\]"):
        schema(count=1, modes="abc", ratio=None)


@pytest.mark.parametrize("name", available())
def test_every_model_schema_lists_exactly_its_constructor_arguments(name):
    parameters = [p for p in inspect.signature(model_class(name).__init__).parameters if p != "self"]
    assert [f.name for f in dataclasses.fields(model_schema(name))] == ["name", *parameters]


@pytest.mark.parametrize(
    "model", sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml"))
)
def test_every_shipped_model_config_composes_and_validates(model):
    cfg = composed(f"model={model}")
    validate(cfg)
    assert OmegaConf.get_type(cfg.model).__name__.endswith("Config")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer.epochs=abc"], "trainer.epochs: Value 'abc' of type 'str' could not be converted to Integer"),
        (["model.n_mode=4"], "model.n_mode is not an option of FNOConfig; valid options: name, in_channels"),
        (["optim.momentum=0.9"], "optim.momentum is not an option of AdamWConfig"),
        (["optim.scheduler.step_size=3"], "optim.scheduler.step_size is not an option of CosineSchedule"),
        (["model=fnox"], "'model/fnox' is not a config; available model options: deeponet, fno"),
    ],
)
def test_composition_errors_read_as_one_line(overrides, message):
    with pytest.raises(Exception) as info:
        composed(*overrides)
    line = one_line(info.value)
    assert message in line and "\n" not in line


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.n_modes=abc"], "model.n_modes='abc' is not a valid value"),
        (["optim.lr=-1"], "optim.lr must be a positive finite number"),
        (["optim/scheduler=step", "optim.scheduler.step_size=0"], "optim.scheduler.step_size must be >= 1"),
        (["data.max_train_samples=0"], "data.max_train_samples=0 must be >= 1"),
        (["data.val_fraction=1.5"], "data.val_fraction=1.5 must be in [0, 1)"),
        (["model=mgno_resampled", "model.model.hidden_channels=abc"], "model.model.hidden_channels"),
    ],
)
def test_range_and_value_errors_name_the_option(overrides, message):
    with pytest.raises(ConfigError) as info:
        validate(composed(*overrides))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_schedule_switch_and_options_reach_torch():
    cfg = composed("optim/scheduler=step", "optim.scheduler.step_size=7", "optim.scheduler.gamma=0.25")
    validate(cfg)
    options = OmegaConf.to_object(cfg.optim)
    assert isinstance(options, AdamWConfig) and isinstance(options.scheduler, StepSchedule)
    import torch

    weight = torch.nn.Parameter(torch.zeros(3))
    optimizer = build_optimizer([weight], options)
    scheduler, interval = build_scheduler(optimizer, options, epochs=20, steps_per_epoch=4)
    assert interval == "epoch" and isinstance(optimizer, torch.optim.AdamW)
    for _ in range(7):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(options.lr * 0.25)


def test_plain_mappings_are_checked_like_composed_configs():
    import torch

    weight = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ConfigError, match=r"optim: option\(s\) \['momentum'\] do not apply to 'adam'"):
        build_optimizer([weight], {"name": "adam", "lr": 1e-3, "momentum": 0.9})
    schedule = AdamWConfig(scheduler={"name": "cosine", "warmup_fraction": 0.1}).scheduler
    assert schedule == CosineSchedule(warmup_fraction=0.1)
