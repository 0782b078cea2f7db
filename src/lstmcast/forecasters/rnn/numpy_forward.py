"""Inference for the recurrent families in numpy alone: no torch import, same numbers as torch.

A saved run is a few kilobytes of safetensors; reading them into numpy and running the forward
pass here costs milliseconds, where ``import torch`` costs seconds. The parameter names are
torch's own (``state_dict`` keys without the ``weights.`` prefix of the checkpoint)::

    {cell}.weight_ih_l{k}  [G*H, F or H]    {cell}.weight_hh_l{k}  [G*H, H]
    {cell}.bias_ih_l{k}    [G*H]            {cell}.bias_hh_l{k}    [G*H]
    head.weight            [horizon, H]     head.bias              [horizon]

with ``cell`` ``lstm`` (G = 4 gate blocks stacked i, f, g, o) or ``gru`` (G = 3, stacked r, z, n).
PyTorch keeps ``bias_ih`` and ``bias_hh`` apart because the GRU's candidate gate needs it:
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, the hidden bias inside the reset product.
Inference applies no dropout (torch applies it between layers in training mode only).

Windows follow ``features.windows``: the window of origin ``t`` holds feature rows
``t-lookback+1 .. t``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lstmcast.errors import CheckpointError, ModelError

CELLS = ("lstm", "gru")
GATES = {"lstm": 4, "gru": 3}
WEIGHTS_PREFIX = "weights."
# The input projections of all time steps are computed in one matmul per layer; batches are cut
# into chunks so that this [lookback, chunk, G*H] block stays near the cache, not gigabytes.
CHUNK_BYTES = 16 << 20

_PARAM = re.compile(r"^(lstm|gru)\.(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)$")


@dataclass(frozen=True)
class Architecture:
    """What a set of weights describes: ``[batch, lookback, n_features]`` -> ``[batch, horizon]``."""

    cell: str  # "lstm" | "gru"
    layers: int
    hidden: int
    n_features: int
    horizon: int


def architecture(weights: Mapping[str, np.ndarray]) -> Architecture:
    """Read the architecture off torch-named weights; refuse, naming the key, anything that does not fit."""
    cells = {m.group(1) for k in weights if (m := _PARAM.match(k))}
    if len(cells) != 1:
        found = ", ".join(sorted(cells)) or "none"
        raise CheckpointError(f"the weights hold no single recurrent cell (lstm or gru); found: {found}")
    cell = cells.pop()
    extra = sorted(k for k in weights if not _PARAM.match(k) and k not in ("head.weight", "head.bias"))
    if extra:
        # e.g. bidirectional (_reverse) or projected (weight_hr) layers: not what lstmcast trains
        raise CheckpointError(f"unexpected parameter {extra[0]!r} in the weights (of {cell} + head)")
    layers = 1 + max(int(m.group(3)) for k in weights if (m := _PARAM.match(k)))
    for name in ("head.weight", "head.bias", f"{cell}.weight_ih_l0"):
        if name not in weights:
            raise CheckpointError(f"the weights have no {name!r}")
    head = np.shape(weights["head.weight"])
    if len(head) != 2:
        raise CheckpointError(f"head.weight has shape {tuple(head)}, expected [horizon, hidden]")
    horizon, hidden = head
    g = GATES[cell]
    n_features = np.shape(weights[f"{cell}.weight_ih_l0"])[-1]
    expected = {"head.bias": (horizon,)}
    for k in range(layers):
        expected[f"{cell}.weight_ih_l{k}"] = (g * hidden, n_features if k == 0 else hidden)
        expected[f"{cell}.weight_hh_l{k}"] = (g * hidden, hidden)
        expected[f"{cell}.bias_ih_l{k}"] = (g * hidden,)
        expected[f"{cell}.bias_hh_l{k}"] = (g * hidden,)
    for name, shape in expected.items():
        if name not in weights:
            raise CheckpointError(f"the weights have no {name!r} ({layers} {cell} layer(s) otherwise)")
        if tuple(np.shape(weights[name])) != shape:
            raise CheckpointError(
                f"{name} has shape {tuple(np.shape(weights[name]))}, expected {shape} "
                f"({cell}, hidden {hidden}, {n_features} feature(s), horizon {horizon})"
            )
    for name in [*expected, "head.weight"]:
        if not np.issubdtype(np.asarray(weights[name]).dtype, np.floating):
            raise CheckpointError(f"{name} has dtype {np.asarray(weights[name]).dtype}, expected a float")
    return Architecture(cell=cell, layers=layers, hidden=int(hidden), n_features=int(n_features), horizon=int(horizon))


def load_weights(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The ``weights.*`` tensors of a run's ``model.safetensors`` as numpy arrays, prefix removed.

    Integrity (checksums, format version) is the caller's business: this only reads.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(os.fspath(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read the weights in {path}: {e}") from e
    # copies: the loaded arrays may be read-only views of a memory map that outlives nothing here
    out = {k[len(WEIGHTS_PREFIX) :]: np.array(v) for k, v in tensors.items() if k.startswith(WEIGHTS_PREFIX)}
    if not out:
        raise CheckpointError(f"{path} holds no {WEIGHTS_PREFIX}* tensors")
    return out


def windows(x: np.ndarray, lookback: int, origins: np.ndarray | None = None) -> np.ndarray:
    """Look-back windows of a ``[T, F]`` feature matrix, as ``features.windows`` builds them with torch.

    Without ``origins``: every window, a read-only ``[T-lookback+1, lookback, F]`` view (no copy);
    window ``i`` holds rows ``i .. i+lookback-1``. With ``origins``: ``[n, lookback, F]``, the
    window of origin ``t`` holding rows ``t-lookback+1 .. t`` (so ``t >= lookback-1``).
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ModelError(f"features must be a [rows, features] matrix (got shape {x.shape})")
    if lookback < 1:
        raise ModelError(f"look-back must be at least 1 row (got {lookback})")
    if len(x) < lookback:
        raise ModelError(f"{len(x)} feature rows are fewer than the look-back of {lookback}")
    view = sliding_window_view(x, lookback, axis=0).transpose(0, 2, 1)
    if origins is None:
        return view
    origins = np.asarray(origins, dtype="int64").reshape(-1)
    if origins.size and (origins.min() < lookback - 1 or origins.max() >= len(x)):
        raise ModelError(
            f"forecast origins must lie in [{lookback - 1}, {len(x) - 1}] "
            f"(look-back {lookback}); got {origins.min()}..{origins.max()}"
        )
    return view[origins - (lookback - 1)]


class NumpyRNN:
    """The inference-only twin of ``nn.LSTM``/``nn.GRU`` (batch_first) + ``nn.Linear`` head.

    Built once from the weights (transposed, gate blocks reordered and pre-scaled for speed), then
    ``forward`` any number of times. Computes in ``dtype`` (default: the weights' dtype).
    """

    def __init__(self, weights: Mapping[str, np.ndarray], *, dtype: np.dtype | str | None = None) -> None:
        self.arch = architecture(weights)
        a = self.arch
        if dtype is None:
            self.dtype = np.result_type(*(np.asarray(w) for w in weights.values()))
        else:
            self.dtype = np.dtype(dtype)
        if not np.issubdtype(self.dtype, np.floating):
            raise ModelError(f"the forward pass computes in a float dtype, not {self.dtype}")
        h = a.hidden
        # Gates use sigmoid(x) = 0.5 + 0.5 * tanh(x / 2): one tanh over every gate block per step.
        # Halving the sigmoid gates' weights and biases is exact (a power of two).
        if a.cell == "lstm":
            order = np.r_[0 : 2 * h, 3 * h : 4 * h, 2 * h : 3 * h]  # i, f, g, o -> i, f, o, g
            scale = np.r_[np.full(3 * h, 0.5), np.ones(h)]
        else:
            order = np.arange(3 * h)  # r, z, n stay
            scale = np.r_[np.full(2 * h, 0.5), np.ones(h)]
        self._layers = []
        for k in range(a.layers):
            w_ih = self._cast(weights[f"{a.cell}.weight_ih_l{k}"])[order] * scale[:, None].astype(self.dtype)
            w_hh = self._cast(weights[f"{a.cell}.weight_hh_l{k}"])[order] * scale[:, None].astype(self.dtype)
            b_ih = self._cast(weights[f"{a.cell}.bias_ih_l{k}"])[order] * scale.astype(self.dtype)
            b_hh = self._cast(weights[f"{a.cell}.bias_hh_l{k}"])[order] * scale.astype(self.dtype)
            if a.cell == "lstm":
                b_in, b_hn = b_ih + b_hh, None
            else:  # r and z take both biases outside; n keeps b_hn for inside the reset product
                b_in = np.r_[b_ih[: 2 * h] + b_hh[: 2 * h], b_ih[2 * h :]].astype(self.dtype)
                b_hn = b_hh[2 * h :].copy()
            self._layers.append((np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T), b_in, b_hn))
        self._head_w = np.ascontiguousarray(self._cast(weights["head.weight"]).T)
        self._head_b = self._cast(weights["head.bias"])

    def _cast(self, w: np.ndarray) -> np.ndarray:
        return np.asarray(w).astype(self.dtype, copy=True)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``[batch, lookback, n_features]`` -> ``[batch, horizon]``, in the model's dtype."""
        x = np.asarray(x)
        a = self.arch
        if x.ndim != 3 or x.shape[2] != a.n_features or x.shape[1] < 1:
            raise ModelError(
                f"input windows must be [batch, lookback, {a.n_features}] (got shape {tuple(x.shape)})"
            )
        batch, steps = x.shape[0], x.shape[1]
        out = np.empty((batch, a.horizon), dtype=self.dtype)
        per_row = steps * GATES[a.cell] * a.hidden * self.dtype.itemsize
        chunk = max(1, CHUNK_BYTES // per_row)
        for lo in range(0, batch, chunk):
            last = self._last_hidden(x[lo : lo + chunk])
            np.matmul(last, self._head_w, out=out[lo : lo + chunk])
        out += self._head_b
        return out

    __call__ = forward

    def _last_hidden(self, x: np.ndarray) -> np.ndarray:
        seq = np.ascontiguousarray(x.transpose(1, 0, 2), dtype=self.dtype)  # [time, batch, features]
        step = _lstm_layer if self.arch.cell == "lstm" else _gru_layer
        for k, layer in enumerate(self._layers):
            seq = step(seq, *layer, keep_sequence=k < len(self._layers) - 1)
        return seq


def _lstm_layer(
    seq: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b: np.ndarray, _: None, *, keep_sequence: bool
) -> np.ndarray:
    """One LSTM layer over ``[time, batch, in]``; gate blocks i, f, o (pre-halved), g."""
    steps, batch = seq.shape[:2]
    h_size = w_hh.shape[0]
    xp = np.matmul(seq, w_ih)  # every step's input projection at once: [time, batch, 4H]
    xp += b
    outs = np.empty((steps, batch, h_size), dtype=seq.dtype) if keep_sequence else None
    h = np.zeros((batch, h_size), dtype=seq.dtype)
    c = np.zeros_like(h)
    tmp = np.empty_like(h)
    gates = np.empty((batch, 4 * h_size), dtype=seq.dtype)
    sig = gates[:, : 3 * h_size]
    i, f, o, g = (gates[:, j * h_size : (j + 1) * h_size] for j in range(4))
    for t in range(steps):
        np.matmul(h, w_hh, out=gates)
        gates += xp[t]
        np.tanh(gates, out=gates)
        sig *= 0.5
        sig += 0.5
        c *= f
        np.multiply(i, g, out=tmp)
        c += tmp
        if keep_sequence:
            h = outs[t]
        np.tanh(c, out=h)
        h *= o
    return outs if keep_sequence else h


def _gru_layer(
    seq: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b: np.ndarray, b_hn: np.ndarray, *, keep_sequence: bool
) -> np.ndarray:
    """One GRU layer over ``[time, batch, in]``; gate blocks r, z (pre-halved), n."""
    steps, batch = seq.shape[:2]
    h_size = w_hh.shape[0]
    xp = np.matmul(seq, w_ih)  # [time, batch, 3H]
    xp += b
    outs = np.empty((steps, batch, h_size), dtype=seq.dtype) if keep_sequence else None
    h = np.zeros((batch, h_size), dtype=seq.dtype)
    hp = np.empty((batch, 3 * h_size), dtype=seq.dtype)
    rz = np.empty((batch, 2 * h_size), dtype=seq.dtype)
    n = np.empty_like(h)
    r, z = rz[:, :h_size], rz[:, h_size:]
    hp_rz, hp_n = hp[:, : 2 * h_size], hp[:, 2 * h_size :]
    for t in range(steps):
        np.matmul(h, w_hh, out=hp)
        np.add(xp[t, :, : 2 * h_size], hp_rz, out=rz)
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        hp_n += b_hn
        np.multiply(r, hp_n, out=n)
        n += xp[t, :, 2 * h_size :]
        np.tanh(n, out=n)
        # h' = (1 - z) * n + z * h = n + z * (h - n)
        new = outs[t] if keep_sequence else h
        np.subtract(h, n, out=hp_n)  # hp_n is free again: reuse it as scratch
        hp_n *= z
        np.add(n, hp_n, out=new)
        h = new
    return outs if keep_sequence else h


def forward(
    weights: Mapping[str, np.ndarray], x: np.ndarray, *, dtype: np.dtype | str | None = None
) -> np.ndarray:
    """One-shot ``NumpyRNN(weights, dtype=dtype).forward(x)``: ``[batch, lookback, F]`` -> ``[batch, horizon]``."""
    return NumpyRNN(weights, dtype=dtype).forward(x)
