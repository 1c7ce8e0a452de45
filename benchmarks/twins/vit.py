"""The ViT's PyTorch twin: a linear patch embedding, a class token and learned positions
(torchvision's VisionTransformer recipe: class token zeros, positions normal(0, 0.02)),
nn.TransformerEncoder (pre-LN, GELU, the tiny config's sizes), a final LayerNorm and a linear
head, everything else at PyTorch's default initialisation; trained on the same images
(normalised by the same training-split statistics) with torch.optim.AdamW at its defaults
except the learning rate, and our warm-up and cosine schedule."""

import numpy as np
import torch
from torch import nn

from benchmarks.twins.loop import fit


class TwinViT(nn.Module):
    def __init__(self, image_size, channels, classes, patch=4, n_embd=64, n_head=4, layers=3):
        super().__init__()
        self.patch, n = patch, (image_size // patch) ** 2
        self.embed = nn.Linear(channels * patch * patch, n_embd)
        self.cls = nn.Parameter(torch.zeros(1, 1, n_embd))
        self.pos = nn.Parameter(torch.empty(1, n + 1, n_embd).normal_(std=0.02))
        layer = nn.TransformerEncoderLayer(n_embd, n_head, 4 * n_embd, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.ln = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, classes)

    def forward(self, x):  # (B, C, H, W), normalised
        B, C, H, W = x.shape
        P = self.patch
        x = x.reshape(B, C, H // P, P, W // P, P).permute(0, 2, 4, 1, 3, 5)
        x = self.embed(x.reshape(B, (H // P) * (W // P), C * P * P))
        x = torch.cat([self.cls.expand(B, -1, -1), x], 1) + self.pos
        return self.head(self.ln(self.encoder(x)[:, 0]))


def _prepare(images, mean, std):
    x = np.asarray(images, np.float32)
    x = x[:, None] if x.ndim == 3 else x
    m = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
    return torch.from_numpy((x - m) / s)


def train(data, *, steps, seed=0, lr=4e-3, batch_size=128, threads=1, warmup=50, min_lr=None,
          patch=4):
    """Train the twin on an image dataset (GlyphImages or ImageFiles); returns the model.
    lr, batch_size, warmup, min_lr and patch are the run's (compare.py passes ours)."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    mean, std = data.pixel_stats()
    model = TwinViT(data.image_size, data.channels, data.num_classes, patch=patch)
    model.stats = (mean, std)
    rng = np.random.default_rng(seed)

    def batch_loss(step):
        images, labels = data.get_batch("train", batch_size, rng)
        return nn.functional.cross_entropy(model(_prepare(images, mean, std)),
                                           torch.from_numpy(labels))
    return fit(model, batch_loss, steps=steps, lr=lr, warmup=warmup, min_lr=min_lr)


@torch.no_grad()
def accuracy(model, images, labels):
    model.eval()
    logits = model(_prepare(images, *model.stats))
    return float((logits.argmax(-1).numpy() == labels).mean())
