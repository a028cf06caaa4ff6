"""The allow-list of extra ultralytics train arguments a user may set in ``spec.hyperparameters``.

Anything not listed is rejected with a message that says why: arguments that choose where files are
written (project, name, save_dir, exist_ok) belong to the trainer, arguments with a spec field of their
own (model, data, epochs, ...) must be set there, and resuming is automatic.
"""

import math
from dataclasses import dataclass
from typing import Final

HyperValue = bool | int | float | str


@dataclass(frozen=True)
class Rule:
    """How one hyperparameter is checked: its JSON kind and, for numbers, its inclusive bounds."""

    kind: str  # "float", "int", "bool", "choice", "bool_or_choice"
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""  # said in messages, e.g. "hours" for time


_PROB = Rule("float", 0.0, 1.0)
_NONNEG = Rule("float", 0.0, None)
_BOOL = Rule("bool")

ALLOWED_HYPERPARAMETERS: Final[dict[str, Rule]] = {
    # optimisation
    "lr0": Rule("float", 1e-8, 10.0),
    "lrf": Rule("float", 1e-8, 1.0),
    "momentum": _PROB,
    "weight_decay": Rule("float", 0.0, 1.0),
    "warmup_epochs": _NONNEG,
    "warmup_momentum": _PROB,
    "warmup_bias_lr": _NONNEG,
    "optimizer": Rule(
        "choice", choices=("auto", "SGD", "MuSGD", "Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSProp")
    ),
    "cos_lr": _BOOL,
    "nbs": Rule("int", 1, 4096),
    "box": _NONNEG,
    "cls": _NONNEG,
    "dfl": _NONNEG,
    # schedule and stopping
    "patience": Rule("int", 1, 100000),
    "time": Rule("float", 0.001, 10000.0, unit="hours"),
    "close_mosaic": Rule("int", 0, 10000),
    "save_period": Rule("int", -1, 10000),
    "val": _BOOL,
    # reproducibility and data loading
    "seed": Rule("int", 0, 2**31 - 1),
    "deterministic": _BOOL,
    "workers": Rule("int", 0, 64),
    "cache": Rule("bool_or_choice", choices=("ram", "disk")),
    "fraction": Rule("float", 0.0001, 1.0),
    "single_cls": _BOOL,
    "rect": _BOOL,
    "amp": _BOOL,
    "pretrained": _BOOL,
    "freeze": Rule("int", 0, 1000),
    "dropout": _PROB,
    "multi_scale": _PROB,
    # augmentation
    "hsv_h": _PROB,
    "hsv_s": _PROB,
    "hsv_v": _PROB,
    "degrees": Rule("float", 0.0, 180.0),
    "translate": _PROB,
    "scale": _NONNEG,
    "shear": Rule("float", 0.0, 180.0),
    "perspective": Rule("float", 0.0, 0.001),
    "flipud": _PROB,
    "fliplr": _PROB,
    "bgr": _PROB,
    "mosaic": _PROB,
    "mixup": _PROB,
    "cutmix": _PROB,
    "copy_paste": _PROB,
}

_OUTPUT_KEYS: Final = frozenset({"project", "name", "save_dir", "exist_ok"})
_SPEC_KEYS: Final = frozenset({"model", "data", "epochs", "imgsz", "batch", "device"})


def hyperparameter_error(name: str, value: object) -> str | None:
    """Say what is wrong with one hyperparameter, or return None when it is allowed and in range."""
    if name in _OUTPUT_KEYS:
        return f"hyperparameter {name!r} is not allowed: the trainer chooses where outputs are written"
    if name in _SPEC_KEYS:
        return f"hyperparameter {name!r} is not allowed here: set the spec field {name!r} instead"
    if name == "resume":
        return "hyperparameter 'resume' is not allowed: an interrupted training resumes automatically"
    rule = ALLOWED_HYPERPARAMETERS.get(name)
    if rule is None:
        return f"unknown hyperparameter {name!r}; allowed: {', '.join(sorted(ALLOWED_HYPERPARAMETERS))}"
    return _value_error(name, value, rule)


def _value_error(name: str, value: object, rule: Rule) -> str | None:
    if rule.kind == "bool":
        return None if isinstance(value, bool) else f"hyperparameter {name!r} must be true or false"
    if rule.kind in ("choice", "bool_or_choice"):
        if rule.kind == "bool_or_choice" and isinstance(value, bool):
            return None
        if value in rule.choices:
            return None
        return f"hyperparameter {name!r} must be one of {', '.join(rule.choices)}"
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    unit = f" of {rule.unit}" if rule.unit else ""
    if not is_number or (rule.kind == "int" and not isinstance(value, int)):
        return f"hyperparameter {name!r} must be {'an integer' if rule.kind == 'int' else 'a number'}{unit}"
    number = float(value)  # type: ignore[arg-type]
    if (rule.low is not None and number < rule.low) or (rule.high is not None and number > rule.high):
        return f"hyperparameter {name!r} must be between {rule.low} and {rule.high}, got {value}"
    return None


def hyperparameter_errors(values: dict[str, HyperValue]) -> list[str]:
    """Return every problem in a hyperparameters map, so that a user can fix them all at once."""
    return [error for name, value in values.items() if (error := hyperparameter_error(name, value))]


def parse_hp(text: str) -> tuple[str, HyperValue]:
    """One ``KEY=VALUE`` of a command line (``--hp``), typed by the allow-list and checked against it.

    Every command line that takes ``--hp`` (``yoloctl submit``, ``python -m yolo_trainer``) parses through
    here, so ``lr0=1e-3`` is the number 0.001 and ``cos_lr=yes`` the boolean true in both. Raises
    ``ValueError`` with a message that starts with the key (the caller adds its flag's name).
    """
    true, false = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key or not raw:
        raise ValueError(f"{text!r}: expected KEY=VALUE, e.g. lr0=0.01")
    rule = ALLOWED_HYPERPARAMETERS.get(key)
    value: HyperValue = raw
    if rule is not None:
        try:
            if rule.kind == "float":
                value = float(raw)
            elif rule.kind == "int":
                value = int(raw)
            elif rule.kind in ("bool", "bool_or_choice") and raw.lower() in true + false:
                value = raw.lower() in true
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(raw)
        except ValueError:
            kind = "an integer" if rule.kind == "int" else "a number"
            unit = f" of {rule.unit}" if rule.unit else ""
            raise ValueError(f"{key}: must be {kind}{unit}, got {raw!r}") from None
    problem = hyperparameter_error(key, value)
    if problem:
        raise ValueError(f"{key}: {problem}")
    return key, value
