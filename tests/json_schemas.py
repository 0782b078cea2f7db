"""JSON schemas of the commands' ``--json`` output, as documented in README "JSON output".

Checked with ``jsonschema`` (a dev dependency) in tests/test_cli_json.py.
"""

from __future__ import annotations

ISO = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$"}
ISO_OR_NULL = {"anyOf": [ISO, {"type": "null"}]}
NUM_OR_NULL = {"type": ["number", "null"]}
METHOD_OR_NULL = {"enum": ["split", "aci", None]}  # how a recorded interval was made (README "lstmcast run")


def _obj(props: dict, *, optional: tuple[str, ...] = ()) -> dict:
    return {
        "type": "object",
        "properties": props,
        "required": [k for k in props if k not in optional],
        "additionalProperties": False,
    }


ERROR = _obj(
    {"error": _obj({"code": {"type": "integer", "minimum": 1}, "message": {"type": "string", "minLength": 1}})}
)

FORECAST = _obj(
    {
        "series": {"type": "string"},
        "interval": {"type": "string"},
        "run_id": {"type": "string"},
        "origin": ISO,
        "last_close": {"type": "number"},
        "made_at": ISO,
        "level": NUM_OR_NULL,
        "interval_method": METHOD_OR_NULL,
        "steps": {
            "type": "array",
            "minItems": 1,
            "items": _obj(
                {
                    "step": {"type": "integer", "minimum": 1},
                    "target_time": ISO,
                    "predicted": {"type": "number"},
                    "lower": NUM_OR_NULL,
                    "upper": NUM_OR_NULL,
                    "level_lower": NUM_OR_NULL,
                    "level_upper": NUM_OR_NULL,
                }
            ),
        },
    }
)

FORECASTS = _obj(
    {
        "series": {"type": "string"},
        "interval": {"type": "string"},
        "live": _obj(
            {
                "n": {"type": "integer"},
                "pending": {"type": "integer"},
                **{
                    k: NUM_OR_NULL
                    for k in (
                        "mae", "rmse", "naive_mae", "naive_rmse", "skill", "hit_rate", "hit_low", "hit_high",
                        "coverage",
                    )
                },
            }
        ),
        # the series' adaptive conformal state (null before `lstmcast run` wrote one)
        "aci": {"anyOf": [{"type": "null"}, _obj({
            "level": {"type": "number"},
            "gamma": {"type": "number"},
            "steps": {"type": "array", "items": _obj({
                "step": {"type": "integer", "minimum": 1},
                "method": {"enum": ["split", "aci"]},
                "level_lower": {"type": "number"},
                "level_upper": {"type": "number"},
                "n": {"type": "integer", "minimum": 0},
                "through": ISO_OR_NULL,
            })},
        })]},
        "rows": {
            "type": "array",
            "items": _obj(
                {
                    "origin": ISO,
                    "run_id": {"type": "string"},
                    "step": {"type": "integer", "minimum": 1},
                    "target_time": ISO,
                    "predicted": {"type": "number"},
                    "naive": {"type": "number"},
                    "lower": NUM_OR_NULL,
                    "upper": NUM_OR_NULL,
                    "level": NUM_OR_NULL,
                    "made_at": ISO,
                    "actual": NUM_OR_NULL,
                    "scored_at": ISO_OR_NULL,
                    "level_lower": NUM_OR_NULL,
                    "level_upper": NUM_OR_NULL,
                    "interval_method": METHOD_OR_NULL,
                }
            ),
        },
    }
)

RUN = _obj(
    {
        "run_id": {"type": "string"},
        "started": ISO,
        "finished": ISO_OR_NULL,
        "interrupted": {"type": "boolean"},
        "exit_code": {"type": "integer"},
        "entries": {
            "type": "array",
            "items": _obj(
                {
                    "entry": {"type": "string"},
                    "fetched": {"type": ["integer", "null"]},
                    "trained": {"type": ["string", "null"]},
                    "promoted": {"type": ["boolean", "null"]},
                    "forecast": {"anyOf": [FORECAST, {"type": "null"}]},
                    "scored": {"type": "integer"},
                    "pruned": {"type": "integer"},
                    "error": {"type": ["string", "null"]},
                    "seconds": {"type": "number"},
                    "ok": {"type": "boolean"},
                }
            ),
        },
        # the live checks after the run (README "Live checks, notifications and lstmcast status")
        "checks": {
            "type": "object",
            "additionalProperties": _obj(
                {
                    "flags": {"type": "array", "items": {"type": "string"}},
                    "error": {"type": ["string", "null"]},
                    "checks": {
                        "type": "object",
                        "additionalProperties": _obj(
                            {"status": {"enum": ["ok", "flag", "skip"]}, "reason": {"type": "string"}}
                        ),
                    },
                }
            ),
        },
        "events": {
            "type": "array",
            "items": _obj({"kind": {"type": "string"}, "message": {"type": "string"},
                           "entry": {"type": ["string", "null"]}}),
        },
        "notifications": {"type": "array", "items": {"type": "object"}},
        "rollbacks": {"type": "array", "items": {"type": "object"}},
    }
)

# `lstmcast train SYM SYM ... --json` (also --all, --symbols-file, --executor): one object per series;
# `report` is the single-series `train --json` object
TRAIN_MANY = {
    "type": "array",
    "items": _obj({
        "symbol": {"type": "string", "minLength": 1},
        "ok": {"type": "boolean"},
        "error": {"type": ["string", "null"]},
        "report": {"anyOf": [{"type": "object", "required": ["series", "run_id", "promoted", "status", "metrics",
                                                               "beats_naive"]}, {"type": "null"}]},
    }),
}

_LEVEL_COVERAGE = {
    "type": "object",
    "additionalProperties": _obj(
        {
            "nominal": {"type": "number"},
            "observed": NUM_OR_NULL,
            "by_step": {"type": "array", "items": NUM_OR_NULL},
            "n": {"type": "integer", "minimum": 0},
            "n_by_step": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        }
    ),
}
_STEP_COVERAGE = {
    "type": "object",
    "additionalProperties": _obj({"observed": NUM_OR_NULL, "n": {"type": "integer", "minimum": 0}}),
}

# `lstmcast backtest SYMBOL --json` (one series): the keys this schema names, and more (see README).
BACKTEST = {
    "type": "object",
    "required": ["series", "interval", "setup", "config", "n_origins", "metrics", "metrics_by_step", "coverage",
                 "predict_coverage", "steps", "verdict", "leaderboard", "families", "records"],
    "properties": {
        "config": {
            "type": "object",
            "required": ["horizon", "trained_horizon", "refit_every", "levels", "intervals"],
            "properties": {"horizon": {"type": "integer", "minimum": 1},
                           "trained_horizon": {"type": "integer", "minimum": 1}},
        },
        "coverage": _LEVEL_COVERAGE,
        "predict_coverage": _LEVEL_COVERAGE,
        "steps": {
            "type": "array",
            "minItems": 1,
            "items": _obj(
                {
                    "step": {"type": "integer", "minimum": 1},
                    "method": {"enum": ["direct", "recursive"]},
                    "n": {"type": "integer", "minimum": 1},
                    "mae": NUM_OR_NULL,
                    "mase": NUM_OR_NULL,
                    "naive_mase": NUM_OR_NULL,
                    "mae_ratio": NUM_OR_NULL,
                    "skill": NUM_OR_NULL,
                    "coverage": _STEP_COVERAGE,
                    "predict_coverage": _STEP_COVERAGE,
                }
            ),
        },
        "records": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["origin_time", "target_time", "step", "method", "origin_close", "actual", "forecast"],
                "properties": {"origin_time": ISO, "target_time": ISO, "step": {"type": "integer", "minimum": 1},
                               "method": {"enum": ["direct", "recursive"]}},
            },
        },
    },
}

# `lstmcast report SYMBOL --json`: the page's path and headline, with the per-step rows of `backtest --json`.
REPORT = _obj(
    {
        "report": {"type": "string", "minLength": 1},
        "series": {"type": "string"},
        "interval": {"type": "string"},
        "verdict": {"type": "string"},
        "horizon": {"type": "integer", "minimum": 1},
        "trained_horizon": {"type": "integer", "minimum": 1},
        "steps": BACKTEST["properties"]["steps"],
    }
)
