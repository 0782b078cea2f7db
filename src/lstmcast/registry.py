"""The registry of model runs: checkpoints (safetensors tensors + JSON metadata) by family and
format version, the ``current`` pointer, listing and pruning. It imports nothing from training:
a fitted artifact is written from its ``state()`` and rebuilt by ``forecasters.load_artifact``.

Layout under the data directory::

    models/{source}/{symbol, percent-encoded}/{interval}/{run_id}/model.safetensors
    models/{source}/{symbol, percent-encoded}/{interval}/{run_id}/meta.json
    models/{source}/{symbol, percent-encoded}/{interval}/current      JSON pointer {"run_id": ...}
    models/{source}/{symbol, percent-encoded}/{interval}/.lock        the per-series model lock

A run folder is written under a hidden temporary name and renamed into place only when complete;
the ``current`` pointer moves (atomically) after that, and never to an interrupted run. Nothing is
pickled: tensors go through safetensors, everything else through JSON. ``meta.json`` records the
sha256 of the weights file and of its own content, so tampering or truncation is detected on load.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lstmcast import __version__, atomic
from lstmcast.data.store import NamedLock, SeriesKey, file_lock, key_folder, symbol_from_dirname
from lstmcast.errors import CheckpointError, DataNotFoundError, LstmcastError
from lstmcast.features import FeatureConfig, Prepared
from lstmcast.jsonable import to_jsonable
from lstmcast.workspace import models_root

FORMAT_VERSION = 2  # 2: records the model family; 1 (LSTM only) still loads
READABLE_VERSIONS = (1, 2)
WEIGHTS = "model.safetensors"
META = "meta.json"
CURRENT = "current"
STATUS_COMPLETE = "complete"
STATUS_INTERRUPTED = "interrupted"
STATUS_INCOMPLETE = "incomplete"  # saved for inspection, never current: see degenerate_reason
LOCK_TIMEOUT_S = 120.0


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable by time, to the millisecond: ``20261121T101500123Z-ab12cd``.

    Milliseconds matter: a cron run trains a challenger seconds after the champion, and pruning
    keeps the newest runs by id order.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%S')}{now.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


def series_folder(data_dir: Path, key: SeriesKey) -> Path:
    return key_folder(models_root(data_dir), key) / key.interval


def model_lock(data_dir: Path, key: SeriesKey, *, timeout: float = LOCK_TIMEOUT_S) -> NamedLock:
    """The per-series model lock, held while saving, promoting or pruning runs."""
    return file_lock(series_folder(data_dir, key) / ".lock", what=f"models of {key}", timeout=timeout)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    key: SeriesKey
    path: Path
    status: str  # complete | interrupted | damaged
    current: bool
    created: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    beats_naive: bool | None = None
    family: str = "lstm"
    incomplete_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "series": self.key.spec,
            "source": self.key.source,
            "symbol": self.key.symbol,
            "interval": self.key.interval,
            "status": self.status,
            "family": self.family,
            "incomplete_reason": self.incomplete_reason,
            "current": self.current,
            "created": self.created,
            "beats_naive": self.beats_naive,
            "metrics": self.metrics,
            "path": str(self.path),
        }


def _meta_digest(meta: dict[str, Any]) -> str:
    body = {k: v for k, v in meta.items() if k != "integrity"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def residuals(fitted: Any, *, kind: str) -> np.ndarray:
    """Held-out residuals per horizon step: log(actual/pred) for prices, actual - pred for value series.

    Unlike ``conformal.residuals`` this does not refuse a non-positive forecast (a price-target
    model can make one): that residual is NaN and the run is still saved.
    """
    from lstmcast.evaluate.conformal import mode_for

    if mode_for(kind) == "log":
        with np.errstate(all="ignore"):
            return np.log(fitted.val_actual / fitted.val_pred)
    return fitted.val_actual - fitted.val_pred


def save_run(
    data_dir: Path,
    key: SeriesKey,
    fitted: Any,
    *,
    metrics: dict[str, Any],
    data_info: dict[str, Any],
    promote: bool = False,
    run_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> RunInfo:
    """Write a run folder (complete before it appears), then, if ``promote``, move ``current`` to it.

    ``fitted`` is any family's fitted artifact (``forecasters.base.Fitted``): its ``state()`` gives
    the tensors and the JSON that rebuild it. An interrupted fit is saved but never promoted.
    """
    from safetensors.numpy import save_file

    run_id = run_id or new_run_id()
    kind = data_info.get("kind", "price")
    state_tensors, state_meta = fitted.state()
    tensors = {k: np.ascontiguousarray(v) for k, v in state_tensors.items()}
    tensors["calibration.residuals"] = np.ascontiguousarray(residuals(fitted, kind=kind))
    tensors["calibration.val_origins"] = np.ascontiguousarray(fitted.val_origins, dtype="int64")
    tensors["calibration.val_pred"] = np.ascontiguousarray(fitted.val_pred, dtype="float64")
    tensors["calibration.val_actual"] = np.ascontiguousarray(fitted.val_actual, dtype="float64")
    reason = degenerate_reason(fitted, metrics, tensors["calibration.residuals"])
    status = STATUS_INTERRUPTED if fitted.interrupted else (STATUS_INCOMPLETE if reason else STATUS_COMPLETE)
    family = state_meta.get("family", "lstm")
    versions = {"lstmcast": __version__}
    if family in ("lstm", "gru"):
        versions["torch"] = _dist_version("torch")
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "run_id": run_id,
        "family": family,
        "status": status,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "source": key.source,
        "symbol": key.symbol,
        "interval": key.interval,
        "kind": kind,
        "market": data_info.get("market"),
        "data": data_info,
        **{k: v for k, v in state_meta.items() if k != "family"},
        "rows": {"start": fitted.start, "end": fitted.end, "train_end": fitted.train_end},
        "metrics": metrics,
        "beats_naive": bool(metrics) and bool(metrics.get("dm", {}).get("beats_naive")),
        "best_epoch": fitted.best_epoch,
        "history": [s.to_dict() for s in fitted.history],
        "versions": versions,
        "device": getattr(fitted, "device_description", "cpu"),
        "seed": (state_meta.get("train") or {}).get("seed"),
        "training_seconds": round(fitted.seconds, 3),
        **({"incomplete_reason": reason} if reason else {}),
        **({"extra": extra} if extra else {}),
    }
    folder = series_folder(data_dir, key)
    with model_lock(data_dir, key):
        remove_orphans(folder)  # the lock is ours: any temporary folder here belongs to a dead writer
        final = folder / run_id
        if final.exists():
            raise CheckpointError(f"run {run_id} already exists in {folder}")
        tmp = folder / f".{run_id}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            atomic.write_with(
                tmp / WEIGHTS, lambda p: save_file(tensors, str(p), metadata={"format": "lstmcast"})
            )
            meta = to_jsonable(meta)
            meta["integrity"] = {"weights_sha256": atomic.sha256_file(tmp / WEIGHTS)}
            meta["integrity"]["meta_sha256"] = _meta_digest(meta)
            atomic.write_json(tmp / META, meta)
            os.replace(tmp, final)
            atomic._fsync_dir(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        promoted = promote and status == STATUS_COMPLETE
        if promoted:
            _write_current(folder, run_id)
    return _info(key, final, meta, current=promoted or current_run_id(data_dir, key) == run_id)


def degenerate_reason(fitted: Any, metrics: dict[str, Any], residuals: np.ndarray) -> str | None:
    """Why a fit is not a real model (so it must not become current), or None.

    A real model trained at least one epoch (recurrent families), has a non-empty validation part,
    finite validation metrics and finite calibration residuals.
    """
    family = getattr(fitted, "family", "lstm")
    if family in ("lstm", "gru") and not fitted.history:
        return "no epoch was trained"
    if len(fitted.val_origins) == 0:
        return "the validation part is empty (no skill measured, no intervals)"
    model = (metrics or {}).get("model") or {}
    bad = [k for k in ("mae", "rmse") if k in model or k == "mae"]
    bad = [k for k in bad if not (isinstance(model.get(k), int | float) and np.isfinite(model[k]))]
    if bad:
        return f"validation {', '.join(bad)} is not finite"
    if residuals.size == 0 or not np.isfinite(residuals).all():
        n = int((~np.isfinite(residuals)).sum()) if residuals.size else 0
        return f"{n} calibration residual(s) are not finite (a forecast at or below zero?)" if n else "no residuals"
    return None


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _write_current(folder: Path, run_id: str) -> None:
    atomic.write_json(
        folder / CURRENT,
        {"run_id": run_id, "set_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
    )


def current_run_id(data_dir: Path, key: SeriesKey) -> str | None:
    """The run id in ``current``; one that is not a run id, or leaves the series folder, is refused."""
    from lstmcast.workspace import run_folder

    folder = series_folder(data_dir, key)
    path = folder / CURRENT
    try:
        run_id = json.loads(path.read_text())["run_id"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"the current-model pointer {path} is damaged: {e}") from e
    run_folder(folder, run_id, what=f"the current-model pointer {path}")
    return str(run_id)


def remove_orphans(folder: Path) -> list[str]:
    """Delete ``.RUNID.tmp`` / ``.RUNID.trash`` folders a killed writer left; call under the model lock."""
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            if p.is_dir() and p.name.startswith(".") and p.name.endswith((".tmp", ".trash")):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
    return removed


def set_current(data_dir: Path, key: SeriesKey, run_id: str) -> None:
    """Make ``run_id`` the current model of ``key``; only a complete, loadable run qualifies."""
    with model_lock(data_dir, key):
        from lstmcast.workspace import run_folder

        meta = _read_meta(run_folder(series_folder(data_dir, key), run_id), key)
        if meta.get("status") != STATUS_COMPLETE:
            raise CheckpointError(
                f"run {run_id} of {key} is {meta.get('status')}; only a complete run can be current"
            )
        _write_current(series_folder(data_dir, key), run_id)


def _read_meta(folder: Path, key: SeriesKey | None) -> dict[str, Any]:
    path = folder / META
    if not folder.is_dir():
        raise DataNotFoundError(f"no run {folder.name} for {key}" if key else f"no run at {folder}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise CheckpointError(f"run {folder.name} has no {META} (incomplete or damaged): {folder}") from e
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is not a JSON object")
    version = meta.get("format_version")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(
            f"run {folder.name} has checkpoint format version {version!r}; "
            f"this lstmcast reads versions {', '.join(map(str, READABLE_VERSIONS))} (retrain the model)"
        )
    integrity = meta.get("integrity") or {}
    if integrity.get("meta_sha256") != _meta_digest(meta):
        raise CheckpointError(
            f"{path} was modified after it was written (checksum mismatch); retrain the model"
        )
    if key is not None and (meta.get("source"), meta.get("symbol"), meta.get("interval")) != (
        key.source,
        key.symbol,
        key.interval,
    ):
        raise CheckpointError(
            f"run {folder.name} belongs to {meta.get('source')}:{meta.get('symbol')} "
            f"{meta.get('interval')}, not {key}"
        )
    return meta


@dataclass
class LoadedModel:
    run_id: str
    key: SeriesKey
    path: Path
    meta: dict[str, Any]
    fitted: Any  # the family's fitted artifact (history empty; see meta["history"])
    residuals: np.ndarray  # [n, horizon] held-out calibration residuals

    @property
    def features(self) -> FeatureConfig:
        return self.fitted.features

    @property
    def family(self) -> str:
        return str(self.meta.get("family", "lstm"))

    def predict_close(self, prepared: Prepared, origins: np.ndarray) -> np.ndarray:
        return self.fitted.predict_close(prepared, origins)


def load_run(
    data_dir: Path, key: SeriesKey, run_id: str | None = None, *, device: str = "cpu"
) -> LoadedModel:
    """Load a run (``None``: the current one), verifying checksums, format, series and shapes."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from lstmcast.forecasters import load_artifact

    as_current = run_id is None
    if as_current:
        run_id = current_run_id(data_dir, key)
        if run_id is None:
            raise DataNotFoundError(
                f"no current model for {key}; run `lstmcast train {key.spec} --interval {key.interval}` first"
            )
    from lstmcast.workspace import run_folder

    folder = run_folder(series_folder(data_dir, key), run_id)
    meta = _read_meta(folder, key)
    if as_current and meta.get("status") != STATUS_COMPLETE:  # the pointer was edited by hand
        raise CheckpointError(
            f"the current model of {key} points at run {run_id}, which is {meta.get('status')}; "
            "retrain, or make a complete run current"
        )
    weights = folder / WEIGHTS
    if not weights.exists():
        raise CheckpointError(f"run {run_id} has no {WEIGHTS}: {folder}")
    if atomic.sha256_file(weights) != meta["integrity"].get("weights_sha256"):
        raise CheckpointError(
            f"{weights} does not match the checksum in {META} (tampered or truncated); retrain the model"
        )
    family = meta.get("family", "lstm")  # format 1 runs are LSTMs and record no family
    try:
        tensors = load_file(str(weights))
        fitted = load_artifact(family, tensors, {**meta, "family": family}, device=device)
    except CheckpointError as e:
        raise CheckpointError(f"cannot load run {run_id} of {key}: {e}") from e
    except (SafetensorError, OSError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"cannot load run {run_id} of {key}: {e}") from e
    h = fitted.features.horizon

    def arr(name: str, dtype: str) -> np.ndarray:
        t = tensors.get(name)
        return t.astype(dtype) if t is not None else np.empty((0, h), dtype=dtype)

    rows = meta.get("rows", {})
    fitted.best_epoch = int(meta.get("best_epoch", 0))
    fitted.interrupted = meta.get("status") != STATUS_COMPLETE
    fitted.start, fitted.end = int(rows.get("start", 0)), int(rows.get("end", 0))
    fitted.train_end = int(rows.get("train_end", 0))
    fitted.val_origins = arr("calibration.val_origins", "int64").reshape(-1)
    fitted.val_pred = arr("calibration.val_pred", "float64")
    fitted.val_actual = arr("calibration.val_actual", "float64")
    fitted.seconds = float(meta.get("training_seconds") or 0.0)
    return LoadedModel(
        run_id=run_id,
        key=key,
        path=folder,
        meta=meta,
        fitted=fitted,
        residuals=arr("calibration.residuals", "float64"),
    )


def _info(key: SeriesKey, folder: Path, meta: dict[str, Any] | None, *, current: bool) -> RunInfo:
    if meta is None:
        return RunInfo(run_id=folder.name, key=key, path=folder, status="damaged", current=current)
    m = meta.get("metrics") or {}
    return RunInfo(
        run_id=folder.name,
        key=key,
        path=folder,
        status=str(meta.get("status")),
        current=current,
        created=meta.get("created"),
        metrics=m,
        beats_naive=meta.get("beats_naive"),
        family=str(meta.get("family", "lstm")),
        incomplete_reason=meta.get("incomplete_reason"),
    )


def list_runs(data_dir: Path, key: SeriesKey | None = None) -> list[RunInfo]:
    """Every run (or those of ``key``), oldest first per series; unreadable runs show as ``damaged``."""
    root = models_root(data_dir)
    if key is not None:
        folders = [series_folder(data_dir, key)]
    else:
        folders = sorted(p for p in root.glob("*/*/*") if p.is_dir())
    out: list[RunInfo] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        k = key or _key_of(folder)
        if k is None:
            continue
        try:
            cur = current_run_id(data_dir, k)
        except CheckpointError:
            cur = None
        for run in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                meta = _read_meta(run, k)
            except (CheckpointError, DataNotFoundError):
                meta = None
            out.append(_info(k, run, meta, current=run.name == cur))
    return out


def current_series(data_dir: Path) -> list[SeriesKey]:
    """Every series whose models folder has a ``current`` pointer (not read or verified here), sorted."""
    root = Path(data_dir) / "models"
    keys = [k for p in sorted(root.glob(f"*/*/*/{CURRENT}")) if p.is_file() and (k := _key_of(p.parent))]
    return sorted(keys, key=lambda k: (k.source, k.symbol, k.interval))


def _key_of(folder: Path) -> SeriesKey | None:
    try:
        return SeriesKey(folder.parent.parent.name, symbol_from_dirname(folder.parent.name), folder.name)
    except LstmcastError:  # a stray folder that is not a series: skip it
        return None


def find_run(data_dir: Path, run_id: str) -> RunInfo:
    """A run by its id (or a unique prefix of it), across every series."""
    runs = [r for r in list_runs(data_dir) if r.run_id.startswith(run_id)]
    exact = [r for r in runs if r.run_id == run_id]
    if exact:
        return exact[0]
    if not runs:
        raise DataNotFoundError(f"no run {run_id!r}; see `lstmcast models list`")
    if len(runs) > 1:
        raise DataNotFoundError(f"run id {run_id!r} is ambiguous: {', '.join(r.run_id for r in runs[:5])}")
    return runs[0]


def prune_runs(data_dir: Path, key: SeriesKey, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` runs of ``key``; never the current one. Returns deleted ids."""
    if keep < 0:
        raise CheckpointError(f"keep must be 0 or more (got {keep})")
    with model_lock(data_dir, key):
        cur = current_run_id(data_dir, key)
        runs = [r.run_id for r in list_runs(data_dir, key) if r.run_id != cur]
        doomed = runs[: max(0, len(runs) - keep)]
        folder = series_folder(data_dir, key)
        for run_id in doomed:
            trash = folder / f".{run_id}.trash"
            os.replace(folder / run_id, trash)  # gone from listings at once, even if rmtree is cut short
            shutil.rmtree(trash, ignore_errors=True)
    return doomed
