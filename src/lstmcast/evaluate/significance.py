"""How much of a strategy's Sharpe or a hit rate is chance: intervals, selection corrections, fair baselines.

- ``sharpe_stats``: per-bar and annualised Sharpe with the asymptotic standard error of Lo (2002)
  / Mertens (2002) for non-normal returns, its confidence interval, and the Probabilistic Sharpe
  Ratio (Bailey & Lopez de Prado 2012) against a benchmark Sharpe such as buy-and-hold's. A strategy
  that never holds a position is reported as ``in_market=False`` with every ratio None: it has no
  Sharpe, not a Sharpe of 0.
- ``bootstrap_sharpe_interval``: the stationary block bootstrap (Politis & Romano 1994), which keeps
  the serial dependence of returns that the asymptotic formula ignores.
- ``deflated_sharpe_ratio``: the PSR against the Sharpe the best of ``n_trials`` no-skill trials
  would reach by luck (Bailey & Lopez de Prado 2014).
- ``pbo_cscv``: Probability of Backtest Overfitting by combinatorially symmetric cross-validation
  (Bailey, Borwein, Lopez de Prado & Zhu 2017), for four or more configurations.
- ``hit_rate_vs_baseline``: a directional hit rate against a baseline's (always-up, mean-return) on
  the same origins, with an HAC (Newey-West) variance for overlapping multi-step horizons, and the
  effective sample size that overlap leaves.

All Sharpe ratios here are computed from per-bar net returns (the strategy's ``growth - 1``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np

from lstmcast.errors import UsageError
from lstmcast.evaluate.metrics import diebold_mariano, wilson_interval

EULER_GAMMA = 0.5772156649015329
NEVER_IN_MARKET = "never in the market"


def _moments(x: np.ndarray) -> tuple[float, float, float, float]:
    """mean, sd (ddof=1), skewness, (non-excess) kurtosis."""
    mu = float(np.mean(x))
    sd = float(np.std(x, ddof=1))
    d = x - mu
    m2 = float(np.mean(d**2))
    if m2 == 0:
        return mu, sd, 0.0, 3.0
    return mu, sd, float(np.mean(d**3) / m2**1.5), float(np.mean(d**4) / m2**2)


def sharpe_se(sr: float, n: int, *, skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """Standard error of a per-bar Sharpe estimate from ``n`` returns (Mertens 2002)."""
    v = (1 - skew * sr + (kurtosis - 1) / 4 * sr**2) / (n - 1)
    return math.sqrt(v) if v > 0 else float("nan")


def probabilistic_sharpe_ratio(
    sr: float, n: int, *, benchmark: float = 0.0, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """PSR: the probability that the true per-bar Sharpe exceeds ``benchmark`` (per-bar units)."""
    from scipy import stats

    if n < 2:
        return float("nan")
    se = sharpe_se(sr, n, skew=skew, kurtosis=kurtosis)
    if not math.isfinite(se) or se == 0:
        return float("nan")
    return float(stats.norm.cdf((sr - benchmark) / se))


@dataclass(frozen=True)
class SharpeStats:
    """One strategy's Sharpe with its uncertainty. Ratios are None when never in the market."""

    in_market: bool
    status: str  # "ok" or NEVER_IN_MARKET
    time_in_market: float  # fraction of bars with a position
    n: int
    sharpe: float | None  # annualised
    sharpe_low: float | None  # annualised confidence interval
    sharpe_high: float | None
    psr: float | None  # P(true Sharpe > benchmark)
    benchmark_sharpe: float | None  # annualised, e.g. buy-and-hold's
    skew: float | None
    kurtosis: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def time_in_market(position: np.ndarray) -> float:
    """Fraction of bars with a non-zero position."""
    p = np.asarray(position, dtype="float64")
    return float(np.mean(p != 0)) if len(p) else float("nan")


def sharpe_stats(
    net: np.ndarray,
    position: np.ndarray,
    *,
    benchmark_sharpe: float | None = None,
    bars_per_year: float = 252.0,
    level: float = 0.95,
) -> SharpeStats:
    """Annualised Sharpe of per-bar net returns, its ``level`` interval and PSR against a benchmark.

    ``benchmark_sharpe`` is annualised (e.g. buy-and-hold's over the same bars); None compares with 0.
    """
    from scipy import stats

    r = np.asarray(net, dtype="float64")
    pos = np.asarray(position, dtype="float64")
    if r.shape != pos.shape or r.ndim != 1:
        raise UsageError(f"net returns {r.shape} and positions {pos.shape} must be 1-d and of one length")
    tim = time_in_market(pos)
    if not np.any(pos != 0):
        return SharpeStats(in_market=False, status=NEVER_IN_MARKET, time_in_market=tim, n=len(r), sharpe=None,
                           sharpe_low=None, sharpe_high=None, psr=None, benchmark_sharpe=benchmark_sharpe,
                           skew=None, kurtosis=None)
    n = len(r)
    mu, sd, sk, ku = _moments(r)
    ann = math.sqrt(bars_per_year)
    if n < 3 or sd == 0:
        return SharpeStats(in_market=True, status="ok", time_in_market=tim, n=n, sharpe=None, sharpe_low=None,
                           sharpe_high=None, psr=None, benchmark_sharpe=benchmark_sharpe, skew=None, kurtosis=None)
    sr = mu / sd
    se = sharpe_se(sr, n, skew=sk, kurtosis=ku)
    z = float(stats.norm.ppf(0.5 + level / 2))
    bench = 0.0 if benchmark_sharpe is None else benchmark_sharpe / ann
    return SharpeStats(
        in_market=True, status="ok", time_in_market=tim, n=n, sharpe=sr * ann,
        sharpe_low=(sr - z * se) * ann, sharpe_high=(sr + z * se) * ann,
        psr=probabilistic_sharpe_ratio(sr, n, benchmark=bench, skew=sk, kurtosis=ku),
        benchmark_sharpe=benchmark_sharpe, skew=sk, kurtosis=ku,
    )


def stationary_bootstrap_indices(n: int, *, mean_block: float, rng: np.random.Generator) -> np.ndarray:
    """One resample of ``0..n-1``: blocks of geometric length (mean ``mean_block``), wrapping around."""
    if mean_block < 1:
        raise UsageError(f"mean block length must be at least 1, got {mean_block}")
    new = rng.random(n) < 1.0 / mean_block
    new[0] = True
    block = np.cumsum(new) - 1  # block number of each position
    first = np.flatnonzero(new)  # position where each block starts
    start = rng.integers(n, size=len(first))  # where in the series each block starts
    return (start[block] + np.arange(n) - first[block]) % n


def bootstrap_sharpe_interval(
    net: np.ndarray,
    *,
    mean_block: float = 10.0,
    n_boot: int = 1000,
    level: float = 0.95,
    bars_per_year: float = 252.0,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the annualised Sharpe under the stationary bootstrap (fixed seed)."""
    r = np.asarray(net, dtype="float64")
    if len(r) < 3:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    srs = np.empty(n_boot)
    for b in range(n_boot):
        x = r[stationary_bootstrap_indices(len(r), mean_block=mean_block, rng=rng)]
        sd = np.std(x, ddof=1)
        srs[b] = np.mean(x) / sd if sd > 0 else np.nan
    srs = srs[np.isfinite(srs)] * math.sqrt(bars_per_year)
    if len(srs) == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(srs, [0.5 - level / 2, 0.5 + level / 2])
    return (float(lo), float(hi))


def expected_max_sharpe(n_trials: int, var_sharpe: float) -> float:
    """Sharpe (per bar) the best of ``n_trials`` skill-less trials reaches by luck (False Strategy theorem)."""
    from scipy import stats

    if n_trials < 1:
        raise UsageError(f"number of trials must be at least 1, got {n_trials}")
    if n_trials == 1:
        return 0.0
    e = (1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n_trials) + EULER_GAMMA * stats.norm.ppf(
        1 - 1 / (n_trials * math.e)
    )
    return float(math.sqrt(var_sharpe) * e)


def deflated_sharpe_ratio(
    sr: float, n: int, *, n_trials: int, var_sharpe: float, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """DSR: PSR of the chosen strategy's per-bar Sharpe ``sr`` (from ``n`` returns) against the
    expected maximum of ``n_trials`` trials whose per-bar Sharpes have variance ``var_sharpe``."""
    return probabilistic_sharpe_ratio(
        sr, n, benchmark=expected_max_sharpe(n_trials, var_sharpe), skew=skew, kurtosis=kurtosis
    )


@dataclass(frozen=True)
class Deflated:
    best: int  # column index of the selected (highest-Sharpe) trial
    sharpe: float  # its annualised Sharpe
    threshold: float  # annualised expected max Sharpe of n_trials no-skill trials
    dsr: float
    n_trials: int

    def to_dict(self) -> dict:
        return asdict(self)


def deflated_sharpe_of_trials(
    returns: np.ndarray, *, n_trials: int | None = None, bars_per_year: float = 252.0
) -> Deflated:
    """DSR of the best of the trials in ``returns [T, N]`` (per-bar net returns, one column per trial).

    ``n_trials`` defaults to ``N``; pass more when other trials were tried and discarded. The Sharpe
    variance across trials is estimated from the columns (at least 2 needed). Columns that never
    trade (all zero) count as trials but not towards the variance.
    """
    r = np.asarray(returns, dtype="float64")
    if r.ndim != 2 or r.shape[1] < 2 or r.shape[0] < 3:
        raise UsageError(f"DSR needs returns [T >= 3, N >= 2 trials], got shape {r.shape}")
    sd = r.std(axis=0, ddof=1)
    traded = sd > 0
    if traded.sum() < 2:
        raise UsageError("DSR needs at least 2 trials that trade")
    sr = np.full(r.shape[1], -np.inf)
    sr[traded] = r[:, traded].mean(axis=0) / sd[traded]
    best = int(np.argmax(sr))
    n_tr = r.shape[1] if n_trials is None else n_trials
    var = float(np.var(sr[traded], ddof=1))
    _, _, sk, ku = _moments(r[:, best])
    ann = math.sqrt(bars_per_year)
    return Deflated(
        best=best, sharpe=float(sr[best] * ann), threshold=expected_max_sharpe(n_tr, var) * ann,
        dsr=deflated_sharpe_ratio(float(sr[best]), r.shape[0], n_trials=n_tr, var_sharpe=var, skew=sk, kurtosis=ku),
        n_trials=n_tr,
    )


@dataclass(frozen=True)
class PBO:
    pbo: float  # fraction of splits where the in-sample best ranks below the out-of-sample median
    n_splits: int
    logits: np.ndarray  # one per split

    def to_dict(self) -> dict:
        return {"pbo": self.pbo, "n_splits": self.n_splits, "median_logit": float(np.median(self.logits))}


def _sharpe_cols(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = x.mean(axis=0) / sd
    # A configuration that never trades earns cash, Sharpe 0, for ranking (not last: ranking it
    # last would lift every trading configuration above the out-of-sample median for free).
    return np.where(sd > 0, s, 0.0)


def pbo_cscv(returns: np.ndarray, *, n_blocks: int = 16) -> PBO:
    """Probability of Backtest Overfitting by CSCV over ``returns [T, N]`` (N >= 4 configurations).

    The T rows are cut into ``n_blocks`` (even) contiguous blocks; for every way of choosing half of
    them as in-sample, the configuration with the best in-sample Sharpe is ranked out of sample;
    ``logit = log(w / (1 - w))`` with ``w`` its relative rank. PBO is the share of logits <= 0.
    """
    from scipy import stats

    r = np.asarray(returns, dtype="float64")
    if r.ndim != 2 or r.shape[1] < 4:
        raise UsageError(f"PBO needs at least 4 configurations (columns), got shape {r.shape}")
    if n_blocks < 2 or n_blocks % 2:
        raise UsageError(f"CSCV needs an even number of blocks >= 2, got {n_blocks}")
    t, n = r.shape
    if t < 2 * n_blocks:
        raise UsageError(f"CSCV with {n_blocks} blocks needs at least {2 * n_blocks} rows, got {t}")
    blocks = np.array_split(np.arange(t), n_blocks)
    logits = []
    for ins in itertools.combinations(range(n_blocks), n_blocks // 2):
        mask = np.zeros(n_blocks, dtype=bool)
        mask[list(ins)] = True
        is_rows = np.concatenate([blocks[b] for b in range(n_blocks) if mask[b]])
        oos_rows = np.concatenate([blocks[b] for b in range(n_blocks) if not mask[b]])
        best = int(np.argmax(_sharpe_cols(r[is_rows])))
        oos = _sharpe_cols(r[oos_rows])
        rank = stats.rankdata(oos)[best]  # 1 = worst
        w = rank / (n + 1)
        logits.append(math.log(w / (1 - w)))
    lg = np.asarray(logits)
    return PBO(pbo=float(np.mean(lg <= 0)), n_splits=len(lg), logits=lg)


def effective_n(x: np.ndarray, *, max_lag: int) -> float:
    """``n / (1 + 2 sum_{k=1..max_lag} rho_k)``: the independent observations a dependent series is worth.

    Negative or tiny autocorrelation sums are floored so that n_eff never exceeds n.
    """
    v = np.asarray(x, dtype="float64")
    n = len(v)
    if n < 2:
        return float(n)
    d = v - v.mean()
    g0 = float(np.mean(d**2))
    if g0 == 0 or max_lag < 1:
        return float(n)
    rho = [float(np.sum(d[k:] * d[:-k]) / n / g0) for k in range(1, min(max_lag, n - 1) + 1)]
    return float(n / max(1.0, 1 + 2 * sum(rho)))


def always_up_hits(actual: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Hits of the always-up call: the close at each step is above the origin's close, ``[n, h]``."""
    a = np.asarray(actual, dtype="float64")
    a = a[:, None] if a.ndim == 1 else a
    return a > np.asarray(last, dtype="float64")[:, None]


@dataclass(frozen=True)
class HitRateTest:
    """Model hit rate against a baseline's on the same origins (per step and pooled)."""

    baseline: str
    hit_rate: float  # pooled over steps
    baseline_hit_rate: float
    difference: float
    p: float  # two-sided, HAC variance over origins (lag horizon - 1)
    n: int  # origins
    n_effective: float  # origins' worth of independent evidence for the pooled model hit series
    low: float  # Wilson interval of the model's pooled hit rate at n_effective
    high: float
    by_step: list[dict]

    def to_dict(self) -> dict:
        return asdict(self)


def hit_rate_vs_baseline(hits: np.ndarray, baseline_hits: np.ndarray, *, baseline: str = "always_up") -> HitRateTest:
    """Is the model's directional hit rate above the baseline's on the same origins?

    ``hits`` and ``baseline_hits`` are boolean ``[n, h]`` (``metrics.direction_hits``,
    ``always_up_hits``). The paired difference of the per-origin mean hit is tested with the
    Diebold-Mariano machinery (0/1 loss, Newey-West variance up to lag ``h - 1``, HLN correction),
    so overlapping steps are not counted as independent; step ``s`` alone uses lag ``s - 1``.
    """
    m = np.asarray(hits, dtype="float64")
    b = np.asarray(baseline_hits, dtype="float64")
    m = m[:, None] if m.ndim == 1 else m
    b = b[:, None] if b.ndim == 1 else b
    if m.shape != b.shape:
        raise UsageError(f"model hits {m.shape} and baseline hits {b.shape} must cover the same origins and steps")
    n, h = m.shape
    pm, pb = m.mean(axis=1), b.mean(axis=1)
    # losses are misses: 1 - hit; DM's power-1 loss on non-negative values is the loss itself
    _, p = diebold_mariano(1 - pm, 1 - pb, horizon=h, power=1)
    n_eff = effective_n(pm, max_lag=h - 1) if h > 1 else float(n)
    rate = float(pm.mean())
    lo, hi = wilson_interval(rate * n_eff, n_eff) if n_eff > 0 else (float("nan"), float("nan"))
    steps = []
    for s in range(h):
        _, ps = diebold_mariano(1 - m[:, s], 1 - b[:, s], horizon=s + 1, power=1)
        steps.append({"step": s + 1, "hit_rate": float(m[:, s].mean()), "baseline_hit_rate": float(b[:, s].mean()),
                      "p": ps})
    return HitRateTest(
        baseline=baseline, hit_rate=rate, baseline_hit_rate=float(pb.mean()), difference=rate - float(pb.mean()),
        p=p, n=n, n_effective=n_eff, low=lo, high=hi, by_step=steps,
    )


def selection_note(deflated: Deflated | None, pbo: PBO | None) -> str:
    """One line telling the user what the selection corrections mean for the best configuration."""
    parts = []
    if deflated is not None:
        verdict = "likely real" if deflated.dsr >= 0.95 else "not distinguishable from luck"
        parts.append(
            f"best of {deflated.n_trials} tried: Sharpe {deflated.sharpe:.2f} vs {deflated.threshold:.2f} expected "
            f"from luck alone, DSR {deflated.dsr:.2f} ({verdict})"
        )
    if pbo is not None:
        parts.append(f"chance the in-sample winner is below median out of sample (PBO) {pbo.pbo:.0%}")
    return "; ".join(parts) if parts else "one configuration tried: no selection correction needed"


def strategy_significance(
    strategies: dict, *, benchmark: str = "buy_and_hold", bars_per_year: float = 252.0, level: float = 0.95
) -> dict[str, SharpeStats]:
    """``sharpe_stats`` for each ``strategy.StrategyResult`` (name -> result), PSR against ``benchmark``'s Sharpe.

    Per-bar net returns are read from the equity curve, so fees count.
    """
    def net(res) -> np.ndarray:
        e = np.asarray(res.equity, dtype="float64")
        return e[1:] / e[:-1] - 1

    bench = None
    if benchmark in strategies:
        b = sharpe_stats(net(strategies[benchmark]), strategies[benchmark].position, bars_per_year=bars_per_year)
        bench = b.sharpe
    return {
        name: sharpe_stats(net(res), res.position, benchmark_sharpe=bench, bars_per_year=bars_per_year, level=level)
        for name, res in strategies.items()
    }
