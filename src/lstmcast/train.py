"""Old import path of the training pipeline: it lives in ``lstmcast.pipelines.train`` (the flow) and
``lstmcast.forecasters.rnn.loop`` (the torch loop, devices and the lstm/gru artifact). These names
stay importable from here for code and tests written against earlier versions."""

from __future__ import annotations

from lstmcast.features import FeatureConfig
from lstmcast.forecasters.base import actual_close
from lstmcast.forecasters.rnn.loop import (
    EVAL_BATCH,
    EpochStats,
    Fitted,
    _torch_settings,
    describe_device,
    fit,
    resolve_device,
)
from lstmcast.pipelines.train import (
    DEVICES,
    OPTIONS,
    TrainReport,
    TrainSetup,
    compose,
    read_config_file,
    setup_from_options,
    train_series,
    validation_metrics,
)
from lstmcast.settings import ModelConfig, TrainConfig

__all__ = ["DEVICES", "EVAL_BATCH", "OPTIONS", "EpochStats", "FeatureConfig", "Fitted", "ModelConfig",
           "TrainConfig", "TrainReport", "TrainSetup", "_torch_settings", "actual_close", "compose",
           "describe_device", "fit", "read_config_file", "resolve_device", "setup_from_options", "train_series",
           "validation_metrics"]
