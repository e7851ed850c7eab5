"""Config flags: dotted and flat forms, enums, tuples, booleans, and the validation errors."""
from __future__ import annotations

import argparse

import pytest

from training.config import (ConfigError, EncoderKind, LoaderBackend, LossWeighting, TrainConfig,
                             add_config_arguments, config_from_args)


def parse(*argv: str) -> TrainConfig:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(list(argv)))


def test_defaults_follow_the_spec():
    cfg = parse()
    assert cfg.model.layers == 1 and cfg.model.attention_heads == 8 and cfg.model.gfae
    assert cfg.optim.loss_weighting is LossWeighting.GRADNORM and cfg.optim.gradnorm_alpha == 1.0
    assert cfg.data.loader is LoaderBackend.ARROW


def test_flat_and_dotted_flags_override_defaults():
    cfg = parse("--epochs", "2", "--model.id_dim", "64", "--encoder", "graphsage", "--shared-hidden", "8", "4",
                "--no-gfae", "--loss-weighting", "fixed", "--loader", "arrow", "--version", "3", "--model", "e2e_grec")
    assert cfg.run.epochs == 2 and cfg.model.id_dim == 64 and cfg.model.encoder is EncoderKind.GRAPHSAGE
    assert cfg.model.shared_hidden == (8, 4) and not cfg.model.gfae and cfg.data.version == 3
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg  # what run.json stores round-trips
    assert parse("--run-id", "r7").data.run == parse("--run", "r7").data.run == "r7"


@pytest.mark.parametrize("argv,message", [
    (["--run", "r1", "--version", "2"], "at most one of --run, --version, --timestamp"),
    (["--no-gfae"], "add --loss-weighting fixed"),
    (["--layers", "2"], "exactly K = 1"),
    (["--attention-dim", "30"], "divisible by --attention-heads 8"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
])
def test_invalid_settings_are_refused_with_the_flag_named(argv, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse(*argv)
