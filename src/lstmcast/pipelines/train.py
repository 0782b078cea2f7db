"""Train a stored series and save the run: store -> prepared rows -> forecaster -> validation skill -> registry.

Three parts, so that a worker process can do the middle one alone:

* ``load_series`` (driver): the stored frame, its manifest and the prepared rows;
* ``fit_artifact`` (anywhere): fit the family on the prepared rows and return an ``Artifact``
  (``Fitted.state()`` plus what the fit saw), plain arrays and JSON that travel between processes;
* ``save_trained`` (driver): validation metrics, the run folder, and ``current`` when asked.

``train_series`` runs the three in this process. No torch here (the torch families are imported by
``forecasters`` when used).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lstmcast import features as F
from lstmcast.errors import DataError
from lstmcast.features import FeatureConfig, Prepared
from lstmcast.forecasters.base import record_fields
from lstmcast.settings import ModelConfig, Settings, TrainConfig

if TYPE_CHECKING:
    import pandas as pd

    from lstmcast.data.store import SeriesKey, Store
    from lstmcast.forecasters.base import Fitted
    from lstmcast.registry import RunInfo

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")

# option name -> the part of the settings it belongs to (all of them are settings.Settings fields)
OPTIONS: dict[str, str] = {"interval": "series", **{k: "settings" for k in Settings.model_fields}}


# -- options: flags and config files ------------------------------------------------------------


@dataclass(frozen=True)
class TrainSetup:
    interval: str = "1d"
    settings: Settings = field(default_factory=Settings)

    @property
    def features(self) -> FeatureConfig:
        return FeatureConfig.from_settings(self.settings)

    @property
    def model(self) -> ModelConfig:
        return self.settings.network()

    @property
    def train(self) -> TrainConfig:
        return self.settings.training()

    @property
    def family(self) -> str:
        return self.settings.family


def read_config_file(path: Path) -> dict[str, Any]:
    """The ``[train]`` (or ``[defaults]``) table of a TOML file, checked against the settings."""
    from lstmcast.settings import read_table

    return read_table(path)[0]


def setup_from_options(options: Mapping[str, Any], *, where: str = "options") -> TrainSetup:
    """The setup from a flat mapping of option names (flags over file values, already merged)."""
    from lstmcast.settings import build

    opts = {k.replace("-", "_"): v for k, v in options.items() if v is not None}
    interval = opts.pop("interval", "1d")
    return TrainSetup(interval=interval, settings=build(opts, where=where))


def compose(*, features: FeatureConfig | None = None, model: ModelConfig | None = None,
            train: TrainConfig | None = None, family: str | None = None) -> Settings:
    """One ``Settings`` from its parts (each defaulting to the defaults)."""
    values: dict[str, Any] = {}
    for part in (features, model, train):
        if part is not None:
            values.update(part.to_dict())
    if family is not None:
        values["family"] = family
    return Settings.model_validate({**Settings().model_dump(), **values})


def resolve_device(name: str) -> Any:
    """The torch device for ``name`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``); a named
    device that is missing is a ``ModelError``. Imports torch (through the RNN loop) when called."""
    from lstmcast.forecasters.rnn.loop import resolve_device as resolve

    return resolve(name)


# -- the three parts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesData:
    """A stored series ready to fit: read by the driver, its ``prepared`` rows shipped to workers."""

    key: SeriesKey
    manifest: dict[str, Any]
    frame: pd.DataFrame
    kind: str
    prepared: Prepared


def load_series(store: Store, spec: str, *, interval: str, settings: Settings) -> SeriesData:
    """Read and prepare a stored series for ``settings`` (fails on a missing device first)."""
    key = store.resolve(spec, interval)
    manifest = store.manifest(key)
    frame = store.load(key)
    kind = manifest.get("kind", F.KIND_PRICE)
    if len(frame) == 0:
        raise DataError(f"{key} has no bars")
    if settings.family in ("lstm", "gru"):
        from lstmcast.forecasters.rnn.loop import resolve_device

        resolve_device(settings.device)  # fail on a missing device before the data work
    prepared = F.prepare(frame, kind=kind, features=FeatureConfig.from_settings(settings))
    return SeriesData(key=key, manifest=manifest, frame=frame, kind=kind, prepared=prepared)


# the attributes of a fitted artifact that are not its state: what the fit saw (every family's
# artifact extends ``forecasters.base.FitRecord``)
_RECORD = record_fields()


@dataclass(frozen=True)
class Artifact:
    """A fitted artifact as data: ``Fitted.state()`` (tensors + JSON) and what its fit saw.

    Plain numpy arrays and dicts, so it crosses process (and machine) boundaries; ``fitted()``
    rebuilds the artifact with ``forecasters.load_artifact``.
    """

    family: str
    tensors: dict[str, np.ndarray]
    meta: dict[str, Any]
    record: dict[str, Any]

    @classmethod
    def of(cls, fitted: Fitted) -> Artifact:
        tensors, meta = fitted.state()
        record = {k: getattr(fitted, k) for k in _RECORD}
        return cls(family=fitted.family, tensors=tensors, meta=meta, record=record)

    def fitted(self) -> Fitted:
        from lstmcast.forecasters import load_artifact

        f = load_artifact(self.family, self.tensors, self.meta)
        for k, v in self.record.items():
            if k == "device" and self.family in ("lstm", "gru"):
                continue  # the rebuilt module lives on this process's device
            setattr(f, k, v)
        return f


def fit_artifact(prepared: Prepared, settings: Settings, *,
                 progress: Callable[[Any], None] | None = None) -> Fitted:
    """Fit ``settings.family`` on the prepared rows (reads and writes nothing on disk)."""
    from lstmcast.forecasters import forecaster

    return forecaster(settings).fit(prepared, progress=progress)


def fit_task(payload: tuple[Prepared, Settings], shared: Any = None) -> Artifact:
    """An executor task: fit one series' prepared rows with its settings, return the artifact as data.

    Runs in a worker process (or on a Ray node): reads and writes nothing on disk.
    """
    prepared, settings = payload
    return Artifact.of(fit_artifact(prepared, settings))


def validation_metrics(fitted: Fitted, prepared: Prepared) -> dict[str, dict[str, float]]:
    """Model and naive (last close) on the validation windows: MAE, RMSE, MASE, direction.

    The MASE scale is the naive 1-step MAE of close over the last ``MASE_SCALE_WINDOW`` training
    rows (in-sample; recent, so that a series that grew 50-fold is not scaled by its early bars).
    """
    from lstmcast.evaluate.metrics import (
        MASE_SCALE_WINDOW,
        beats_naive,
        diebold_mariano,
        naive_scale,
        point_metrics,
    )

    if len(fitted.val_origins) == 0:
        return {}
    last = prepared.close[fitted.val_origins]
    naive = np.repeat(last[:, None], fitted.features.horizon, axis=1)
    scale = naive_scale(prepared.close[max(fitted.start, fitted.train_end - MASE_SCALE_WINDOW) : fitted.train_end])
    # one loss per origin (mean absolute error over the steps), as in the backtest: overlapping
    # h-step errors are autocorrelated up to lag h-1, which is what DM's horizon accounts for
    stat, p = diebold_mariano(
        np.abs(fitted.val_actual - fitted.val_pred).mean(axis=1),
        np.abs(fitted.val_actual - naive).mean(axis=1),
        horizon=fitted.features.horizon,
        power=1,
    )
    model_m = point_metrics(fitted.val_actual, fitted.val_pred, last=last, scale=scale).to_dict()
    naive_m = point_metrics(fitted.val_actual, naive, last=last, scale=scale).to_dict()
    return {
        "model": model_m,
        "naive": naive_m,
        "dm": {"stat": stat, "p": p, "beats_naive": beats_naive(model_m["mae"], naive_m["mae"], p)},
    }


@dataclass
class TrainReport:
    key: SeriesKey
    fitted: Fitted
    metrics: dict[str, dict[str, float]]  # {"model": PointMetrics dict, "naive": ...}
    beats_naive: bool
    run: RunInfo
    promoted: bool
    data_info: dict[str, Any]
    device: str
    settings: Settings = field(default_factory=Settings)

    @property
    def interrupted(self) -> bool:
        return self.fitted.interrupted

    @property
    def incomplete_reason(self) -> str | None:
        """Why the run was saved ``incomplete`` (not a real model, never current), or None."""
        return self.run.incomplete_reason

    def to_dict(self) -> dict[str, Any]:
        f = self.fitted
        return {
            "series": self.key.spec,
            "interval": self.key.interval,
            "run_id": self.run.run_id,
            "path": str(self.run.path),
            "promoted": self.promoted,
            "interrupted": f.interrupted,
            "status": self.run.status,
            "incomplete_reason": self.incomplete_reason,
            "device": self.device,
            "seconds": round(f.seconds, 3),
            "best_epoch": f.best_epoch,
            "epochs_run": len(f.history),
            "validation_origins": len(f.val_origins),
            "metrics": self.metrics,
            "beats_naive": self.beats_naive,
            "data": self.data_info,
            "family": f.family,
            "features": f.features.to_dict(),
            "model": self.settings.network().to_dict() if f.family in ("lstm", "gru") else f.state()[1]["model"],
            "train": self.settings.training().to_dict(),
            "history": [s.to_dict() for s in f.history],
        }


def save_trained(data_dir: Path, data: SeriesData, fitted: Fitted, settings: Settings, *,
                 promote: bool = True) -> TrainReport:
    """Score ``fitted`` on its validation windows and save it as a run (current when ``promote``
    and it completed). The driver's part: every write happens here, under the registry's lock."""
    from lstmcast import registry

    metrics = validation_metrics(fitted, data.prepared)
    beats = bool(metrics) and metrics["dm"]["beats_naive"]
    frame, manifest = data.frame, data.manifest
    vo = fitted.val_origins
    data_info = {
        "kind": data.kind,
        "market": manifest.get("market"),
        "rows": len(frame),
        "first": frame.index[0].isoformat(),
        "last": frame.index[-1].isoformat(),
        "train_end": frame.index[fitted.train_end - 1].isoformat(),
        "val_first_origin": frame.index[vo[0]].isoformat() if len(vo) else None,
        "val_last_origin": frame.index[vo[-1]].isoformat() if len(vo) else None,
        "sha256": manifest.get("sha256"),
        "file": manifest.get("file"),
        "close_column": "close",
    }
    run = registry.save_run(data_dir, data.key, fitted, metrics=metrics, data_info=data_info,
                            promote=promote and not fitted.interrupted)
    promoted = promote and run.status == registry.STATUS_COMPLETE
    return TrainReport(key=data.key, fitted=fitted, metrics=metrics, beats_naive=beats, run=run, promoted=promoted,
                       data_info=data_info, device=fitted.device, settings=settings)


def train_series(
    store: Store,
    spec: str,
    *,
    interval: str = "1d",
    features: FeatureConfig | None = None,
    model: ModelConfig | None = None,
    train: TrainConfig | None = None,
    promote: bool = True,
    progress: Callable[[Any], None] | None = None,
    family: str | None = None,
    settings: Settings | None = None,
) -> TrainReport:
    """Train on a stored series and save the run; make it current when ``promote`` and it completed.

    ``settings`` (one ``Settings``) or the ``features`` / ``model`` / ``train`` parts plus ``family``.
    An interrupted run (Ctrl-C) is saved, marked interrupted, and never made current.
    """
    if settings is None:
        settings = compose(features=features, model=model, train=train, family=family)
    data = load_series(store, spec, interval=interval, settings=settings)
    fitted = fit_artifact(data.prepared, settings, progress=progress)
    return save_trained(store.root, data, fitted, settings, promote=promote)


# -- the settings of `lstmcast run` ----------------------------------------------------------------


def run_settings(settings: Settings, **train_options: Any) -> Settings:
    """One watchlist entry's effective settings for ``lstmcast run``.

    ``train_options`` (e.g. ``threads=1``) replace those settings; without a ``threads`` setting
    the run uses ``settings.default_run_threads()`` per process rather than torch's default.
    """
    from lstmcast.settings import default_run_threads

    s = settings.with_values(train_options) if train_options else settings
    if s.threads is None:
        s = s.with_values({"threads": default_run_threads()})
    return s


def train_setup(settings: Settings, **train_options: Any) -> tuple[FeatureConfig, ModelConfig, TrainConfig]:
    """(FeatureConfig, ModelConfig, TrainConfig) of ``run_settings``."""
    s = run_settings(settings, **train_options)
    return FeatureConfig.from_settings(s), s.network(), s.training()


# -- many series at once, through an executor ------------------------------------------------------


def train_many(
    store: Store,
    items: list[tuple[str, SeriesKey, Settings]],
    *,
    executor: Any,
    promote: bool = False,
    log: Any = None,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Train ``(name, key, settings)`` items as tasks of ``executor`` (an ``executor.Executor``) and
    save each run; returns ``{name: TrainReport, or the exception that item raised}``.

    This process reads and prepares each series and does every write (``save_trained``, under the
    registry's lock); workers get the prepared arrays and the settings and return an ``Artifact``.
    Each task's seed is ``executor.task_seed(seed, series, interval, family)`` and its torch
    threads the executor's budget per task (unless the settings name them), so serial, local and
    ray save the same runs. ``on_progress(done, total, name)`` is called as each task finishes.
    """
    from lstmcast import executor as X
    from lstmcast.errors import ModelError

    results: dict[str, Any] = {}
    loaded: dict[str, tuple[SeriesData, Settings]] = {}
    tasks: list[Any] = []
    for name, key, settings in items:
        try:
            s = settings.with_values({"threads": settings.threads or executor.threads})
            s = s.with_values({"seed": X.task_seed(s.seed, key.spec, key.interval, s.family)})
            data = load_series(store, key.spec, interval=key.interval, settings=s)
        except Exception as e:  # this item fails; the others go on
            results[name] = e
            continue
        loaded[name] = (data, s)
        tasks.append(X.Task(name, (data.prepared, s)))
    for name, result in executor.map(fit_task, tasks, on_progress=on_progress):
        if isinstance(result, X.TaskFailure):
            if result.traceback and log is not None:
                log.debug("%s: the training task failed:\n%s", name, result.traceback)
            lost = " (its worker process died)" if result.kind == "worker-lost" else ""
            results[name] = ModelError(f"{result.error}{lost}")
            continue
        data, s = loaded[name]
        try:
            results[name] = save_trained(store.root, data, result.fitted(), s, promote=promote)
        except Exception as e:
            results[name] = e
    return results
