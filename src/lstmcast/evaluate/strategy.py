"""A forecast-driven trading rule against buy-and-hold, with fees.

At each origin ``t`` the rule reads the 1-step-ahead forecast ``pred[t]`` (made from bars
``<= t``) and sets the position held over the next bar, ``t -> t+1``:

- long (+1) when the forecast return ``pred / close[t] - 1`` exceeds the fee,
- short (-1) when it is below minus the fee and ``long_short`` is on,
- flat (0) otherwise.

Fees are ``fee_bps`` basis points of the traded amount, charged whenever the position changes
(a flip from long to short trades twice the notional and pays twice). The first entry pays; the
position left open at the end is not charged an exit, for the strategy and buy-and-hold alike.
Equity is compounded bar by bar: ``E *= (1 - fee * |dpos|) * (1 + pos * r)`` with the realised
simple return ``r = close[t+1] / close[t] - 1``. With consecutive origins this is a proper
equity curve; with gaps between origins only the bars right after each origin are traded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lstmcast.errors import UsageError


@dataclass(frozen=True)
class StrategyResult:
    name: str
    total_return: float
    annual_return: float
    annual_volatility: float
    sharpe: float
    max_drawdown: float  # <= 0, e.g. -0.35 for a 35% peak-to-trough loss
    trades: int
    exposure: float  # fraction of bars with a position
    equity: np.ndarray = field(repr=False)  # [n + 1], starts at 1.0
    position: np.ndarray = field(repr=False)  # [n] position held over bar origin -> origin + 1

    def to_dict(self, *, series: bool = True) -> dict:
        d = {
            "name": self.name, "total_return": self.total_return, "annual_return": self.annual_return,
            "annual_volatility": self.annual_volatility, "sharpe": self.sharpe,
            "max_drawdown": self.max_drawdown, "trades": self.trades, "exposure": self.exposure,
        }
        if series:
            d["equity"] = self.equity.tolist()
            d["position"] = self.position.tolist()
        return d


def positions(forecast_return: np.ndarray, *, fee_bps: float, long_short: bool = False) -> np.ndarray:
    """The rule: +1 / 0 (/ -1) from forecast returns and the one-way fee."""
    f = np.asarray(forecast_return, dtype="float64")
    fee = fee_bps / 1e4
    pos = np.where(f > fee, 1.0, 0.0)
    if long_short:
        pos = np.where(f < -fee, -1.0, pos)
    return pos


def _summary(
    name: str, pos: np.ndarray, r: np.ndarray, *, fee_bps: float, bars_per_year: float
) -> StrategyResult:
    fee = fee_bps / 1e4
    dpos = np.abs(np.diff(np.concatenate([[0.0], pos])))
    growth = (1 - fee * dpos) * (1 + pos * r)
    equity = np.concatenate([[1.0], np.cumprod(growth)])
    net = growth - 1
    n = len(net)
    total = float(equity[-1] - 1)
    annual = float(equity[-1] ** (bars_per_year / n) - 1) if n and equity[-1] > 0 else float("nan")
    sd = float(np.std(net, ddof=1)) if n > 1 else float("nan")
    vol = sd * math.sqrt(bars_per_year)
    if sd and math.isfinite(sd):
        sharpe = float(np.mean(net) / sd * math.sqrt(bars_per_year))
    else:  # never invested (or one bar): no excess return, no risk
        sharpe = 0.0 if n > 1 and not np.any(net) else float("nan")
    peak = np.maximum.accumulate(equity)
    return StrategyResult(
        name=name, total_return=total, annual_return=annual, annual_volatility=vol, sharpe=sharpe,
        max_drawdown=float(np.min(equity / peak - 1)), trades=int(np.count_nonzero(dpos)),
        exposure=float(np.mean(pos != 0)) if n else float("nan"), equity=equity, position=pos,
    )


def _realised(close: np.ndarray, origins: np.ndarray) -> np.ndarray:
    c = np.asarray(close, dtype="float64")
    o = np.asarray(origins, dtype="int64")
    if len(o) == 0:
        raise UsageError("the strategy needs at least one origin")
    if o[-1] + 1 > len(c) - 1:
        raise UsageError(f"origin {int(o[-1])} has no next bar to trade (last row is {len(c) - 1})")
    return c[o + 1] / c[o] - 1


def run_strategy(
    close: np.ndarray,
    origins: np.ndarray,
    pred_next: np.ndarray,
    *,
    fee_bps: float = 10.0,
    long_short: bool = False,
    bars_per_year: float = 252.0,
    name: str = "model",
) -> StrategyResult:
    """Trade the rule on 1-step forecasts ``pred_next[i]`` (predicted ``close[origins[i] + 1]``)."""
    if fee_bps < 0:
        raise UsageError(f"fee must not be negative, got {fee_bps} bps")
    c = np.asarray(close, dtype="float64")
    o = np.asarray(origins, dtype="int64")
    p = np.asarray(pred_next, dtype="float64")
    if p.shape != o.shape:
        raise UsageError(f"pred_next has shape {p.shape}, expected {o.shape} (one forecast per origin)")
    r = _realised(c, o)
    pos = positions(p / c[o] - 1, fee_bps=fee_bps, long_short=long_short)
    return _summary(name, pos, r, fee_bps=fee_bps, bars_per_year=bars_per_year)


def buy_and_hold(
    close: np.ndarray, origins: np.ndarray, *, fee_bps: float = 10.0, bars_per_year: float = 252.0
) -> StrategyResult:
    """Long over every traded bar, one entry fee."""
    r = _realised(close, origins)
    return _summary("buy_and_hold", np.ones_like(r), r, fee_bps=fee_bps, bars_per_year=bars_per_year)
