"""DICOM pixel decoding: a raw fast path for uncompressed slices, pydicom plugins otherwise.

Uncompressed little-endian slices (what scanners export most) are read straight from the
byte offset of their Pixel Data element, found while the header was scanned: no second
header parse, one ``read`` per file.  Anything else goes through pydicom's pixel-data
plugins.  The MIT-licensed plugins are dependencies (pylibjpeg + pylibjpeg-openjpeg for
JPEG 2000, pyjpegls for JPEG-LS, pillow for baseline JPEG); GPL ones (pylibjpeg-libjpeg)
and GDCM stay optional.  When no plugin can decode a syntax,
:class:`~livgui.imageio.errors.MissingDecoderError` names the syntax and what to install.
"""

from __future__ import annotations

import io
import logging
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom import uid as dcmuid
from pydicom.errors import InvalidDicomError

from livgui.imageio.errors import ImageReadError, MissingDecoderError

__all__ = [
    "DicomStore",
    "PixelLayout",
    "check_decodable",
    "decoder_available",
    "missing_decoder",
    "read_stored_pixels",
    "syntax_label",
]

log = logging.getLogger(__name__)

_RAW_SYNTAXES = {dcmuid.ImplicitVRLittleEndian, dcmuid.ExplicitVRLittleEndian}
_UNCOMPRESSED = _RAW_SYNTAXES | {
    dcmuid.ExplicitVRBigEndian,
    dcmuid.DeflatedExplicitVRLittleEndian,
}
_PIXEL_TAG = b"\xe0\x7f\x10\x00"

# (family shown to the user, what to install).  GPL decoders are named as optional.
_J2K = ("JPEG 2000", "pylibjpeg and pylibjpeg-openjpeg (MIT)")
_HINTS: dict[str, tuple[str, str]] = {
    dcmuid.JPEG2000Lossless: _J2K,
    dcmuid.JPEG2000: _J2K,
    dcmuid.JPEG2000MCLossless: _J2K,
    dcmuid.JPEG2000MC: _J2K,
    dcmuid.HTJ2KLossless: ("HTJ2K", "pylibjpeg-openjpeg>=2.2 (MIT)"),
    dcmuid.HTJ2KLosslessRPCL: ("HTJ2K", "pylibjpeg-openjpeg>=2.2 (MIT)"),
    dcmuid.HTJ2K: ("HTJ2K", "pylibjpeg-openjpeg>=2.2 (MIT)"),
    dcmuid.JPEGLSLossless: ("JPEG-LS", "pyjpegls (MIT)"),
    dcmuid.JPEGLSNearLossless: ("JPEG-LS", "pyjpegls (MIT)"),
    dcmuid.JPEGBaseline8Bit: ("JPEG", "pillow"),
    dcmuid.JPEGExtended12Bit: ("12-bit JPEG", "pylibjpeg-libjpeg (GPL, optional) or python-gdcm"),
    dcmuid.JPEGLossless: ("lossless JPEG", "pylibjpeg-libjpeg (GPL, optional) or python-gdcm"),
    dcmuid.JPEGLosslessSV1: ("lossless JPEG", "pylibjpeg-libjpeg (GPL, optional) or python-gdcm"),
    dcmuid.RLELossless: ("RLE", "pydicom>=3 (built in)"),
}


def syntax_label(uid: str) -> str:
    """Short user-facing name of a transfer syntax (``"JPEG 2000"``, ``"uncompressed"``)."""
    if uid in _UNCOMPRESSED:
        return "uncompressed"
    if uid in _HINTS:
        return _HINTS[uid][0]
    return str(dcmuid.UID(uid).name) if uid else "unknown"


def decoder_available(uid: str) -> bool:
    """Whether pydicom has a working pixel-data plugin for transfer syntax ``uid``."""
    if uid in _UNCOMPRESSED:
        return True
    from pydicom.pixels.decoders.base import get_decoder

    try:
        return bool(get_decoder(dcmuid.UID(uid)).is_available)
    except NotImplementedError:
        return False


def missing_decoder(path: str, uid: str) -> MissingDecoderError | None:
    """The error naming syntax and package when ``uid`` cannot be decoded, else ``None``."""
    if decoder_available(uid):
        return None
    family, hint = _HINTS.get(uid, (syntax_label(uid), "a pydicom pixel-data plugin for it"))
    return MissingDecoderError(path, family, hint)


def check_decodable(path: str, uid: str) -> None:
    """Raise :class:`MissingDecoderError` when transfer syntax ``uid`` cannot be decoded."""
    err = missing_decoder(path, uid)
    if err is not None:
        raise err


@dataclass(frozen=True)
class PixelLayout:
    """What is needed to decode one slice's stored values.

    ``pixel_offset`` is the byte offset of the Pixel Data element in the file (``None``
    when unknown); the raw fast path is used only when it is known and the syntax is
    uncompressed little endian.
    """

    transfer_syntax: str
    rows: int
    columns: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    samples_per_pixel: int = 1
    pixel_offset: int | None = None

    @property
    def raw_nbytes(self) -> int:
        return self.rows * self.columns * self.samples_per_pixel * self.bits_allocated // 8

    @property
    def stored_dtype(self) -> np.dtype[Any]:
        size = max(1, self.bits_allocated // 8)
        return np.dtype(f"<{'i' if self.signed else 'u'}{size}")

    def stored_range(self) -> tuple[int, int]:
        """Smallest and largest value ``bits_stored`` can hold."""
        if self.signed:
            return -(1 << (self.bits_stored - 1)), (1 << (self.bits_stored - 1)) - 1
        return 0, (1 << self.bits_stored) - 1


class DicomStore:
    """Opens DICOM files on disk or members of one zip archive (read in memory, never
    extracted).  Use as a context manager; thread-safe for reads."""

    def __init__(self, archive: str | Path | None = None) -> None:
        self.archive = None if archive is None else str(archive)
        self._zip = None if archive is None else zipfile.ZipFile(archive)

    def __enter__(self) -> DicomStore:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def display(self, name: str) -> str:
        """How a file is named in messages (``archive.zip:member`` for archive members)."""
        return name if self.archive is None else f"{self.archive}:{name}"

    def open(self, name: str) -> BinaryIO:
        """A seekable binary stream of one file."""
        if self._zip is None:
            return open(name, "rb")
        return io.BytesIO(self._zip.read(name))

    def size(self, name: str) -> int:
        if self._zip is None:
            return Path(name).stat().st_size
        return self._zip.getinfo(name).file_size


def _read_raw(store: DicomStore, name: str, layout: PixelLayout) -> NDArray[Any] | None:
    """Stored values via the Pixel Data offset, or None when the element is not as expected."""
    assert layout.pixel_offset is not None
    explicit = layout.transfer_syntax == dcmuid.ExplicitVRLittleEndian
    head_len = 12 if explicit else 8
    with store.open(name) as fp:
        fp.seek(layout.pixel_offset)
        head = fp.read(head_len)
        if len(head) < head_len or head[:4] != _PIXEL_TAG:
            return None
        if explicit and head[4:6] not in (b"OW", b"OB"):
            return None
        length = struct.unpack("<I", head[-4:])[0]
        if length == 0xFFFFFFFF or length < layout.raw_nbytes:
            return None
        data = fp.read(layout.raw_nbytes)
    if len(data) < layout.raw_nbytes:
        raise ImageReadError(
            store.display(name),
            f"file is truncated: pixel data needs {layout.raw_nbytes} bytes, {len(data)} present",
        )
    arr = np.frombuffer(data, dtype=layout.stored_dtype).reshape(layout.rows, layout.columns)
    return _fix_bits(arr, layout)


def _fix_bits(arr: NDArray[Any], layout: PixelLayout) -> NDArray[Any]:
    """Mask unused high bits (unsigned) or sign-extend (signed) when BitsStored < BitsAllocated."""
    spare = layout.bits_allocated - layout.bits_stored
    if spare <= 0:
        return arr
    if layout.signed:
        return (arr << spare) >> spare
    return arr & np.asarray((1 << layout.bits_stored) - 1, dtype=arr.dtype)


def _read_with_plugins(store: DicomStore, name: str, layout: PixelLayout) -> NDArray[Any]:
    shown = store.display(name)
    check_decodable(shown, layout.transfer_syntax)
    try:
        with store.open(name) as fp:
            ds = pydicom.dcmread(fp, force=True)
        arr = np.asarray(ds.pixel_array)
    except (InvalidDicomError, OSError, EOFError) as err:
        raise ImageReadError(shown, f"file is incomplete or corrupt ({err})") from err
    except Exception as err:  # decoder plugins raise assorted types on corrupt streams
        family = syntax_label(layout.transfer_syntax)
        raise ImageReadError(shown, f"could not decode {family} pixel data: {err}") from err
    if arr.shape != (layout.rows, layout.columns):
        raise ImageReadError(
            shown,
            f"decoded pixels have shape {arr.shape}, header says {layout.rows}x{layout.columns}",
        )
    return arr


def read_stored_pixels(store: DicomStore, name: str, layout: PixelLayout) -> NDArray[Any]:
    """Stored pixel values of one greyscale slice, shape ``(rows, columns)``.

    Raises
    ------
    MissingDecoderError
        No plugin decodes the file's transfer syntax.
    ImageReadError
        The file is truncated or its compressed stream is corrupt (names the file).
    """
    if layout.samples_per_pixel != 1:
        raise ImageReadError(store.display(name), "colour image, not a greyscale CT slice")
    if (
        layout.pixel_offset is not None
        and layout.transfer_syntax in _RAW_SYNTAXES
        and layout.bits_allocated in (8, 16)
    ):
        try:
            arr = _read_raw(store, name, layout)
        except OSError as err:
            raise ImageReadError(store.display(name), f"could not read: {err}") from err
        if arr is not None:
            return arr
        log.debug("raw pixel path declined for %s; using pydicom", name)
    return _read_with_plugins(store, name, layout)
