"""`trainer=fsdp`: refused in one line where there is no GPU (torch's FSDP and Lightning refuse the CPU, checked with
torch 2.14.1 and pytorch-lightning 2.6.6); on GPUs its preset builds Lightning's FSDPStrategy with full state dicts.
The GPU side is checked here as far as a machine without GPU can: the config checks (with a GPU count pretended) and
the strategy object; training under FSDP itself needs GPUs."""

from __future__ import annotations

import pytest
import torch
from checks import compose, one_line

from attnkit import ConfigError, cli
from attnkit.nn import DecoderBlock, EncoderBlock
from attnkit.train import trainer
from attnkit.train.ema import EMA, whole_weights


@pytest.fixture(scope="module")
def fsdp() -> dict:
    return compose("trainer=fsdp")["trainer"]


def gpus(monkeypatch, count: int) -> None:
    monkeypatch.setattr(trainer, "torch_cuda_devices", lambda: count)


def test_refused_without_gpus(fsdp, monkeypatch) -> None:
    gpus(monkeypatch, 0)
    with pytest.raises(ConfigError) as exc:
        trainer.check_trainer_config(fsdp)
    message = one_line(exc)
    assert message.startswith("trainer.strategy=fsdp (FSDP) needs GPUs and this machine has none")
    assert message.endswith("use trainer=ddp trainer.accelerator=cpu trainer.devices=2")
    with pytest.raises(ConfigError, match="needs GPUs"):  # by name too
        trainer.check_trainer_config({**fsdp, "strategy": "fsdp"})


def test_accepted_on_gpus_and_refused_on_their_cpu(fsdp, monkeypatch) -> None:
    gpus(monkeypatch, 2)
    trainer.check_trainer_config(fsdp)
    with pytest.raises(ConfigError) as exc:
        trainer.check_trainer_config({**fsdp, "accelerator": "cpu", "devices": 1})
    assert one_line(exc).startswith("trainer.strategy=fsdp (FSDP) runs on GPUs only; set trainer.accelerator=gpu")
    with pytest.raises(ConfigError) as exc:  # Lightning would refuse at the first step, with a traceback
        trainer.check_trainer_config({**fsdp, "gradient_clip_val": 1.0})
    assert "trainer.gradient_clip_val=1.0 clips by norm, which Lightning cannot do under FSDP" in one_line(exc)
    trainer.check_trainer_config({**fsdp, "gradient_clip_val": 1.0, "gradient_clip_algorithm": "value"})


def test_the_preset_builds_lightnings_fsdp_strategy(fsdp) -> None:
    from pytorch_lightning.strategies import FSDPStrategy
    from torch.distributed.fsdp import ShardingStrategy

    assert fsdp["accelerator"] == "gpu" and fsdp["devices"] == 2 and fsdp["num_nodes"] == 1
    assert fsdp["gradient_clip_val"] is None
    strategy = trainer.make_strategy(fsdp["strategy"])
    assert type(strategy) is FSDPStrategy
    assert strategy.sharding_strategy == ShardingStrategy.FULL_SHARD
    assert strategy._state_dict_type == "full"  # one checkpoint file: mode=test and predict read it as any other
    policy = strategy.kwargs["auto_wrap_policy"]
    assert set(policy._module_classes) == {EncoderBlock, DecoderBlock}
    assert trainer.strategy_name(fsdp["strategy"]) == "fsdp" and trainer.make_strategy("ddp") == "ddp"


@pytest.mark.parametrize(
    ("node", "fragment"),
    [
        ({"sharding_strategy": "FULL_SHARD"}, "trainer.strategy as a mapping needs _target_"),
        ({"_target_": "pytorch_lightning.strategies.NoSuchStrategy"}, "trainer.strategy (pytorch_lightning."),
        ({"_target_": "pytorch_lightning.strategies.FSDPStrategy", "sharding_strategy": "HALF"}, "refused its config"),
    ],
)
def test_a_bad_strategy_mapping_is_one_line(node, fragment) -> None:
    with pytest.raises(ConfigError) as exc:
        trainer.make_strategy(node)
    assert fragment in one_line(exc)


def test_multirun_refuses_fsdp_jobs_unless_slurm_starts_the_processes() -> None:
    cfg = compose("trainer=fsdp")
    from omegaconf import OmegaConf

    node = OmegaConf.create(cfg)
    with pytest.raises(ConfigError, match="a multirun cannot run trainer.strategy=fsdp jobs on 2 devices"):
        cli.check_multirun_job(node)
    cli.check_multirun_job(node, launcher="slurm")  # submitit starts one task per GPU; each is a rank
    cli.check_multirun_job(node, launcher="submitit_slurm")


def test_moving_average_outside_fsdp_updates_as_before() -> None:
    """`whole_weights` gathers the shards only under FSDP; elsewhere the update is the plain one."""
    model = torch.nn.Linear(2, 2)
    ema = EMA(model, decay=0.5, warmup=False)
    start = ema.module.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    with whole_weights(model):
        ema.update(model)
    with whole_weights(None):
        pass
    torch.testing.assert_close(ema.module.weight, 0.5 * start + 0.5 * model.weight)
