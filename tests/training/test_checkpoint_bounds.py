"""Checkpoint files are read within bounds: an .npz is judged by its headers before any array
data is read (a small file cannot declare a huge array), and a changed text file is noticed."""

import io
import zipfile

import numpy as np
import pytest

from engine.training import CheckpointError, checkpoint


def _npz_with_header(shape, dtype, data=b"", compress=zipfile.ZIP_DEFLATED):
    """Raw bytes of an .npz whose one member declares `shape` but holds `data` only."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": np.dtype(dtype).str,
                                                  "fortran_order": False, "shape": shape})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compress) as zf:
        zf.writestr("wte.weight.npy", header.getvalue() + data)
    return out.getvalue()


def test_a_small_npz_declaring_a_huge_array_is_refused_from_its_headers(ckpt_copy):
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                      "shape": (2**21,)})
        zf.writestr("wte.weight.npy", header.getvalue() + bytes(2**24))  # 16 MiB of zeros
    assert len(raw.getvalue()) < 2**16  # the same ratio lets 2 MB hold 1.5 GiB
    (ckpt_copy / "model.npz").write_bytes(raw.getvalue())
    with pytest.raises(CheckpointError, match="compressed array"):  # the old reader
        checkpoint.load(ckpt_copy)  # inflated every array before looking at any


@pytest.mark.parametrize("shape, data, words", [
    ((10**12,), b"\0" * 8, "declares shape"),  # a stored member shorter than its header says
    ((2,), b"\0" * 24, "declares shape"),  # longer
])
def test_an_npz_whose_header_disagrees_with_its_data_is_refused(ckpt_copy, shape, data, words):
    (ckpt_copy / "model.npz").write_bytes(
        _npz_with_header(shape, np.float64, data, zipfile.ZIP_STORED))
    with pytest.raises(CheckpointError, match=words):
        checkpoint.load(ckpt_copy)
