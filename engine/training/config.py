"""TrainConfig: everything a training run depends on, saved in the checkpoint's config.json."""

from dataclasses import asdict, dataclass, field, fields

from engine.training.validate import check_train_config

# What task, steps, lr, batch_size, the warm-up and the cosine floor are when neither the
# user nor the model family says (min_lr None: lr / 10).
TRAIN_DEFAULTS = {"task": "reverse", "steps": 600, "lr": 3e-3, "batch_size": 32,
                  "warmup_steps": 50, "min_lr": None}


def family_defaults(model):
    """TRAIN_DEFAULTS with model family `model`'s own values over them (its config class's
    TRAIN_DEFAULTS: the ViT trains on glyphs, 2000 steps of 128 images, ...); the plain
    defaults for a name that is not a registered family (check_train_config refuses it)."""
    family = {}
    if isinstance(model, str):
        from engine.models import get_model, model_names
        if model in model_names():
            family = getattr(get_model(model).config, "TRAIN_DEFAULTS", {})
    return {**TRAIN_DEFAULTS, **family}


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved in the checkpoint's config.json).

    The defaults train the tiny GPT on the reverse task in 600 steps (about a minute on
    two cores): exact match passes 75% by step 100 and reached 100% of 1,000 held-out
    sequences (greedy decoding) in scripts/quality.py. 3-digit addition: steps=3000.

    `steps` is the length of the whole run (the cosine schedule spans it). Resuming with
    the same settings continues bit-for-bit; resuming with more steps extends the run
    (the schedule stretches from there on).
    """

    task: str | None = None  # reverse | copy | sort | add | glyphs (ignored when `text` is
    #                          set); None: the family's (reverse; the ViT's glyphs)
    text: str | None = None  # path of a UTF-8 text file: character-level language model
    pairs: str | None = None  # a TSV file of source<TAB>target lines (engine.data.pairs)
    images: str | None = None  # a folder of class folders, or an .npz (engine.data.image_files)
    model: str = "gpt"  # registered model family (engine.models.model_names())
    config: str = "tiny"  # the family's config name: tiny | small
    model_overrides: dict = field(default_factory=dict)  # config fields, e.g. n_layer
    task_options: dict = field(default_factory=dict)  # min_len, max_len, digits
    steps: int | None = None  # the run's length; None: the family's (GPT 600)
    batch_size: int | None = None  # examples per step; None: the family's (GPT 32)
    lr: float | None = None  # peak learning rate; None: the family's (see __post_init__)
    min_lr: float | None = None  # end of the cosine decay; None: the family's (lr / 10)
    warmup_steps: int | None = None  # None: the family's (50)
    weight_decay: float = 0.1
    betas: tuple = (0.9, 0.99)
    grad_clip: float = 1.0
    eval_every: int = 100  # 0: only the final evaluation
    eval_batches: int = 4  # validation-loss batches per evaluation
    eval_examples: int = 200  # held-out problems for periodic (teacher-forced) exact match
    final_eval_examples: int = 1000  # held-out problems decoded greedily at the end
    ckpt_every: int = 500  # 0: only at the end (and on Ctrl-C)
    out_dir: str | None = None  # checkpoint directory; None: no checkpoints
    resume: bool = False  # continue from the checkpoint in out_dir
    device: str = "cpu"  # where the model and its optimizer state live: cpu | cuda | ...
    seed: int = 0

    def __post_init__(self):
        # the TRAIN_DEFAULTS fields left as None take the model family's recommended
        # values (family_defaults); fixed here, so saved runs record them.
        unset = [name for name in TRAIN_DEFAULTS if getattr(self, name) is None]
        if unset:
            defaults = family_defaults(self.model)
            for name in unset:
                setattr(self, name, defaults[name])
        check_train_config(self)  # ConfigError naming the first bad field

    def to_dict(self):
        return {**asdict(self), "betas": list(self.betas)}

    @classmethod
    def from_dict(cls, d):
        """The config of a saved dict; keys this version does not know are ignored, and
        fields a format-1 checkpoint lacks (model, device) take their defaults; a field of
        the wrong type or range is a ConfigError naming it."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        if isinstance(kwargs.get("betas"), list):
            kwargs["betas"] = tuple(kwargs["betas"])
        cfg = cls(**kwargs)
        if "min_lr" in kwargs and kwargs["min_lr"] is None:
            # a saved None has always meant lr / 10, whatever the family default is today:
            # a resumed run keeps its schedule
            cfg.min_lr = None
        return cfg
