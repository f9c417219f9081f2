"""How trainables declare themselves, and how a spec's ``trainable`` string is resolved.

A trainable is a plain function ``train(config, ctx)``. The :func:`trainable` decorator
attaches what the orchestrator must know *before* any trial starts: the training-set size
N (so iterations can be computed) and whether the last partial batch is dropped.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeps.errors import TrainableError

_DECLARATION_ATTRIBUTE = "__sweeps_trainable__"
#: Built-in trainables by name; resolved lazily so that listing them never imports torch.
BUILTIN_TRAINABLES: dict[str, str] = {
    "digits_mlp": "trainables.digits_mlp:train",
    "synthetic_mlp": "trainables.synthetic_mlp:train",
}


@dataclass(frozen=True)
class TrainableDeclaration:
    dataset_size: Callable[[dict[str, Any]], int]
    drop_last: bool
    description: str


def trainable(
    *,
    dataset_size: int | Callable[[dict[str, Any]], int],
    drop_last: bool = False,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Declare a function as a sweeps trainable.

    Args:
        dataset_size: N, the training-set size, or a function of ``trainable_args``
            returning it. It must not load the data: ``sweep plan`` calls it.
        drop_last: Whether the trainable drops the last partial batch of each epoch.

    Example:
        >>> @trainable(dataset_size=lambda args: args.get("n_samples", 1000))
        ... def train(config, ctx):
        ...     ...
    """
    size_function = dataset_size if callable(dataset_size) else (lambda args, n=dataset_size: n)

    def decorate(function: Callable[..., None]) -> Callable[..., None]:
        doc = inspect.getdoc(function) or ""
        setattr(
            function,
            _DECLARATION_ATTRIBUTE,
            TrainableDeclaration(size_function, drop_last, doc.split("\n")[0]),
        )
        return function

    return decorate


@dataclass(frozen=True)
class ResolvedTrainable:
    """A trainable found from its spec string, with a reference a Ray worker can re-import."""

    reference: str
    # Declared to return None; what a contract-breaking one returns is checked after the call.
    function: Callable[..., object]
    declaration: TrainableDeclaration

    def dataset_size(self, trainable_args: dict[str, Any]) -> int:
        try:
            size = int(self.declaration.dataset_size(trainable_args))
        except Exception as exc:  # noqa: BLE001 - any failure here is the user's declaration
            raise TrainableError(
                f"trainable `{self.reference}`: its declared dataset_size failed for "
                f"trainable_args={trainable_args!r} ({type(exc).__name__}: {exc}). Check "
                "`trainable_args` in the spec."
            ) from None
        return size

    @property
    def drop_last(self) -> bool:
        return self.declaration.drop_last


def resolve_trainable(
    reference: str, base_dir: Path | None = None, source: str = "spec"
) -> ResolvedTrainable:
    """Resolve a built-in name, ``package.module:function`` or ``path/to/file.py:function``."""
    target = BUILTIN_TRAINABLES.get(reference, reference)
    module_part, sep, function_name = target.rpartition(":")
    if not sep or not module_part or not function_name:
        raise TrainableError(
            f"{source}: field `trainable` is {reference!r}, which is neither a built-in "
            f"({', '.join(BUILTIN_TRAINABLES)}) nor of the form `package.module:function` "
            "or `path/to/file.py:function`. Use one of those forms."
        )
    if module_part.endswith(".py"):
        module, canonical = _load_file(module_part, base_dir, reference, source)
        canonical = f"{canonical}:{function_name}"
    else:
        module = _import_module(module_part, reference, source)
        canonical = target
    function = getattr(module, function_name, None)
    if not callable(function):
        raise TrainableError(
            f"{source}: field `trainable` is {reference!r}, but `{module_part}` has no "
            f"function `{function_name}`. Check the name after the colon."
        )
    declaration = getattr(function, _DECLARATION_ATTRIBUTE, None)
    if declaration is None:
        raise TrainableError(
            f"{source}: field `trainable` is {reference!r}, but that function does not "
            "declare its training-set size. Decorate it with "
            "`@sweeps.trainable(dataset_size=...)` so iterations can be computed before "
            "any trial starts."
        )
    _check_signature(function, reference, source)
    return ResolvedTrainable(canonical, function, declaration)


def _check_signature(function: Callable[..., Any], reference: str, source: str) -> None:
    """Refuse, before any trial starts, a function Ray could only find wrong by calling it.

    Found in the trial, a ``def train(config)`` cost 13 s and 4 retried failures, its reason
    visible only in ``sweep status``. A generator or ``async`` function would be called and
    return without running its body, so it would never report.
    """
    where = _where_defined(function)
    name = getattr(function, "__name__", "train")
    if inspect.iscoroutinefunction(function) or inspect.isgeneratorfunction(function):
        kind = (
            "an `async` function"
            if inspect.iscoroutinefunction(function)
            else "a generator (it uses `yield`)"
        )
        raise TrainableError(
            f"{source}: field `trainable` is {reference!r}, but `{name}` in {where} is {kind}, "
            "whose body would not run when called. A trainable is a plain function: write "
            f"`def {name}(config, ctx):` and report with `ctx.report(...)` instead of yielding."
        )
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to check
        return
    try:
        signature.bind(object(), object())
    except TypeError as exc:
        raise TrainableError(
            f"{source}: field `trainable` is {reference!r}, but `{name}{signature}` in {where} "
            f"cannot be called as `{name}(config, ctx)` ({exc}). A trainable takes the sampled "
            f"config and the context it reports through: define it as `def {name}(config, ctx):`."
        ) from None


def _where_defined(function: Callable[..., Any]) -> str:
    try:
        path = inspect.getsourcefile(inspect.unwrap(function))
    except TypeError:
        path = None
    return f"`{path}`" if path else f"module `{getattr(function, '__module__', '?')}`"


def _import_module(name: str, reference: str, source: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise TrainableError(
            f"{source}: field `trainable` is {reference!r}, but module `{name}` cannot be "
            f"imported ({exc}). Use a built-in ({', '.join(BUILTIN_TRAINABLES)}), an "
            "installed module, or a file path such as `my_trainable.py:train`."
        ) from None


def _load_file(path_text: str, base_dir: Path | None, reference: str, source: str) -> tuple[Any, str]:
    candidates = [Path(path_text)]
    if base_dir is not None and not Path(path_text).is_absolute():
        candidates.insert(0, base_dir / path_text)
    for candidate in candidates:
        if candidate.is_file():
            path = candidate.resolve()
            break
    else:
        raise TrainableError(
            f"{source}: field `trainable` is {reference!r}, but the file `{path_text}` does "
            "not exist (looked next to the spec and in the current directory). Fix the path."
        )
    module_name = f"sweeps_user_trainable_{abs(hash(str(path)))}"
    if module_name in sys.modules:
        return sys.modules[module_name], str(path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None  # is_file() was checked above
    module = importlib.util.module_from_spec(spec)
    try:
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - surface any import-time failure of user code
        sys.modules.pop(module_name, None)
        raise TrainableError(
            f"{source}: field `trainable` is {reference!r}, but importing `{path}` failed "
            f"({type(exc).__name__}: {exc}). Fix the error in that file."
        ) from None
    return module, str(path)
