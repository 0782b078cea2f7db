"""One readable training loop, and the "train a stored series and save a run" flow.

The loop keeps every tensor on the device: the scaled feature matrix is uploaded once, look-back
windows are an ``unfold`` view of it, and each epoch draws a permutation of window indices and
slices batches from it. There is no DataLoader and no per-sample Python.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lstmcast import features as F
from lstmcast.errors import ConfigError, DataError, ModelError
from lstmcast.features import FeatureConfig, Prepared, Scaler
from lstmcast.settings import DEVICE_PATTERN, ModelConfig, Settings, TrainConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lstmcast.checkpoint import RunInfo
    from lstmcast.data.store import SeriesKey, Store

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
EVAL_BATCH = 4096


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    epochs: int  # planned
    train_loss: float
    val_loss: float  # NaN without a validation split
    lr: float
    seconds: float
    windows: int  # training windows seen this epoch
    best: bool  # this epoch's weights are the best so far

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- devices ---------------------------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; a named device that is missing is an error."""
    import torch

    if not re.match(DEVICE_PATTERN, str(name)):
        raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps (got {name!r})")
    has_mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        why = "this PyTorch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise ModelError(
            f"--device {name} requested but CUDA is not available ({why}, torch {torch.__version__}); "
            "use --device cpu or --device auto"
        )
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise ModelError(
            f"--device {name} requested but only {torch.cuda.device_count()} CUDA device(s) are visible "
            f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})"
        )
    if name == "mps" and not has_mps:
        raise ModelError(
            "--device mps requested but Apple MPS is not available on this machine; "
            "use --device cpu or --device auto"
        )
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        return f"cuda:{idx} ({torch.cuda.get_device_name(idx)}, cuDNN {cudnn})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


@contextlib.contextmanager
def _torch_settings(train: TrainConfig, device: torch.device) -> Iterator[None]:
    """Apply seed, threads and determinism for one fit, and put torch's global state back afterwards."""
    import torch

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_bench, old_cudnn_det = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda_devices):  # the caller's RNG streams stay untouched
            if train.threads:
                torch.set_num_threads(train.threads)
            if train.deterministic:
                # cuBLAS needs a fixed workspace for deterministic matmuls; it must be set before the
                # first cuBLAS call of the process, so a later fit in the same process may be too late
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.use_deterministic_algorithms(True)
                torch.backends.cudnn.deterministic = True
                torch.backends.cudnn.benchmark = False
            elif device.type == "cuda":
                # windows have one fixed shape, so cuDNN's autotuner pays for itself after a batch or two
                torch.backends.cudnn.benchmark = True
            torch.manual_seed(train.seed)
            yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = old_bench, old_cudnn_det


# -- the fitted model ------------------------------------------------------------------------


@dataclass
class Fitted:
    features: FeatureConfig
    model_config: ModelConfig
    train_config: TrainConfig
    scaler: Scaler
    module: nn.Module  # eval mode
    history: list[EpochStats]
    best_epoch: int  # 0: the untrained weights
    interrupted: bool
    start: int  # rows used: [start, end)
    end: int
    val_origins: np.ndarray  # [n] origins of the validation windows
    val_pred: np.ndarray  # [n, horizon] predicted close
    val_actual: np.ndarray  # [n, horizon] actual close
    train_end: int = 0  # one past the last row a training window touches (the MASE in-sample part)
    feature_names: tuple[str, ...] = ()
    device: str = "cpu"
    seconds: float = 0.0

    def predict_close(self, prepared: Prepared, origins: np.ndarray) -> np.ndarray:
        """Predicted close for bars ``t+1 .. t+horizon`` at each origin ``t``: ``[n, horizon]``.

        Uses only rows ``<= t``. Needs ``t >= lookback - 1``.
        """
        import torch

        origins = np.asarray(origins, dtype="int64").reshape(-1)
        lb, h = self.features.lookback, self.features.horizon
        if origins.size == 0:
            return np.empty((0, h))
        if self.feature_names and tuple(prepared.names) != tuple(self.feature_names):
            raise ModelError(
                f"the series was prepared with features {list(prepared.names)}, "
                f"the model needs {list(self.feature_names)}"
            )
        if origins.min() < lb - 1 or origins.max() >= len(prepared):
            raise ModelError(
                f"forecast origins must lie in [{lb - 1}, {len(prepared) - 1}] "
                f"(look-back {lb}); got {origins.min()}..{origins.max()}"
            )
        lo, hi = int(origins.min()) - lb + 1, int(origins.max()) + 1
        device = next(self.module.parameters()).device
        x = torch.from_numpy(self.scaler.transform(prepared.raw[lo:hi])).to(device)
        idx = torch.from_numpy(origins - lo - lb + 1).to(device)
        out = _predict(self.module, F.windows(x, lb), idx)
        y = self.scaler.inverse_target(out)
        if self.features.target == "return":
            return prepared.close[origins][:, None] * np.exp(np.cumsum(y, axis=1))
        return y


def _predict(module: nn.Module, windows: torch.Tensor, idx: torch.Tensor) -> np.ndarray:
    import torch

    module.eval()
    outs = []
    with torch.inference_mode():
        for b in range(0, len(idx), EVAL_BATCH):
            outs.append(module(windows[idx[b : b + EVAL_BATCH]].contiguous()).float().cpu())
    return torch.cat(outs).numpy().astype("float64")


def actual_close(prepared: Prepared, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The realised close for bars ``t+1 .. t+horizon`` at each origin: ``[n, horizon]``."""
    steps = np.asarray(origins, dtype="int64")[:, None] + np.arange(1, horizon + 1)[None, :]
    return prepared.close[steps]


# -- the loop ----------------------------------------------------------------------------------


def fit(
    prepared: Prepared,
    *,
    features: FeatureConfig,
    model: ModelConfig,
    train: TrainConfig,
    start: int = 0,
    end: int | None = None,
    progress: Callable[[EpochStats], None] | None = None,
) -> Fitted:
    """Train on rows ``[start, end)`` only: no window whose input or target touches row ``>= end``.

    Windows are split chronologically (train, then validation) and the scaler is fitted on the
    training rows. Ctrl-C stops after the current batch and returns the best weights so far with
    ``interrupted=True``. ``epochs=0`` returns the untrained model.
    """
    import torch

    from lstmcast.model import LSTMForecaster

    end = len(prepared) if end is None else end
    sp = F.split(len(prepared), features=features, val_fraction=train.val_fraction, start=start, end=end)
    lb, h = features.lookback, features.horizon
    scaler = Scaler.fit(
        prepared.raw[start : sp.train_end], prepared.target[sp.train_origins[0] + 1 : sp.train_end]
    )
    device = resolve_device(train.device)
    t0 = time.perf_counter()
    history: list[EpochStats] = []
    interrupted = False
    with _torch_settings(train, device):
        # .contiguous() keeps cuDNN on its fast path; the unfold views are gathered per batch
        x = torch.from_numpy(scaler.transform(prepared.raw[start:end])).to(device).contiguous()
        y = torch.from_numpy(scaler.transform_target(prepared.target[start:end])).to(device)
        xw = F.windows(x, lb)  # window i ends at row start + i + lb - 1
        yw = y[lb:].unfold(0, h, 1)  # its targets: the next h rows
        tr = torch.from_numpy(sp.train_origins - start - lb + 1).to(device)
        va = torch.from_numpy(sp.val_origins - start - lb + 1).to(device)
        net = LSTMForecaster(n_features=x.shape[1], horizon=h, config=model).to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=train.lr, weight_decay=train.weight_decay)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=0.5, patience=max(1, train.patience // 3)
        )
        gen = torch.Generator().manual_seed(train.seed)
        autocast = torch.autocast(
            device_type="cuda", dtype=torch.bfloat16, enabled=train.bf16 and device.type == "cuda"
        )
        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        best_loss, best_epoch, stale = math.inf, 0, 0
        try:
            for epoch in range(1, train.epochs + 1):
                e0 = time.perf_counter()
                net.train()
                perm = tr[torch.randperm(len(tr), generator=gen).to(device)]
                total = torch.zeros((), device=device)
                for b in range(0, len(perm), train.batch_size):
                    idx = perm[b : b + train.batch_size]
                    xb, yb = xw[idx].contiguous(), yw[idx]
                    with autocast:
                        loss = torch.nn.functional.mse_loss(net(xb).float(), yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if train.clip > 0:
                        torch.nn.utils.clip_grad_norm_(net.parameters(), train.clip)
                    opt.step()
                    total += loss.detach() * len(idx)  # no .item() per batch: it would sync the GPU
                train_loss = float(total) / len(perm)
                val_loss = _val_loss(net, xw, yw, va, autocast) if len(va) else float("nan")
                watched = val_loss if len(va) else train_loss
                improved = watched < best_loss
                if improved:
                    best_loss, best_epoch, stale = watched, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                else:
                    stale += 1
                sched.step(watched)
                stats = EpochStats(
                    epoch=epoch,
                    epochs=train.epochs,
                    train_loss=train_loss,
                    val_loss=val_loss,
                    lr=opt.param_groups[0]["lr"],
                    seconds=time.perf_counter() - e0,
                    windows=len(perm),
                    best=improved,
                )
                history.append(stats)
                if progress is not None:
                    progress(stats)
                if not math.isfinite(train_loss):
                    raise ModelError(f"training diverged at epoch {epoch} (loss {train_loss}); lower --lr")
                if train.patience and stale >= train.patience:
                    break
        except KeyboardInterrupt:
            interrupted = True
        net.load_state_dict(best_state)
        net.eval()
    fitted = Fitted(
        features=features,
        model_config=model,
        train_config=train,
        scaler=scaler,
        module=net,
        history=history,
        best_epoch=best_epoch,
        interrupted=interrupted,
        start=start,
        end=end,
        val_origins=sp.val_origins,
        val_pred=np.empty((0, h)),
        val_actual=np.empty((0, h)),
        train_end=sp.train_end,
        feature_names=tuple(prepared.names),
        device=str(device),
        seconds=time.perf_counter() - t0,
    )
    fitted.val_pred = fitted.predict_close(prepared, sp.val_origins)
    fitted.val_actual = actual_close(prepared, sp.val_origins, h)
    return fitted


def _val_loss(net: nn.Module, xw: torch.Tensor, yw: torch.Tensor, idx: torch.Tensor, autocast: Any) -> float:
    import torch

    net.eval()
    total = torch.zeros((), device=idx.device)
    with torch.no_grad(), autocast:
        for b in range(0, len(idx), EVAL_BATCH):
            i = idx[b : b + EVAL_BATCH]
            total += torch.nn.functional.mse_loss(net(xw[i].contiguous()).float(), yw[i], reduction="sum")
    return float(total) / (len(idx) * yw.shape[1])


# -- options: flags and config files ------------------------------------------------------------

# option name -> the part of the settings it belongs to (all of them are settings.Settings fields)
OPTIONS: dict[str, str] = {"interval": "series", **{k: "settings" for k in Settings.model_fields}}


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


# -- train a stored series and save a run --------------------------------------------------------


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

    @property
    def interrupted(self) -> bool:
        return self.fitted.interrupted

    def to_dict(self) -> dict[str, Any]:
        f = self.fitted
        return {
            "series": self.key.spec,
            "interval": self.key.interval,
            "run_id": self.run.run_id,
            "path": str(self.run.path),
            "promoted": self.promoted,
            "interrupted": f.interrupted,
            "device": self.device,
            "seconds": round(f.seconds, 3),
            "best_epoch": f.best_epoch,
            "epochs_run": len(f.history),
            "validation_origins": len(f.val_origins),
            "metrics": self.metrics,
            "beats_naive": self.beats_naive,
            "data": self.data_info,
            "features": f.features.to_dict(),
            "model": f.model_config.to_dict(),
            "train": f.train_config.to_dict(),
            "history": [s.to_dict() for s in f.history],
        }


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


def train_series(
    store: Store,
    spec: str,
    *,
    interval: str = "1d",
    features: FeatureConfig | None = None,
    model: ModelConfig | None = None,
    train: TrainConfig | None = None,
    promote: bool = True,
    progress: Callable[[EpochStats], None] | None = None,
) -> TrainReport:
    """Train on a stored series and save the run; make it current when ``promote`` and it completed.

    An interrupted run (Ctrl-C) is saved, marked interrupted, and never made current.
    """
    from lstmcast import checkpoint

    features = features or FeatureConfig()
    model = model or ModelConfig()
    train = train or TrainConfig()
    key = store.resolve(spec, interval)
    manifest = store.manifest(key)
    frame = store.load(key)
    kind = manifest.get("kind", F.KIND_PRICE)
    if len(frame) == 0:
        raise DataError(f"{key} has no bars")
    resolve_device(train.device)  # fail on a missing device before the data work
    prepared = F.prepare(frame, kind=kind, features=features)
    fitted = fit(prepared, features=features, model=model, train=train, progress=progress)
    metrics = validation_metrics(fitted, prepared)
    beats = bool(metrics) and metrics["dm"]["beats_naive"]
    data_info = {
        "kind": kind,
        "market": manifest.get("market"),
        "rows": len(frame),
        "first": frame.index[0].isoformat(),
        "last": frame.index[-1].isoformat(),
        "train_end": frame.index[fitted.train_end - 1].isoformat(),
        "val_first_origin": frame.index[fitted.val_origins[0]].isoformat()
        if len(fitted.val_origins)
        else None,
        "val_last_origin": frame.index[fitted.val_origins[-1]].isoformat()
        if len(fitted.val_origins)
        else None,
        "sha256": manifest.get("sha256"),
        "file": manifest.get("file"),
        "close_column": "close",
    }
    promote = promote and not fitted.interrupted
    run = checkpoint.save_run(store.root, key, fitted, metrics=metrics, data_info=data_info, promote=promote)
    return TrainReport(
        key=key,
        fitted=fitted,
        metrics=metrics,
        beats_naive=beats,
        run=run,
        promoted=promote,
        data_info=data_info,
        device=fitted.device,
    )
