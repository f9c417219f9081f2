"""Read a sweep spec from YAML, apply ``--set`` overrides, and validate it once.

Every failure becomes a :class:`~sweeps.errors.SpecError` whose message names the file,
the field, the bad value and the fix, so the CLI can print it without a traceback.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sweeps.errors import SpecError
from sweeps.spec.domains import DOMAIN_ERROR
from sweeps.spec.models import (
    AshaSpec,
    CategoricalParam,
    FloatParam,
    IntParam,
    LearningRateScale,
    NoSchedulerSpec,
    SweepSpec,
)
from sweeps.spec.sampler_options import SAMPLER_OPTION_ERROR

#: What a spec needs at the least, for messages about a file that is not a spec at all.
MINIMAL_SPEC = (
    "`name: my-sweep`, `trainable: digits_mlp`, `metric: val_accuracy`, `mode: max`, "
    "`num_samples: 20` and a `search_space` with `batch_size`, `epochs` and `learning_rate` "
    "(e.g. `batch_size: {type: categorical, values: [32, 64]}`, `epochs: 5`, `learning_rate: "
    "{type: float, low: 1.0e-4, high: 1.0e-1, log: true}`)"
)
#: The `type` each tagged union of the spec accepts, for a mapping that gives none.
_UNION_TYPES = {"scheduler": "`asha` or `none`", "search_space": "`float`, `int` or `categorical`"}


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec together with where it came from (needed for errors and resume)."""

    spec: SweepSpec
    path: Path
    overrides: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return _describe_source(self.path, self.overrides)


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> LoadedSpec:
    """Load, override and validate a spec file.

    Example:
        >>> loaded = load_spec("sweeps/examples/digits_mlp.yaml", ["num_samples=8"])
        >>> loaded.spec.num_samples
        8
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"{path}: the spec file does not exist. Check the path.") from None
    except OSError as exc:
        raise SpecError(f"{path}: the spec file cannot be read ({exc}).") from None
    raw = parse_yaml(text, path)
    raw = apply_overrides(raw, overrides, path)
    return validate_spec(raw, path, tuple(overrides))


def parse_yaml(text: str, path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        problem = exc.problem or exc.context or "invalid syntax"
        raise SpecError(
            f"{path}: malformed YAML at {where}: {problem}. Fix the syntax there "
            "(check indentation, colons and closing brackets)."
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: malformed YAML: {exc}.") from None
    if raw is None:  # nothing but whitespace or comments
        raise SpecError(
            f"{path}: the spec file is empty. A spec is a YAML mapping that needs at least "
            f"{MINIMAL_SPEC}; start from sweeps/examples/digits_mlp.yaml."
        )
    if not isinstance(raw, dict):
        kind = "a list" if isinstance(raw, list) else f"the single value {raw!r}"
        raise SpecError(
            f"{path}: the spec must be a YAML mapping of fields (`name: ...`, `trainable: ...` on "
            f"their own lines), but the file holds {kind}. It needs at least {MINIMAL_SPEC}."
        )
    return raw


def apply_overrides(
    raw: dict[str, Any], overrides: list[str] | tuple[str, ...], path: Path
) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides; values are parsed as YAML scalars (``8`` is an int)."""
    result = copy.deepcopy(raw)
    for override in overrides:
        key, sep, value_text = override.partition("=")
        if not sep or not key.strip():
            raise SpecError(
                f"{path}: the override `--set {override}` is not of the form key.path=value; "
                "write for example `--set num_samples=8`."
            )
        try:
            value = yaml.safe_load(value_text) if value_text.strip() else None
        except yaml.YAMLError:
            value = value_text
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {} if child is None else child
                if not isinstance(child, dict):
                    raise SpecError(
                        f"{path}: the override `--set {override}` goes inside `{part}`, "
                        f"but `{part}` is a {type(child).__name__}, not a mapping."
                    )
                node[part] = child
            node = child
        node[parts[-1]] = value
    return result


def validate_spec(raw: dict[str, Any], path: Path, overrides: tuple[str, ...] = ()) -> LoadedSpec:
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_format_validation_error(exc, raw, path, overrides)) from None
    return LoadedSpec(spec=spec, path=path, overrides=overrides, raw=raw)


def _describe_source(path: Path, overrides: tuple[str, ...]) -> str:
    if overrides:
        return f"{path} (with --set {' --set '.join(_shortened(o) for o in overrides)})"
    return str(path)


def _format_validation_error(
    exc: ValidationError, raw: dict[str, Any], path: Path, overrides: tuple[str, ...]
) -> str:
    sentences = []
    for error in _most_specific(exc.errors()):
        location = [str(part) for part in error["loc"] if not _is_union_tag(part)]
        field_path = ".".join(location) or "(top level)"
        if error["type"] == "extra_forbidden":
            sentences.append(_unknown_key_sentence(location, raw))
            continue
        if error["type"] == DOMAIN_ERROR:  # raised for the whole search_space: name the entry
            field_path = ".".join([*location, error["ctx"]["parameter"]])
            sentences.append(f"field `{field_path}`: {error['ctx']['message']}.")
            continue
        if error["type"] == SAMPLER_OPTION_ERROR:  # raised for the whole sampler: name the option
            field_path = (
                ".".join([*location, error["ctx"]["option"]]) if error["ctx"]["option"] else field_path
            )
            sentences.append(f"field `{field_path}`: {error['ctx']['message']}.")
            continue
        if error["type"] in ("union_tag_not_found", "union_tag_invalid"):
            sentences.append(_missing_type_sentence(field_path, error))
            continue
        message = error["msg"].removeprefix("Value error, ")
        value = error.get("input")
        shown = "" if isinstance(value, (dict, list)) else f" (got {_shortened(repr(value))})"
        sentences.append(f"field `{field_path}`{shown}: {message}.")
    return f"{_describe_source(path, overrides)}: invalid sweep spec: " + " ".join(sentences)


def _shortened(text: str, limit: int = 60) -> str:
    # A 300-character name would fill the error paragraph with itself.
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _is_union_tag(part: Any) -> bool:
    # Pydantic inserts the union member's name into the location (e.g. "float", "int",
    # "asha"); the user never wrote those, so they are left out of the field path.
    return part in {"float", "int", "categorical", "asha", "none", "str", "bool", "literal['auto']"} or (
        isinstance(part, str) and part.startswith(("function-", "tagged-union", "literal["))
    )


def _most_specific(errors: list[Any]) -> list[Any]:
    """Keep one message per field, and only the deepest one.

    A search-space entry is a union of distributions and fixed values, so a bad
    distribution also fails "should be a valid integer" one level up; that message is
    noise next to the real one inside the distribution.
    """
    locations = [".".join(str(p) for p in e["loc"] if not _is_union_tag(p)) for e in errors]
    kept, seen = [], set()
    for error, location in zip(errors, locations, strict=False):
        deeper_exists = any(other.startswith(location + ".") for other in locations)
        if location in seen or deeper_exists:
            continue
        seen.add(location)
        kept.append(error)
    return kept


def _unknown_key_sentence(location: list[str], raw: dict[str, Any]) -> str:
    key = location[-1]
    parent_path = location[:-1]
    model: type[BaseModel] | None = SweepSpec
    node: Any = raw
    for depth, part in enumerate(parent_path):
        node = node.get(part) if isinstance(node, dict) else None
        model = _child_model(model, part, node, inside_space=depth == 1 and parent_path[0] == "search_space")
    valid = sorted(model.model_fields) if model is not None else []
    where = ".".join(parent_path) if parent_path else "the top level"
    # A key that begins a valid one is a shortened name (`grace` for `grace_period`), however
    # close another key's spelling is (difflib ranks `brackets` above it).
    close = [name for name in valid if name.startswith(key)][:1] or difflib.get_close_matches(
        key, valid, n=1, cutoff=0.5
    )
    hint = f" Did you mean `{close[0]}`?" if close else ""
    defaulted = ""
    if parent_path == ["scheduler"] and isinstance(node, dict) and "type" not in node:
        defaulted = " (`scheduler.type` is not given, so it defaults to `asha`.)"
    return f"unknown key `{key}` in {where}.{hint} Valid keys there are: {', '.join(valid)}.{defaulted}"


def _missing_type_sentence(field_path: str, error: Any) -> str:
    union = "search_space" if field_path.startswith("search_space.") else field_path
    choices = _UNION_TYPES.get(union, "one of the documented types")
    given = error.get("input", {}).get("type") if isinstance(error.get("input"), dict) else None
    problem = "has no `type`" if given is None else f"has `type: {given}`, which is not a valid type"
    return f"field `{field_path}` {problem}; give `type:` {choices}."


def _child_model(
    model: type[BaseModel] | None, part: str, node: Any, inside_space: bool
) -> type[BaseModel] | None:
    if part == "scale" and model is not None and "scale" in model.model_fields:
        return LearningRateScale
    if inside_space and isinstance(node, dict):  # a distribution inside search_space
        distributions: dict[Any, type[BaseModel]] = {
            "float": FloatParam,
            "int": IntParam,
            "categorical": CategoricalParam,
        }
        return distributions.get(node.get("type"))
    if model is None or part == "search_space":
        return None
    if model is SweepSpec and part == "scheduler":
        kind = node.get("type") if isinstance(node, dict) else None
        return NoSchedulerSpec if kind == "none" else AshaSpec
    field = model.model_fields.get(part)
    annotation = field.annotation if field is not None else None
    # A section whose field is one model (sampler, resources, tracking, failure, limits...).
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
