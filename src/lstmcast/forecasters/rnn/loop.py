"""The one training loop of the torch families (lstm, gru), devices, and their fitted artifact.

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
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lstmcast import features as F
from lstmcast.errors import ConfigError, ModelError
from lstmcast.features import FeatureConfig, Prepared, Scaler
from lstmcast.forecasters.base import FitRecord, actual_close, check_origins
from lstmcast.settings import DEVICE_PATTERN, ModelConfig, TrainConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

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
class Fitted(FitRecord):
    """The lstm/gru artifact (``module`` and ``scaler``) and what its fit saw (``history``: ``EpochStats``)."""

    features: FeatureConfig
    model_config: ModelConfig
    train_config: TrainConfig
    scaler: Scaler
    module: nn.Module  # eval mode
    feature_names: tuple[str, ...] = ()
    family: str = "lstm"
    device_description: str = field(default="cpu", kw_only=True)  # what a run loaded with torch reports

    def predict_close(self, prepared: Prepared, origins: np.ndarray) -> np.ndarray:
        """Predicted close for bars ``t+1 .. t+horizon`` at each origin ``t``: ``[n, horizon]``.

        Uses only rows ``<= t``. Needs ``t >= lookback - 1``.
        """
        import torch

        lb = self.features.lookback
        origins = check_origins(self, prepared, origins)
        if origins.size == 0:
            return np.empty((0, self.features.horizon))
        lo, hi = int(origins.min()) - lb + 1, int(origins.max()) + 1
        device = next(self.module.parameters()).device
        x = torch.from_numpy(self.scaler.transform(prepared.raw[lo:hi])).to(device)
        idx = torch.from_numpy(origins - lo - lb + 1).to(device)
        out = _predict(self.module, F.windows(x, lb), idx)
        y = self.scaler.inverse_target(out)
        if self.features.target == "return":
            return prepared.close[origins][:, None] * np.exp(np.cumsum(y, axis=1))
        return y

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The network's weights as ``weights.<state_dict key>`` (``weights.lstm.weight_ih_l0``,
        ``weights.head.weight``, ...) and the JSON the network is rebuilt from."""
        tensors = {
            f"weights.{k}": v.detach().to("cpu").contiguous().numpy()
            for k, v in self.module.state_dict().items()
        }
        meta = {
            "family": self.family,
            "features": self.features.to_dict(),
            "feature_names": list(self.feature_names),
            "model": self.model_config.to_dict(),
            "train": self.train_config.to_dict(),
            "scaler": self.scaler.to_dict(),
        }
        return tensors, meta

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict[str, Any], *, device: str = "cpu") -> Fitted:
        import torch

        from lstmcast.errors import CheckpointError

        family = meta.get("family", "lstm")
        features = FeatureConfig.from_dict(meta["features"])
        model_config = ModelConfig.from_dict(meta["model"])
        names = tuple(meta["feature_names"])
        net = build_module(family, n_features=len(names), horizon=features.horizon, config=model_config)
        state = {k.removeprefix("weights."): torch.from_numpy(np.ascontiguousarray(v))
                 for k, v in tensors.items() if k.startswith("weights.")}
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).strip().splitlines()
            raise CheckpointError(
                "weights do not fit the model config "
                f"({first[1].strip() if len(first) > 1 else first[0]})"
            ) from e
        net.to(resolve_device(device)).eval()
        h = features.horizon
        return cls(
            features=features, model_config=model_config,
            train_config=TrainConfig.from_dict(meta.get("train", {}), lenient=True),
            scaler=Scaler.from_dict(meta["scaler"]), module=net, history=[], best_epoch=0,
            interrupted=False, start=0, end=0, val_origins=np.empty(0, dtype="int64"),
            val_pred=np.empty((0, h)), val_actual=np.empty((0, h)), feature_names=names,
            device=str(next(net.parameters()).device), family=family,
        )


def build_module(family: str, *, n_features: int, horizon: int, config: ModelConfig) -> nn.Module:
    from lstmcast.forecasters.rnn.module import GRUForecaster, LSTMForecaster

    cls = {"lstm": LSTMForecaster, "gru": GRUForecaster}[family]
    return cls(n_features=n_features, horizon=horizon, config=config)


def _predict(module: nn.Module, windows: torch.Tensor, idx: torch.Tensor) -> np.ndarray:
    import torch

    module.eval()
    outs = []
    with torch.inference_mode():
        for b in range(0, len(idx), EVAL_BATCH):
            outs.append(module(windows[idx[b : b + EVAL_BATCH]].contiguous()).float().cpu())
    return torch.cat(outs).numpy().astype("float64")


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
    family: str = "lstm",
) -> Fitted:
    """Train on rows ``[start, end)`` only: no window whose input or target touches row ``>= end``.

    Windows are split chronologically (train, then validation) and the scaler is fitted on the
    training rows. Ctrl-C stops after the current batch and returns the best weights so far with
    ``interrupted=True``. ``epochs=0`` returns the untrained model.

    ``progress`` gets each epoch's ``EpochStats``. If it also has an ``on_batch`` attribute, that is
    called as ``on_batch(epoch, batches_done, batches_total)`` after every batch (a display's
    within-epoch progress; nothing is synchronised with the GPU for it).
    """
    import torch

    end = len(prepared) if end is None else end
    sp = F.split(len(prepared), features=features, val_fraction=train.val_fraction, start=start, end=end)
    lb, h = features.lookback, features.horizon
    scaler = Scaler.fit(
        prepared.raw[start : sp.train_end], prepared.target[sp.train_origins[0] + 1 : sp.train_end]
    )
    device = resolve_device(train.device)
    on_batch = getattr(progress, "on_batch", None)
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
        net = build_module(family, n_features=x.shape[1], horizon=h, config=model).to(device)
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
                n_batches = -(-len(perm) // train.batch_size)
                for done, b in enumerate(range(0, len(perm), train.batch_size), start=1):
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
                    if on_batch is not None:
                        on_batch(epoch, done, n_batches)
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
        family=family,
        device_description=describe_device(device),
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


class RNNForecaster:
    """The lstm / gru family as a ``Forecaster``: ``fit`` runs the loop above."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.family = settings.family

    def fit(self, prepared: Prepared, *, start: int = 0, end: int | None = None,
            progress: Callable[[Any], None] | None = None) -> Fitted:
        s = self.settings
        return fit(prepared, features=FeatureConfig.from_settings(s), model=s.network(), train=s.training(),
                   start=start, end=end, progress=progress, family=s.family)
