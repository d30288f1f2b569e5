"""Reader of the IDX format (MNIST, Fashion-MNIST), plain or gzip-compressed.

An IDX file is: two zero bytes, a type code, the number of dimensions ``d``; then ``d`` big-endian uint32
sizes; then the values in row-major order, big-endian.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np

from pyramid_bert.errors import DataError

IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes, *, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an IDX file (gzip-compressed or not) into an array of its shape and type.

    Multi-byte types come back in native byte order. Raises DataError naming ``name`` when the bytes are
    not a complete IDX file.
    """
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise DataError(f"{name}: corrupted gzip stream ({error})") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{name}: not an IDX file (expected two zero bytes, a type code and a rank)")
    type_code, rank = data[2], data[3]
    if type_code not in IDX_TYPES:
        valid = ", ".join(f"0x{code:02X}" for code in IDX_TYPES)
        raise DataError(f"{name}: unknown IDX type code 0x{type_code:02X}; valid codes: {valid}")
    header_size = 4 + 4 * rank
    if len(data) < header_size:
        raise DataError(f"{name}: IDX header truncated (rank {rank} needs {header_size} bytes)")
    shape = struct.unpack(f">{rank}I", data[4:header_size])
    dtype = IDX_TYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header_size != expected:
        raise DataError(
            f"{name}: IDX payload is {len(data) - header_size} bytes, shape {shape} of {dtype.name} needs {expected}"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """:func:`parse_idx` of a file (``.gz`` or plain)."""
    with open(path, "rb") as handle:
        return parse_idx(handle.read(), name=os.fspath(path))


def encode_idx(values: np.ndarray) -> bytes:
    """The IDX bytes of ``values`` (uncompressed); the inverse of :func:`parse_idx`."""
    array = np.asarray(values)
    codes = {dtype.newbyteorder("=").str: code for code, dtype in IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("=").str)
    if code is None:
        raise DataError(f"dtype {array.dtype} has no IDX type code")
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape)
    return header + array.astype(IDX_TYPES[code], copy=False).tobytes()
