"""The options a spec may give its sampler: whatever the Optuna sampler's constructor takes.

``sampler: {type: tpe, n_startup_trials: 5, multivariate: true}`` passes every key but
``type`` to ``optuna.samplers.TPESampler``. The list of valid keys is read from the
sampler's own signature (:func:`inspect.signature`), not copied here, so it follows the
installed Optuna: a typo (``n_startup_trails``) is rejected with the closest valid key,
and an option Optuna removes stops being accepted instead of being silently dropped.

Only options YAML can express are settable: those whose annotation is made of ``bool``,
``int``, ``float``, ``str`` and ``None``. ``seed`` comes from the sweep's own ``seed``
(a resumed sweep re-seeds the sampler), and callables or sampler objects
(``gamma``, ``constraints_func``, ``independent_sampler``) have no YAML form.

Each failure is a :class:`pydantic_core.PydanticCustomError` whose context names the
option, so :mod:`sweeps.spec.loading` can report the field as ``sampler.<option>``.
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from typing import Any

from pydantic_core import PydanticCustomError

#: The error type :mod:`sweeps.spec.loading` reads the option's name from.
SAMPLER_OPTION_ERROR = "sampler_option"

#: The Optuna class behind each ``sampler.type``.
SAMPLER_CLASSES = {
    "tpe": "TPESampler",
    "random": "RandomSampler",
    "cmaes": "CmaEsSampler",
    "gp": "GPSampler",
    "qmc": "QMCSampler",
    # Ours (sweeps.search.multi_fidelity): Optuna's TPE fitted on the highest rung with enough values.
    "multi_fidelity": "MultiFidelityTPESampler",
}

#: Options this product sets differently from Optuna's default (a spec may override them).
#: constant_liar: trials still running count as bad, so parallel workers do not all sample
#: the same promising region at once (Optuna 5 defaults to it too; Optuna 4 did not).
SWEEP_DEFAULTS: dict[str, dict[str, Any]] = {
    "tpe": {"constant_liar": True},
    "multi_fidelity": {"constant_liar": True},
}
#: Warnings that fire on every sweep, whatever its space: kept out of the log, not logged as params.
QUIET_DEFAULTS: dict[str, dict[str, Any]] = {
    "cmaes": {"warn_independent_sampling": False},
    "qmc": {"warn_independent_sampling": False},
}
#: Constructor arguments set by the sweep itself, with the reason the spec cannot set them.
SET_BY_SWEEP = {
    "seed": "the sampler is seeded from the sweep's top-level `seed` (and re-seeded on a resume); "
    "set `seed` there",
    "milestones": "the multi-fidelity sampler models the sweep's own ASHA rungs; set them in `scheduler`",
}
_YAML_TYPES: dict[str, type | None] = {"bool": bool, "int": int, "float": float, "str": str, "None": None}
_TYPE_WORDS: dict[type | None, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a string",
    None: "null",
}


def sampler_class(kind: str) -> Any:
    """The constructor a spec's options are checked against: Optuna's sampler, or for ours its stand-in."""
    if kind == "multi_fidelity":
        return multi_fidelity_options
    import optuna

    return getattr(optuna.samplers, SAMPLER_CLASSES[kind])


def multi_fidelity_options(
    *,
    milestones: Any = (),
    min_observations: int = 10,
    n_startup_trials: int = 10,
    n_ei_candidates: int = 24,
    multivariate: bool | None = None,
    group: bool = False,
    constant_liar: bool = True,
    seed: int | None = None,
) -> Any:
    """The constructor of :class:`sweeps.search.multi_fidelity.MultiFidelityTPESampler`, as the spec sees it.

    The spec sits below the search layer, so it checks that sampler's options against this
    declaration (tests/search/test_multi_fidelity.py holds the two signatures equal): the
    rung rule's own option here, and the rest by Optuna's TPESampler, which the sampler wraps.
    """
    import optuna

    if min_observations < 1:
        raise ValueError(
            f"The value of `min_observations` is {min_observations}, but must be `min_observations >= 1`"
        )
    return optuna.samplers.TPESampler(
        n_startup_trials=n_startup_trials,
        n_ei_candidates=n_ei_candidates,
        multivariate=multivariate,
        group=group,
        constant_liar=constant_liar,
        seed=seed,
    )


def settable_options(kind: str) -> dict[str, tuple[type | None, ...]]:
    """The constructor arguments of ``kind``'s sampler a spec can set, with their YAML types."""
    options = {}
    for name, parameter in inspect.signature(sampler_class(kind)).parameters.items():
        if name in SET_BY_SWEEP or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        types = _yaml_types(parameter.annotation)
        if types is not None:
            options[name] = types
    return options


def _yaml_types(annotation: Any) -> tuple[type | None, ...] | None:
    # Optuna writes its annotations as strings (`from __future__ import annotations`)
    # that name types it imports only for type checking, so `typing.get_type_hints`
    # fails on them; the union's parts are read from the text instead.
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    parts = [part.strip().strip("'\"") for part in text.split("|")]
    if annotation is inspect.Parameter.empty or any(part not in _YAML_TYPES for part in parts):
        return None
    return tuple(_YAML_TYPES[part] for part in parts)


def option_error(option: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(SAMPLER_OPTION_ERROR, "{message}", {"option": option, "message": message})


def check_sampler_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """Validate ``options`` against the constructor of ``kind``'s sampler; return them typed.

    Raises:
        PydanticCustomError: an unknown option (with the closest valid one), a value of
            the wrong type, or a combination Optuna's constructor refuses.
    """
    if not options:
        # Nothing to check: and Optuna (0.4 s to import) stays unimported for `sweep plan`,
        # `list`, `status` and `best`, which read specs but never sample.
        return {}
    class_name = SAMPLER_CLASSES[kind]
    settable = settable_options(kind)
    checked: dict[str, Any] = {}
    for option, value in options.items():
        if option in SET_BY_SWEEP:
            raise option_error(option, f"`{option}` cannot be set here: {SET_BY_SWEEP[option]}")
        if option not in settable:
            raise option_error(option, _unknown_option_message(kind, option, settable))
        checked[option] = _check_type(class_name, option, value, settable[option])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental/deprecation notes: see sampler_warnings
        try:
            sampler_class(kind)(seed=0, **sampler_arguments(kind, checked))
        except (ValueError, TypeError) as exc:
            option = next(iter(checked)) if len(checked) == 1 else ""
            raise option_error(
                option,
                (
                    f"Optuna's {class_name} refuses the options {checked}: "
                    f"{str(exc).rstrip('.')}. Change or remove them"
                ),
            ) from None
    return checked


def _unknown_option_message(kind: str, option: str, settable: dict[str, Any]) -> str:
    class_name = SAMPLER_CLASSES[kind]
    if not settable:
        return (
            f"unknown option `{option}`: `sampler: {{type: {kind}}}` (Optuna's {class_name}) takes no "
            "options besides the sweep's `seed`. Remove it"
        )
    in_signature = option in inspect.signature(sampler_class(kind)).parameters
    if in_signature:
        return (
            f"option `{option}` of Optuna's {class_name} takes a Python object (a function or a "
            f"sampler), which a YAML spec cannot give. Options settable here: {', '.join(sorted(settable))}"
        )
    close = difflib.get_close_matches(option, list(settable), n=1, cutoff=0.5)
    hint = f" Did you mean `{close[0]}`?" if close else ""
    return (
        f"unknown option `{option}` for `sampler: {{type: {kind}}}`.{hint} The options of Optuna's "
        f"{class_name} settable here are: {', '.join(sorted(settable))}"
    )


def _check_type(class_name: str, option: str, value: Any, types: tuple[type | None, ...]) -> Any:
    if value is None and None in types:
        return None
    if isinstance(value, bool):  # a bool is an int to Python, not to a user
        if bool in types:
            return value
    elif isinstance(value, int) and (int in types or float in types):
        return value if int in types else float(value)
    elif (isinstance(value, float) and float in types) or (isinstance(value, str) and str in types):
        return value
    expected = " or ".join(_TYPE_WORDS[t] for t in types)
    raise option_error(option, f"Optuna's {class_name} takes {expected} for `{option}`, but got {value!r}")


def sampler_arguments(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments the sampler is built with (all but the seed)."""
    return {**QUIET_DEFAULTS.get(kind, {}), **SWEEP_DEFAULTS.get(kind, {}), **options}


def effective_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """What a user should see (and the parent run logs): the spec's options and our defaults."""
    return {**SWEEP_DEFAULTS.get(kind, {}), **options}


def sampler_warnings(kind: str, options: dict[str, Any]) -> list[str]:
    """Optuna's deprecation notes on these options, e.g. that it ignores ``restart_strategy``.

    Experimental-feature notes (``group``, QMC itself) are left out: they say the interface
    may change, not that the option does something other than asked.
    """
    if not options:  # this product's defaults draw no deprecation note
        return []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sampler_class(kind)(seed=0, **sampler_arguments(kind, options))
    return [
        f"sampler ({SAMPLER_CLASSES[kind]}): {warning.message}"
        for warning in caught
        if issubclass(warning.category, (FutureWarning, DeprecationWarning))
    ]
