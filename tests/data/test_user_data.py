"""Users' own data: pairs files (engine.data.pairs) and image sets (engine.data.image_files),
read with tiny generated files; every bad file is one DataError naming the file and line."""

import numpy as np
import pytest

from engine.data import DataError, ImageFiles, PairsDataset, build_dataset, save_pgm
from engine.data.pairs import END, PAD, SEP, UNK, _is_val
from engine.functional import IGNORE_INDEX


def _words(n, seed=0):
    rng = np.random.default_rng(seed)
    letters = list("abcdefghéñ")
    return ["".join(rng.choice(letters, rng.integers(2, 7))) for _ in range(n)]


def _pairs_file(tmp_path, lines, name="p.tsv"):
    path = tmp_path / name
    path.write_bytes(lines if isinstance(lines, bytes) else "\n".join(lines).encode("utf-8"))
    return str(path)


def test_pairs_rows_split_and_vocabulary(tmp_path):
    words = _words(120)
    path = _pairs_file(tmp_path, [f"{w}\t{w[::-1]}" for w in words] + ["", "  "])
    data = PairsDataset(path)
    sources = {data.decode(s) for s, _ in data._train}
    held = {data.decode(s) for s, _ in data._val}
    assert held and not sources & held  # a source never sits in both splits
    assert held == {w for w in words if _is_val(w)}
    assert data.input_width == max(map(len, words)) and data.seq_len == 2 * data.input_width + 1
    idx, targets = data.batch_of([(data.encode("ab"), data.encode("ba"))])
    W = data.input_width
    a, b = data.vocab.stoi["a"], data.vocab.stoi["b"]
    assert list(idx[0, :W + 3]) == [PAD] * (W - 2) + [a, b, SEP, b, a]
    assert list(targets[0, W - 1:W + 3]) == [IGNORE_INDEX, b, a, END]
    assert (targets[0, :W] == IGNORE_INDEX).all() and (targets[0, W + 3:] == IGNORE_INDEX).all()
    assert data.encode("aZ")[1] == UNK and data.decode(data.encode("bé")) == "bé"
    again = PairsDataset.from_description(data.describe())  # sampling: no file read
    assert again.vocab.itos == data.vocab.itos and again.seq_len == data.seq_len


@pytest.mark.parametrize("lines, where, what", [
    ([b"ab\tba", b"abc cba"], ":2", "needs one tab"),
    ([b"ab\tba", b"a\tb\tc"], ":2", "found 2"),
    ([b"ab\tba", b"\tba"], ":2", "source is empty"),
    ([b"ab\tba", b"x\tba", b"ab\t"], ":3", "target is empty"),
    ([b"ab\tba", b"ab\xff\tba"], ":2", "not UTF-8"),
    ([b"ab\tba", b"a" * 30 + b"\t" + b"b" * 30], ":2", "do not fit the model's context of 40"),
])
def test_bad_pairs_files_name_the_line(tmp_path, lines, where, what):
    path = _pairs_file(tmp_path, b"\n".join(lines))
    with pytest.raises(DataError, match=f"{path}{where}: .*{what}"):
        PairsDataset(path, max_tokens=40)


def test_pairs_files_without_a_split_or_lines_are_refused(tmp_path):
    with pytest.raises(DataError, match="holds no source<TAB>target lines"):
        PairsDataset(_pairs_file(tmp_path, ["", ""]))
    with pytest.raises(DataError, match="split empty"):
        PairsDataset(_pairs_file(tmp_path, ["ab\tba"], "one.tsv"))
    with pytest.raises(DataError, match="is not a file"):
        build_dataset(pairs=str(tmp_path), context_length=64)


def _image_folder(tmp_path, n=40):
    rng = np.random.default_rng(0)
    for k, name in enumerate(["cat", "dog"]):
        (tmp_path / "set" / name).mkdir(parents=True)
        for i in range(n):
            img = np.clip(rng.random((8, 8)) * 0.3 + 0.6 * k, 0, 1)
            if i % 2:
                save_pgm(tmp_path / "set" / name / f"{i}.pgm", img)
            else:
                np.save(tmp_path / "set" / name / f"{i}.npy", (img * 65535).astype(np.uint16))
    (tmp_path / "set" / "cat" / "notes.txt").write_text("ignored")
    return str(tmp_path / "set")


def test_image_folder_classes_split_and_stats(tmp_path):
    data = ImageFiles(_image_folder(tmp_path))
    assert data.classes == ("cat", "dog") and (data.image_size, data.channels) == (8, 1)
    train, val = data._train, data._val
    assert len(train[1]) + len(val[1]) == 80 and len(val[1]) > 0
    assert train[0].shape[1:] == (1, 8, 8)
    assert 0 <= train[0].min() and train[0].max() <= 1  # both formats in their range
    mean, std = data.pixel_stats()
    np.testing.assert_allclose(mean, [train[0].mean()], rtol=1e-5)
    np.testing.assert_allclose(std, [train[0].std()], rtol=1e-5)
    assert np.mean(train[0][train[1] == 1]) > np.mean(train[0][train[1] == 0]) + 0.4
    again = ImageFiles.from_description(data.describe())
    assert again.classes == data.classes and again.image_size == 8


def test_image_npz_colour_and_declared_ranges(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (60, 4, 4, 3), dtype=np.uint8)
    labels = np.arange(60) % 3
    np.savez(tmp_path / "c.npz", images=images, labels=labels, classes=np.array(["a", "b", "c"]))
    data = ImageFiles(str(tmp_path / "c.npz"))
    assert data.classes == ("a", "b", "c") and data.channels == 3
    both = np.concatenate([data._train[0], data._val[0]])
    assert both.shape[1:] == (3, 4, 4)
    np.testing.assert_allclose(np.sort(both.ravel()), np.sort(images.ravel() / 255.0), atol=1e-6)


def test_bad_image_sets_are_named(tmp_path):
    np.savez(tmp_path / "a.npz", images=np.zeros((10, 4, 4)))
    with pytest.raises(DataError, match="a.npz' needs arrays 'images' and 'labels'"):
        ImageFiles(str(tmp_path / "a.npz"))
    np.savez(tmp_path / "b.npz", images=np.zeros((10, 4, 6)), labels=np.arange(10) % 2)
    with pytest.raises(DataError, match="b.npz' are 6x4: the ViT takes square"):
        ImageFiles(str(tmp_path / "b.npz"))
    np.savez(tmp_path / "c.npz", images=np.zeros((10, 4, 4)), labels=np.arange(10),
             classes=np.array(["x", "y"]))
    with pytest.raises(DataError, match="2 class names for labels up to 9"):
        ImageFiles(str(tmp_path / "c.npz"))
    folder = tmp_path / "f"
    (folder / "one").mkdir(parents=True)
    (folder / "two").mkdir()
    np.save(folder / "one" / "a.npy", np.zeros((4, 4)))
    np.save(folder / "two" / "b.npy", np.zeros((5, 5)))
    with pytest.raises(DataError, match="b.npy' is 5x5x1; .*a.npy' is 4x4x1"):
        ImageFiles(str(folder))
    with pytest.raises(DataError, match="neither a folder"):
        ImageFiles(str(tmp_path / "missing"))


def test_png_goes_through_pillow_or_names_the_extra(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_pillow(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    (tmp_path / "x.png").write_bytes(b"\x89PNG")
    monkeypatch.setattr(builtins, "__import__", no_pillow)
    from engine.data.image_files import read_image
    needs = r"x.png': PNG needs Pillow: pip install 'attn-engine\[images\]'"
    with pytest.raises(DataError, match=needs):
        read_image(str(tmp_path / "x.png"))
    monkeypatch.undo()
    Image = pytest.importorskip("PIL.Image")
    grey16 = (np.arange(16).reshape(4, 4) * 4096).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g.png")
    np.testing.assert_allclose(read_image(str(tmp_path / "g.png"))[:, :, 0], grey16 / 65535,
                               atol=1e-6)
    rgb = np.random.default_rng(0).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    np.testing.assert_allclose(read_image(str(tmp_path / "c.png")), rgb / 255, atol=1e-6)


def test_an_encoder_decoder_bounds_the_target_only(tmp_path):
    lines = [f"{'x' * 60}{w}\t{w}" for w in _words(40)] + ["ab\t" + "b" * 9]
    path = _pairs_file(tmp_path, lines)
    data = PairsDataset(path, max_tokens=40, max_target=10)  # long sources are fine
    assert data.input_width >= 62 and data.target_width == 9
    with pytest.raises(DataError, match=f"{path}:41: the target has 9 characters; the "
                                        f"model's decoder takes at most 8"):
        PairsDataset(path, max_target=9)
