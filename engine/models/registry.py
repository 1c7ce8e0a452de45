"""The model-family registry: each family file registers its Module class and config class."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelFamily:
    """A model family: `model(config, rng=...)` builds one; `config` is its config dataclass
    (`tiny()`, `small()`, `from_name(name, **overrides)`, `to_dict()`, `from_dict(d)`)."""

    name: str
    model: type
    config: type


_FAMILIES: dict[str, ModelFamily] = {}


def register_model(name, model, config):
    """Register a model family under `name` (called at the bottom of its file)."""
    _FAMILIES[name] = ModelFamily(name, model, config)
    return _FAMILIES[name]


def get_model(name):
    """The registered family called `name`; a ValueError lists the known ones."""
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; known: "
                         f"{', '.join(sorted(_FAMILIES))}") from None


def model_names():
    """The registered family names, sorted."""
    return sorted(_FAMILIES)
