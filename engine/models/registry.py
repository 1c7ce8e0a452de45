"""The model-family registry, and the contract between a model family, a dataset and the trainer.

A family file registers its model class and config class by name at its bottom
(`register_model("gpt", GPT, GPTConfig)`); `get_model(name)` finds it. The trainer
(engine.training) builds every model through this registry and relies on nothing but the
contract below, so a new family or a new dataset needs no change to the training loop.

Config class (a dataclass):
  Config.from_name(name, **overrides)   the named size ("tiny", "small") with field overrides
  config.to_dict(), Config.from_dict(d)  a JSON round trip (checkpoints store the dict)
  config.num_parameters(), config.step_bytes(batch_size, seq_len)   (optional)
                                        the parameter count and a training step's activation
                                        bytes, computed without building anything: the
                                        trainer refuses sizes that would not fit in memory
  config.context_length                 the longest sequence the model takes; a dataset with
                                        no length of its own (text) cuts windows this long
  Config.TRAIN_DEFAULTS (optional)      {"task", "steps", "lr", "batch_size",
                                        "warmup_steps", "min_lr"}: what TrainConfig uses
                                        when the user gives none (else reverse, 600, 3e-3,
                                        32, 50, lr / 10): the family's natural task and its
                                        recommended schedule
  config.for_data(data) -> config        a copy fitted to the dataset: it reads the dataset's
                                        size attributes (token data: vocab_size, seq_len),
                                        grows what must grow (GPT: vocab_size) and raises
                                        ValueError, saying why, when the data cannot fit
                                        (GPT: seq_len > block_size)
Model class (an engine.nn.Module):
  Model(config, rng=seed)                reproducible initialisation; `model.config` kept
  model(inputs, targets) -> (outputs, loss)
                                        inputs and targets are host numpy arrays (the model
                                        moves them to its device); loss is a scalar Tensor
  model.to(device), state_dict(), load_state_dict(), named_modules() (Module's own)
Dataset (engine.data: SyntheticTask, CharDataset):
  data.get_batch(split, batch_size, rng) -> (inputs, targets)
                                        host numpy arrays; split "train" or "val"; all
                                        randomness drawn from rng (a numpy Generator)
  data.describe() -> dict                JSON-able; engine.data.dataset_from_description
                                        rebuilds the dataset from it
  data.evaluate(model, *, final, examples) -> dict
                                        the task's own metrics, JSON-able (exact match on
                                        held-out problems, a bigram baseline, ...), merged
                                        after the trainer's generic {"step", "val_loss"};
                                        final=True is the end-of-run evaluation
  token data also has vocab_size and seq_len (tokens per example) for `for_data`
"""

from dataclasses import asdict, dataclass, fields
from typing import ClassVar


@dataclass(frozen=True)
class ModelFamily:
    """A registered model family: `model(config, rng=...)` builds one; `config` is its config
    dataclass (see the module docstring for what both provide)."""

    name: str
    model: type
    config: type


class NamedConfig:
    """What a family's config dataclass may inherit for the contract above: SIZES maps a
    config name ("tiny", "small") to its field values, `family` names the family in errors,
    and from_name / to_dict / from_dict follow. `check_positive_ints` is the usual
    __post_init__ check of size fields."""

    SIZES: ClassVar[dict] = {}
    family = ""

    @classmethod
    def from_name(cls, name, **overrides):
        if name not in cls.SIZES:
            raise ValueError(f"unknown config {name!r} for {cls.family}; use "
                             f"{' or '.join(repr(n) for n in cls.SIZES)}")
        return cls(**{**cls.SIZES[name], **overrides})

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"{cls.__name__}.from_dict: unknown keys {unknown}")
        return cls(**d)

    def check_positive_ints(self, *names):
        """A ValueError naming the first of `names` that is not a positive integer."""
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive integer, "
                                 f"got {value!r}")


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
