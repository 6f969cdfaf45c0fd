"""PruneOptions: every option of `edgeprune prune` in one frozen object, checked together when made; the command
line's choices are the registries'."""

import dataclasses

import click
import pytest

from edgeprune.core.errors import InvalidArgumentError
from edgeprune.prune.control import GATES
from edgeprune.prune.criteria import IMPORTANCE, METHODS
from edgeprune.prune.options import PruneOptions
from edgeprune.prune.proposers import GRANULARITIES, PROPOSERS, STRATEGIES


def test_the_command_lines_choices_are_the_registries():
    from edgeprune.cli import cli

    choices = {p.name: list(p.type.choices) for p in cli.commands["prune"].params
               if isinstance(p.type, click.Choice)}
    assert choices["method"] == list(METHODS)
    assert choices["importance"] == list(IMPORTANCE) == ["magnitude", "taylor", "qr"]
    assert choices["strategy"] == list(STRATEGIES) == [*PROPOSERS, "qr"]
    assert choices["granularity"] == list(GRANULARITIES) and choices["gate"] == list(GATES)


def test_from_cli_turns_the_preset_options_into_overrides_and_freezes():
    options = PruneOptions.from_cli({"model": "edsr", "out_dir": "run", "finetune_steps": 20, "max_iterations": None,
                                     "seed": 3, "target_mac": 0.6})
    assert dict(options.overrides) == {"finetune_steps": 20, "seed": 3} and str(options.out_dir) == "run"
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.target_mac = 0.5
    with pytest.raises(TypeError):
        options.overrides["seed"] = 4
    assert PruneOptions("edsr", "run").loop_target_mac == 0.8
    assert PruneOptions("edsr", "run", target_latency=0.7).loop_target_mac is None
    assert PruneOptions("edsr", "run").profile_spec == "host"
    assert PruneOptions("edsr", "run", channel_multiple=8).profile_spec == "none"
    assert PruneOptions("edsr", "run", strategy="qr").loop_strategy == "threshold"
    assert PruneOptions("edsr", "run", strategy="coarse").search == {"granularity": "both", "candidates": 8}


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "E"}, "--method must be one of A, B, C, D, got 'E'"),
    ({"gate": "peer"}, "--gate must be one of baseline, control, got 'peer'"),
    ({"target_mac": 1.0}, "target MAC must be strictly between 0 and 1"),
    ({"latency_profile": "p.json", "channel_multiple": 8}, "--channel-multiple and --latency-profile both"),
    ({"granularity": "kernel"}, "--granularity and --candidates set the coarse search"),
    ({"one_shot": True}, "--one-shot needs --channel-ratio"),
    ({"one_shot": True, "channel_ratio": 0.5, "method": "A"}, "--method and --importance set the iterative loop"),
    ({"one_shot": True, "channel_ratio": 0.5, "overrides": {"seed": 2}}, "draws nothing: drop --seed"),
    ({"channel_ratio": 0.5}, "--channel-ratio and --input-size go with --one-shot"),
    ({"target_latency": 0.5, "latency_profile": "none"}, "--target-latency needs a latency profile"),
    ({"strategy": "qr", "gate": "control"}, "--strategy qr prunes once without a gate"),
    ({"recover_steps": 5}, "--recover-steps fine-tunes the QR strategy's reconstruction"),
    ({"distill": -1.0}, "the --distill weight must be a finite number >= 0 (how much the L1 distance to the "
                        "unpruned baseline's output weighs"),
    ({"distill": float("nan")}, "the --distill weight must be a finite number >= 0"),
    ({"one_shot": True, "channel_ratio": 0.5, "distill": 1.0}, "--one-shot does not train; drop one"),
    ({"strategy": "qr", "target_mac": 0.5, "distill": 1.0}, "--strategy qr fine-tunes only with --recover-steps N"),
])
def test_options_that_do_not_go_together_are_refused_with_the_option_named(kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PruneOptions("edsr", "run", **kwargs)
