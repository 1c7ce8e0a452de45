"""Checks of `attn sample`'s flags against the checkpoint's model, made before any decoding:
a flag the model cannot honour is one line, never silently ignored or a traceback later."""

from commands import CliError

MAX_TOKENS = 100_000  # the most tokens one `attn sample` decodes (a bound, not a target)


def check_sample_args(args, model, data):
    """CliError naming the first flag of `args` that does not fit `model` and its `data`."""
    from engine.data import GlyphImages, ImageFiles, PairsDataset, SyntheticTask
    images = isinstance(data, GlyphImages | ImageFiles)
    task = isinstance(data, SyntheticTask | PairsDataset)  # an answer to a source
    if images and args.prompt is not None:
        raise CliError("--prompt applies to token models; this checkpoint holds an image "
                       "model: pass --image FILE to classify one")
    if images and args.tokens is not None:
        raise CliError("--tokens applies to token models; this checkpoint holds an image "
                       "model, which predicts one class per image")
    if args.attention and not (images or task):
        raise CliError("--attention shows what a task's answer or an image model attended "
                       "to; this checkpoint holds a text model")
    if args.tokens is not None:
        limit = min(MAX_TOKENS, getattr(model.config, "max_tgt_len", MAX_TOKENS))
        if args.tokens > limit:
            why = ("its decoder's max_tgt_len" if limit < MAX_TOKENS else
                   "the most `attn sample` decodes")
            raise CliError(f"--tokens {args.tokens} is more than {limit:,} ({why})")
