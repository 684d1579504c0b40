"""Typed schemas of ``train.py``'s config groups, registered in Hydra's ConfigStore.

Every group file in ``configs/`` starts from a schema stored here (``defaults: -
/schema/<group>@_here_: <name>``), so Hydra checks option names and types while it composes
the config, before any file is opened or model built: ``trainer.epochs=abc`` or
``model.n_mode=4`` fail at the command line. :func:`validate` then instantiates each group,
which runs the range checks of the class that owns the options (:class:`TrainerConfig`,
:class:`DataConfig`, the optimizer and scheduler configs, and each model's signature).

The schemas are derived, not written twice: a model's schema has one field per argument of its
``__init__`` (type and default from the signature); the trainer's and data's schemas have one
field per field of :class:`TrainerConfig` and :class:`DataConfig`. Annotations OmegaConf cannot
type (``int | Sequence[int]``, ``str | list[str]``) become ``Any`` fields whose values are
checked against the annotation when the group is instantiated.

Stored schemas (group ``schema/<group>``, option name):

* ``schema/model``: one per registered model (``fno``, ``tfno``, ... , ``resampled``); the
  inner ``model`` of ``resampled`` is checked against its own family's schema;
* ``schema/data``: ``data``, and ``online`` (the same with ``data.online``, the options of
  :class:`~neuralops.data.online.OnlineConfig`); ``schema/trainer``: ``trainer``;
* ``schema/optim``: ``adam``, ``adamw``, ``sgd``; ``schema/scheduler``: ``cosine``, ``step``,
  ``onecycle``, ``none`` (``optim/scheduler=cosine`` selects one);
* ``schema/finetune``: ``refine`` (Spectral-Refiner fine-tuning, ``+finetune=refine``);
* the primary config's schema ``neuralops_config`` (``seed``, the four groups, ``finetune``).
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from pathlib import Path
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Dict, List, Optional, Union

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from neuralops.data.factory import DataConfig
from neuralops.data.online import OnlineConfig
from neuralops.errors import ConfigError
from neuralops.models import available, model_class
from neuralops.training.finetune import RefineConfig
from neuralops.training.optim import OPTIMIZER_CONFIGS, SCHEDULER_CONFIGS
from neuralops.training.trainer import TrainerConfig

#: Options every model receives from the data (``train.py`` fills them), absent from user configs.
DATA_FILLED = ("in_channels", "out_channels")
_PRIMITIVES = (int, float, bool, str)


@dataclasses.dataclass
class NeuralopsConfig:
    """The primary config: the four groups and the seed of every random choice of the run."""

    model: Any = MISSING
    data: Any = MISSING
    optim: Any = MISSING
    trainer: Any = MISSING
    seed: int = 0
    finetune: Any = None  # +finetune=refine: Spectral-Refiner fine-tuning of a trained run


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType)


def _schema_type(annotation: Any, where: str) -> tuple[Any, bool]:
    """``(type OmegaConf can hold, exact)`` for the option ``where``; ``exact=False`` means the
    schema holds ``Any`` and the value is checked against ``annotation`` by :func:`conforms`
    instead. A dataclass becomes a nested schema of its fields."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return Any, True
    if annotation in _PRIMITIVES:
        return annotation, True
    if annotation is Path:
        return Optional[str], True
    if _is_union(annotation):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        if len(members) == 1:
            inner, exact = _schema_type(members[0], where)
            if exact and inner is not Any:
                return (Optional[inner] if optional else inner), True
        return Any, False
    origin = typing.get_origin(annotation) or annotation
    if origin in (list, tuple, Sequence, typing.Sequence):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        if len(set(args)) == 1 and args[0] in _PRIMITIVES:
            return List[args[0]], True
        return Any, False
    if origin in (dict, Mapping, typing.Mapping):
        return Dict[str, Any], True
    if dataclasses.is_dataclass(annotation):
        return make_schema(f"{annotation.__name__}Schema", where, _dataclass_options(annotation)), True
    return Any, False


def conforms(value: Any, annotation: Any) -> bool:
    """Whether a plain config value fits a type annotation (``bool`` is not an ``int``; an
    ``int`` is a ``float``; lists stand for sequences and tuples)."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True
    if annotation is type(None) or annotation is None:
        return value is None
    if _is_union(annotation):
        return any(conforms(value, member) for member in typing.get_args(annotation))
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    origin = typing.get_origin(annotation) or annotation
    if origin in (list, tuple, Sequence, typing.Sequence):
        if not isinstance(value, (list, tuple, ListConfig)):
            return False
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        item = args[0] if len(set(args)) == 1 else Any
        return all(conforms(v, item) for v in value)
    if origin in (dict, Mapping, typing.Mapping):
        return isinstance(value, (dict, DictConfig))
    return isinstance(value, origin) if isinstance(origin, type) else True


def _describe(annotation: Any) -> str:
    if _is_union(annotation):
        return " | ".join(_describe(member) for member in typing.get_args(annotation))
    if annotation is type(None):
        return "null"
    text = str(annotation).replace("typing.", "").replace("collections.abc.", "")
    return getattr(annotation, "__name__", text) if typing.get_origin(annotation) is None else text


def make_schema(
    name: str,
    group: str,
    options: Sequence[tuple[str, Any, Any]],
    check: Callable[[Any], None] | None = None,
) -> type:
    """A dataclass for OmegaConf with one field per ``(option, annotation, default)``.

    ``default`` is ``inspect.Parameter.empty`` (or ``dataclasses.MISSING``) for a required
    option. On instantiation the dataclass checks every ``Any`` field against its annotation
    and then calls ``check(instance)``; failures raise :class:`ConfigError` naming
    ``<group>.<option>``.
    """
    fields, loose = [], {}
    for option, annotation, default in options:
        schema_type, exact = _schema_type(annotation, f"{group}.{option}")
        if not exact:
            loose[option] = annotation
        if default in (inspect.Parameter.empty, dataclasses.MISSING):
            fields.append((option, schema_type, dataclasses.field(default=MISSING)))
        elif dataclasses.is_dataclass(default):
            fields.append((option, schema_type, dataclasses.field(default_factory=lambda v=dataclasses.asdict(default), t=schema_type: t(**v))))
        elif isinstance(default, (list, tuple, dict)):
            frozen = OmegaConf.to_container(OmegaConf.create(default)) if isinstance(default, dict) else list(default)
            fields.append((option, schema_type, dataclasses.field(default_factory=lambda v=frozen: v)))
        else:
            fields.append((option, schema_type, dataclasses.field(default=default)))

    def __post_init__(self: Any) -> None:
        for option, annotation in loose.items():
            plain = _to_plain(getattr(self, option))
            if not conforms(plain, annotation):
                raise ConfigError(f"{group}.{option}={plain!r} is not a valid value: expected {_describe(annotation)}")
        if check is not None:
            check(self)

    return dataclasses.make_dataclass(name, fields, namespace={"__post_init__": __post_init__})


def _signature_options(cls: type) -> list[tuple[str, Any, Any]]:
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - an unresolvable annotation is checked by the model itself
        hints = {}
    options = [("name", str, cls.name)]
    for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        default = None if parameter.name in DATA_FILLED else parameter.default
        # null is allowed everywhere: it leaves an option to the data (options_from_grid)
        annotation = Optional[int] if parameter.name in DATA_FILLED else Optional[hints.get(parameter.name, Any)]
        options.append((parameter.name, annotation, default))
    return options


def _check_inner_model(config: Any) -> None:
    """``resampled``'s inner ``model`` is checked against its own family's schema."""
    inner = dict(_to_plain(config.model))
    if "name" not in inner:
        raise ConfigError("model.model lacks 'name' (the inner model's registered name, e.g. mgno)")
    _instantiate(lambda: OmegaConf.merge(OmegaConf.structured(model_schema(inner["name"])), inner), "model.model")


_MODEL_SCHEMAS: dict[str, type] = {}


def model_schema(name: str) -> type:
    """The schema of the registered model ``name`` (:class:`ConfigError` if unknown)."""
    cls = model_class(name)
    if cls.name not in _MODEL_SCHEMAS:
        check = _check_inner_model if cls.name == "resampled" else None
        _MODEL_SCHEMAS[cls.name] = make_schema(f"{cls.__name__}Config", "model", _signature_options(cls), check)
    return _MODEL_SCHEMAS[cls.name]


def _dataclass_options(cls: type) -> list[tuple[str, Any, Any]]:
    hints = typing.get_type_hints(cls)
    options = []
    for field in dataclasses.fields(cls):
        if field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = field.default
        options.append((field.name, hints[field.name], default))
    return options


def _check_trainer(config: Any) -> None:
    TrainerConfig.from_dict(_plain(config))


def _check_data(config: Any) -> None:
    # Paths resolve later against the launch directory; here only the values are checked.
    DataConfig.from_dict(_plain(config))


def _check_online_data(config: Any) -> None:
    options = _plain(config)
    OnlineConfig.from_dict(options.pop("online"))
    DataConfig.from_dict(options)


def _plain(config: Any) -> dict[str, Any]:
    return {f.name: _to_plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value


def register() -> None:
    """Store every schema in Hydra's ConfigStore (idempotent); ``train.py`` calls it before
    Hydra composes the config."""
    store = ConfigStore.instance()
    store.store(name="neuralops_config", node=NeuralopsConfig)
    for name in available():
        store.store(group="schema/model", name=name, node=model_schema(name))
    store.store(group="schema/trainer", name="trainer", node=make_schema("TrainerSchema", "trainer", _dataclass_options(TrainerConfig), _check_trainer))
    data_options = [(n, a, None if n == "path" else d) for n, a, d in _dataclass_options(DataConfig)]
    store.store(group="schema/data", name="data", node=make_schema("DataSchema", "data", data_options, _check_data))
    online_options = [*data_options, ("online", OnlineConfig, OnlineConfig())]
    store.store(group="schema/data", name="online", node=make_schema("OnlineDataSchema", "data", online_options, _check_online_data))
    for name, cls in OPTIMIZER_CONFIGS.items():
        store.store(group="schema/optim", name=name, node=cls)
    for name, cls in SCHEDULER_CONFIGS.items():
        store.store(group="schema/scheduler", name=name, node=cls)
    store.store(group="schema/finetune", name="refine", node=RefineConfig)


def _instantiate(config: Callable[[], DictConfig], where: str) -> Any:
    """``OmegaConf.to_object(config())`` with every error as a :class:`ConfigError` whose message
    names the option below ``where`` (a key path such as ``model.model``)."""
    try:
        return OmegaConf.to_object(config())
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - OmegaConf wraps errors raised in __post_init__
        if isinstance(err.__cause__, ConfigError):
            raise err.__cause__ from None
        message = one_line(err)
        raise ConfigError(message if message.startswith(f"{where}.") else f"{where}.{message}") from None


def validate(cfg: DictConfig) -> None:
    """Instantiate every group of a composed config, running the range checks of the classes
    that own the options. Raises :class:`ConfigError` naming the first bad option."""
    for group in ("model", "data", "optim", "trainer"):
        if group not in cfg or not isinstance(cfg[group], DictConfig):
            raise ConfigError(f"the config has no {group!r} group; choose one, e.g. {group}=<name>")
        _instantiate(lambda: cfg[group], group)
    if cfg.get("finetune") is not None:
        _instantiate(lambda: cfg.finetune, "finetune")


def one_line(err: BaseException) -> str:
    """A one-line message for an error Hydra or OmegaConf raised while composing a config:
    the option's full key, what was wrong, and for an unknown option the valid ones."""
    from hydra.errors import MissingConfigException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
    if isinstance(err, MissingConfigException) and err.options is not None:
        group = (err.missing_cfg_file or "").rsplit("/", 1)[0]
        options = [o for o in err.options if not o.startswith("schema")]
        return f"{err.missing_cfg_file!r} is not a config; available {group} options: {', '.join(sorted(options))}"
    if isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None)
        message = str(getattr(cause, "msg", None) or cause).splitlines()[0]
        if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and key:
            schema = getattr(cause, "object_type", None)
            valid = [f.name for f in dataclasses.fields(schema)] if dataclasses.is_dataclass(schema) else []
            suffix = f"; valid options: {', '.join(valid)}" if valid else ""
            owner = f" of {schema.__name__}" if isinstance(schema, type) else ""
            return f"{key} is not an option{owner}{suffix}"
        return f"{key}: {message}" if key else message
    return " ".join(str(err).split())
