"""decode_image(): every format and mode, checked against independent formulas (and pydicom for windows)."""

from __future__ import annotations

import numpy as np
import pytest
from data_testkit import (
    cmyk_jpeg,
    empty_file,
    float_tiff,
    pattern,
    text_as_png,
    truncated_dicom,
    truncated_png,
    write_dicom,
    write_png,
)
from PIL import Image

from fprt.data import apply_window, decode_image, inspect_image, read_dicom
from fprt.errors import DataError


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma in PIL's 16-bit fixed point, the documented rule, computed independently of PIL."""
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def test_fixed_point_luma_is_within_one_of_exact_601_2():
    rgb = np.random.default_rng(0).integers(0, 256, (4096, 3))
    exact = np.floor(rgb @ np.array([0.299, 0.587, 0.114]) + 0.5)
    assert np.abs(luma(rgb).astype(int) - exact).max() <= 1


def window_reference(x: np.ndarray, c: float, w: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 linear window, written out branch by branch, to 0..255 rounded half up."""
    x = np.asarray(x, dtype=np.float64)
    y = np.empty_like(x)
    below = x <= c - 0.5 - (w - 1) / 2
    above = x > c - 0.5 + (w - 1) / 2
    mid = ~below & ~above
    y[below], y[above] = 0.0, 255.0
    y[mid] = ((x[mid] - (c - 0.5)) / (w - 1) + 0.5) * 255.0
    return np.floor(y + 0.5).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- PIL formats
def test_8bit_gray_png_is_returned_as_is(tmp_path):
    img = pattern(1, (13, 17))
    out = decode_image(write_png(tmp_path / "a.png", img))
    assert out.dtype == np.uint8 and out.shape == (13, 17) and out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, img)
    f = decode_image(tmp_path / "a.png", dtype="float32")
    assert f.dtype == np.float32
    np.testing.assert_allclose(f, img / 255.0, rtol=0, atol=1e-7)


def test_16bit_png_full_range_linear_rounded(tmp_path):
    values = np.arange(0, 65536, 17, dtype=np.uint16)[:3840].reshape(48, 80)
    values[0, :4] = [0, 128, 129, 65535]
    out = decode_image(write_png(tmp_path / "a16.png", values))
    assert Image.open(tmp_path / "a16.png").mode == "I;16"
    np.testing.assert_array_equal(out, np.round(values.astype(np.float64) * 255 / 65535).astype(np.uint8))
    assert list(out[0, :4]) == [0, 0, 1, 255]  # 128/257 = 0.498 → 0, 129/257 = 0.502 → 1
    # an 8-bit image widened to 16 bits (v * 257) comes back unchanged
    img8 = pattern(2, (20, 20))
    widened = write_png(tmp_path / "w16.png", img8.astype(np.uint16) * 257)
    np.testing.assert_array_equal(decode_image(widened), img8)
    np.testing.assert_allclose(decode_image(widened, dtype="float32"), img8 / 255.0, atol=1e-7)


def test_16bit_png_with_a_window(tmp_path):
    values = np.linspace(0, 4095, 200).astype(np.uint16).reshape(10, 20)  # a 12-bit CT in 16 bits
    path = write_png(tmp_path / "ct12.png", values)
    np.testing.assert_array_equal(decode_image(path, window=(1024, 2048)), window_reference(values, 1024, 2048))


def test_tiff_8_and_16_bit(tmp_path):
    img = pattern(3, (9, 11))
    np.testing.assert_array_equal(decode_image(write_png(tmp_path / "a.tif", img)), img)
    v16 = (pattern(4, (9, 11)).astype(np.uint16) * 200)
    np.testing.assert_array_equal(
        decode_image(write_png(tmp_path / "b.tiff", v16)), np.round(v16.astype(np.float64) * 255 / 65535).astype(np.uint8)
    )


def test_32bit_integer_tiff(tmp_path):
    inside = Image.fromarray(np.array([[0, 257, 65535]], dtype=np.int32), mode="I")
    inside.save(tmp_path / "i.tif")
    np.testing.assert_array_equal(decode_image(tmp_path / "i.tif"), [[0, 1, 255]])
    Image.fromarray(np.array([[-1024, 0, 3071]], dtype=np.int32), mode="I").save(tmp_path / "hu.tif")
    with pytest.raises(DataError, match=r"hu\.tif: 32-bit integer image with values -1024\.\.3071 outside 0\.\.65535"):
        decode_image(tmp_path / "hu.tif")
    np.testing.assert_array_equal(
        decode_image(tmp_path / "hu.tif", window=(40, 400)), window_reference(np.array([[-1024, 0, 3071]]), 40, 400)
    )


def test_float_tiff_needs_a_window(tmp_path):
    path = float_tiff(tmp_path / "f.tif")
    with pytest.raises(DataError, match=r"f\.tif: 32-bit float image \(mode 'F'\).*window"):
        decode_image(path)
    raw = np.linspace(-1000, 1000, 64, dtype=np.float32).reshape(8, 8)
    np.testing.assert_array_equal(decode_image(path, window=(0, 1000)), window_reference(raw, 0, 1000))


def test_jpeg_gray_and_color(tmp_path):
    img = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (32, 1))
    gray = decode_image(write_png(tmp_path / "g.jpg", img, quality=95))
    assert gray.shape == (32, 32) and np.abs(gray.astype(int) - img).mean() < 2.0  # lossy, but close
    rgb = np.stack([img, img[::-1], np.full_like(img, 90)], axis=-1)
    write_png(tmp_path / "c.jpeg", rgb, quality=95)
    decoded_rgb = np.asarray(Image.open(tmp_path / "c.jpeg").convert("RGB"))
    np.testing.assert_array_equal(decode_image(tmp_path / "c.jpeg"), luma(decoded_rgb))


def test_rgb_rgba_la_palette_and_bilevel(tmp_path):
    rgb = pattern(5, (16, 16 * 3)).reshape(16, 16, 3)
    expected = luma(rgb)
    np.testing.assert_array_equal(decode_image(write_png(tmp_path / "rgb.png", rgb)), expected)
    # alpha is ignored: two alphas, same gray, equal to the RGB luma
    for k, alpha in enumerate((np.full((16, 16), 255, np.uint8), pattern(6, (16, 16)))):
        rgba = np.concatenate([rgb, alpha[..., None]], axis=-1)
        np.testing.assert_array_equal(decode_image(write_png(tmp_path / f"rgba{k}.png", rgba)), expected)
    la = np.stack([pattern(7, (8, 8)), pattern(8, (8, 8))], axis=-1)
    assert Image.fromarray(la).mode == "LA"
    np.testing.assert_array_equal(decode_image(write_png(tmp_path / "la.png", la)), la[..., 0])
    # palette: each index maps to its palette colour's luma (transparency ignored)
    palette_rgb = pattern(9, (16, 3))
    index = pattern(10, (12, 12)) % 16
    im = Image.fromarray(index.astype(np.uint8), mode="P")
    im.putpalette(palette_rgb.flatten().tolist())
    im.save(tmp_path / "p.png", transparency=2)
    assert Image.open(tmp_path / "p.png").mode == "P"
    np.testing.assert_array_equal(decode_image(tmp_path / "p.png"), luma(palette_rgb)[index])
    bits = pattern(11, (8, 8)) > 127
    Image.fromarray(bits).save(tmp_path / "b.png")
    assert Image.open(tmp_path / "b.png").mode == "1"
    np.testing.assert_array_equal(decode_image(tmp_path / "b.png"), np.where(bits, 255, 0))


def test_unsupported_modes_and_formats(tmp_path):
    with pytest.raises(DataError, match=r"cmyk\.jpg: unsupported image mode 'CMYK' \(JPEG\)"):
        decode_image(cmyk_jpeg(tmp_path / "cmyk.jpg"))
    frames = [Image.fromarray(pattern(i, (8, 8))) for i in range(3)]
    frames[0].save(tmp_path / "stack.tif", save_all=True, append_images=frames[1:])
    with pytest.raises(DataError, match=r"stack\.tif: TIFF with 3 frames/pages"):
        decode_image(tmp_path / "stack.tif")
    Image.fromarray(pattern(1, (8, 8))).save(tmp_path / "gif_named.png", format="GIF")
    with pytest.raises(DataError, match=r"gif_named\.png: not an image fprt can read"):
        decode_image(tmp_path / "gif_named.png")  # only PIL's PNG/JPEG/TIFF readers run on untrusted files


def test_broken_files_raise_dataerror_naming_them(tmp_path):
    cases = {
        "empty.png": (empty_file, r"empty file \(0 bytes\)"),
        "text.png": (text_as_png, "not an image fprt can read"),
        "trunc.png": (truncated_png, r"cannot decode PNG pixel data \(truncated or corrupt\?\)"),
    }
    for name, (make, message) in cases.items():
        path = make(tmp_path / name)
        with pytest.raises(DataError, match=rf"^{path}: {message}"):
            decode_image(path)
    with pytest.raises(DataError, match="no such file"):
        decode_image(tmp_path / "missing.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(DataError, match="not a regular file"):
        decode_image(tmp_path / "dir.png")


def test_corrupt_png_crc(tmp_path):
    path = write_png(tmp_path / "crc.png", pattern(12, (32, 32)))
    data = bytearray(path.read_bytes())
    data[60] ^= 0xFF  # inside the IDAT chunk: its CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"crc\.png: "):
        decode_image(path)


def test_decompression_bomb_guard_stays_on(tmp_path, monkeypatch):
    path = write_png(tmp_path / "big.png", np.zeros((20, 20), np.uint8))  # 400 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # PIL only warns here; fprt refuses
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(
        DataError, match=r"big\.png: image of 20x20 = 400 pixels exceeds PIL's decompression-bomb limit"
    ):
        decode_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL's own error zone (> 2x the limit)
    with pytest.raises(DataError, match=r"big\.png: decompression-bomb guard refused the image"):
        decode_image(path)
    dcm = write_dicom(tmp_path / "big.dcm", np.zeros((20, 20), np.uint16))
    with pytest.raises(DataError, match="decompression-bomb limit"):
        decode_image(dcm)


def test_options_are_validated(tmp_path):
    path = write_png(tmp_path / "a.png", pattern(1, (4, 4)))
    with pytest.raises(ValueError, match="dtype"):
        decode_image(path, dtype="float64")
    with pytest.raises(ValueError, match="width must be"):
        decode_image(path, window=(10, 0.5))
    with pytest.raises(ValueError, match="center, width"):
        decode_image(path, window=(10,))


def test_apply_window_matches_the_dicom_formula():
    x = np.linspace(-1200, 1500, 2701)
    for c, w in [(40, 400), (-600, 1500), (0.5, 1), (100, 2), (1000, 4096)]:
        np.testing.assert_array_equal(apply_window(x, c, w), window_reference(x, c, w))
    np.testing.assert_allclose(apply_window(x, 40, 400, dtype="float32"), np.clip((x - 39.5) / 399 + 0.5, 0, 1), atol=1e-7)


def test_inspect_reads_headers(tmp_path):
    info = inspect_image(write_png(tmp_path / "a.png", pattern(1, (7, 9))))
    assert (info.format, info.mode, info.width, info.height) == ("PNG", "L", 9, 7)
    info = inspect_image(write_dicom(tmp_path / "a.dcm", np.zeros((5, 6), np.uint16), bits_stored=12))
    assert (info.format, info.width, info.height) == ("DICOM", 6, 5) and info.mode == "MONOCHROME2 12-bit"


# ---------------------------------------------------------------------------------------------- DICOM
def test_dicom_rescale_gives_hu_and_window_matches_pydicom(tmp_path):
    from pydicom import dcmread
    from pydicom.pixels import apply_windowing

    stored = np.random.default_rng(0).integers(0, 4096, (24, 20)).astype(np.uint16)
    path = write_dicom(tmp_path / "ct.dcm", stored, slope=2.0, intercept=-1024.0, bits_stored=12)
    hu = read_dicom(path)
    np.testing.assert_array_equal(hu, stored.astype(np.float64) * 2.0 - 1024.0)  # modality LUT, exactly
    for c, w in [(40, 400), (-600, 1500), (300, 1)]:
        out = decode_image(path, window=(c, w))
        np.testing.assert_array_equal(out, window_reference(hu, c, w))
        ds = dcmread(path)
        ds.WindowCenter, ds.WindowWidth = c, w
        y = apply_windowing(hu.copy(), ds)  # pydicom maps into [y_min, y_max] of the rescaled range
        y_min, y_max = 0 * 2.0 - 1024.0, 4095 * 2.0 - 1024.0
        np.testing.assert_array_equal(out, np.floor((y - y_min) / (y_max - y_min) * 255 + 0.5).astype(np.uint8))


def test_dicom_default_window_is_the_files_else_min_max(tmp_path):
    stored = np.arange(0, 400, dtype=np.uint16).reshape(20, 20) * 5
    own = write_dicom(tmp_path / "own.dcm", stored, slope=1.0, intercept=-1000.0, window=(-500, 800))
    hu = stored.astype(np.float64) - 1000.0
    np.testing.assert_array_equal(decode_image(own), window_reference(hu, -500, 800))
    np.testing.assert_array_equal(decode_image(own, window=(0, 100)), window_reference(hu, 0, 100))  # argument wins
    plain = write_dicom(tmp_path / "plain.dcm", stored)
    expected = np.floor((stored - stored.min()) / (stored.max() - stored.min()) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(decode_image(plain), expected)
    np.testing.assert_allclose(decode_image(plain, dtype="float32"), stored / stored.max(), atol=1e-7)


def test_dicom_signed_monochrome1_extensionless_and_no_preamble(tmp_path):
    signed = (np.arange(64, dtype=np.int16).reshape(8, 8) - 32) * 10
    path = write_dicom(tmp_path / "IM0001", signed, window=(0, 200))
    np.testing.assert_array_equal(read_dicom(path), signed)
    np.testing.assert_array_equal(decode_image(path), window_reference(signed, 0, 200))
    inv = write_dicom(tmp_path / "inv.dcm", signed, window=(0, 200), photometric="MONOCHROME1")
    np.testing.assert_array_equal(decode_image(inv), 255 - window_reference(signed, 0, 200))
    raw = write_dicom(tmp_path / "raw.dcm", signed.astype(np.uint16) & 0x0FFF, preamble=False)
    assert raw.read_bytes()[128:132] != b"DICM"
    assert decode_image(raw).shape == (8, 8)


def test_bad_dicom_files(tmp_path):
    with pytest.raises(DataError, match=r"t\.dcm: cannot decode DICOM pixel data: .*less than expected"):
        decode_image(truncated_dicom(tmp_path / "t.dcm"))
    (tmp_path / "text.dcm").write_text("not a DICOM file at all, just text " * 10)
    with pytest.raises(DataError, match=r"text\.dcm: "):
        decode_image(tmp_path / "text.dcm")
    from pydicom import dcmread

    path = write_dicom(tmp_path / "rgb.dcm", np.zeros((4, 4), np.uint16))
    ds = dcmread(path)
    ds.PhotometricInterpretation = "RGB"
    ds.save_as(path)
    with pytest.raises(DataError, match=r"colour DICOM \(PhotometricInterpretation RGB\)"):
        decode_image(path)
    ds.PhotometricInterpretation = "MONOCHROME2"
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(DataError, match="has no PixelData"):
        decode_image(path)


# ---------------------------------------------------------------------------------------------- the PNG fast path
def _png_variants(tmp_path):
    """8-bit gray PNGs as writers make them (chunks, sizes, compression), plus damaged copies of one."""
    from PIL import Image, PngImagePlugin

    rng = np.random.default_rng(7)
    out = {}
    for name, shape, kw in [("plain", (256, 256), {}), ("odd", (37, 61), {"compress_level": 9}),
                            ("fast", (64, 128), {"compress_level": 0})]:
        p = tmp_path / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(p, **kw)
        out[name] = p
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "x" * 100)
    p = tmp_path / "chunks.png"
    Image.fromarray(rng.integers(0, 256, (50, 40), dtype=np.uint8)).save(p, pnginfo=info, transparency=3)
    out["chunks"] = p
    good = out["plain"].read_bytes()
    for name, data in [("truncated", good[: len(good) // 2]), ("no_iend", good[:-12]),
                       ("flipped_idat_byte", good[:200] + bytes([good[200] ^ 0xFF]) + good[201:]),
                       # the IDAT chunk's CRC recomputed after the change: only the zlib stream's Adler-32 tells
                       ("adler_changed_crc_refit", _idat_byte_changed(good, -1)),
                       ("pixels_changed_crc_refit", _idat_byte_changed(good, len(good) // 2)),
                       ("text_crc_wrong", _crc_flipped(out["chunks"].read_bytes(), b"tEXt"))]:
        (tmp_path / f"{name}.png").write_bytes(data)
        out[name] = tmp_path / f"{name}.png"
    return out


def _chunk(png: bytes, kind: bytes, nth: int = 0) -> tuple[int, int]:
    """(offset, data length) of the ``nth`` chunk of ``kind`` in ``png``, found by walking its chunks."""
    import struct

    pos, seen = 8, 0
    while True:
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        if png[pos + 4 : pos + 8] == kind:
            if seen == nth:
                return pos, length
            seen += 1
        pos += 12 + length


def _idat_byte_changed(png: bytes, at: int) -> bytes:
    """``png`` (one IDAT chunk) with byte ``at`` of the IDAT data changed (negative: from its end) and the
    chunk's CRC-32 recomputed, so that only the zlib stream's own checks can tell."""
    import struct
    import zlib

    pos, length = _chunk(png, b"IDAT")
    body = bytearray(png[pos + 8 : pos + 8 + length])
    body[at] ^= 0x55
    crc = struct.pack(">I", zlib.crc32(b"IDAT" + bytes(body)))
    return png[: pos + 8] + bytes(body) + crc + png[pos + 12 + length :]


def _crc_flipped(png: bytes, kind: bytes, nth: int = 0) -> bytes:
    """``png`` with one bit of the CRC of its ``nth`` ``kind`` chunk flipped."""
    pos, length = _chunk(png, kind, nth)
    at = pos + 8 + length
    return png[:at] + bytes([png[at] ^ 1]) + png[at + 1 :]


@pytest.fixture(params=["wuffs", "opencv"])
def fast_decoder(request, monkeypatch):
    """The fast path's decoder under test: Wuffs, or OpenCV's libpng (what decodes without pywuffs)."""
    from fprt.data import decode as D

    if request.param == "wuffs":
        pytest.importorskip("pywuffs")
    else:
        monkeypatch.setattr(D, "_gray8_decoder", lambda: None)
    return request.param


def test_png_fast_path_equals_pil_and_leaves_damaged_files_to_it(tmp_path, monkeypatch, fast_decoder):
    """The fast path's decode of gray 8-bit PNGs (Wuffs; OpenCV without pywuffs) gives PIL's pixels; a file it
    refuses is PIL's to judge, so every file is either the same array or the same kind of error with and without
    the fast path."""
    from fprt.data import decode as D
    from fprt.errors import DataError

    def outcome(path):
        try:
            return decode_image(path, data=path.read_bytes())
        except DataError as exc:
            return f"DataError: {exc}"

    files = _png_variants(tmp_path)
    fast = {name: outcome(p) for name, p in files.items()}
    used = {name: D._png_gray8_fast(p, p.read_bytes()) is not None for name, p in files.items()}
    monkeypatch.setattr(D, "_png_gray8_fast", lambda path, data: None)
    pil = {name: outcome(p) for name, p in files.items()}
    for name in files:
        if isinstance(pil[name], str):
            assert isinstance(fast[name], str), (name, "the fast path accepted a file PIL rejects")
        else:
            np.testing.assert_array_equal(fast[name], pil[name], err_msg=name)
            assert fast[name].flags.c_contiguous and fast[name].flags.writeable
    assert all(used[n] for n in ("plain", "odd", "fast", "chunks"))  # the fast path did run on the good ones
    assert isinstance(fast["truncated"], str)
    assert isinstance(fast["flipped_idat_byte"], str)
    assert isinstance(fast["adler_changed_crc_refit"], str)  # PIL and libpng refuse it; Wuffs must too
    assert isinstance(fast["pixels_changed_crc_refit"], str)
    assert isinstance(fast["text_crc_wrong"], str) and not used["text_crc_wrong"]  # the chunk walk's own check


def _png_with_filters(image: np.ndarray, filters: list[int], idat_parts: int = 1) -> bytes:
    """An 8-bit gray PNG whose row r is stored with PNG filter ``filters[r % len(filters)]`` (0 None, 1 Sub, 2 Up,
    3 Average, 4 Paeth; PNG spec §9.2, written here from the spec), its zlib stream split over ``idat_parts``
    IDAT chunks: rows no writer of ours would choose."""
    import struct
    import zlib

    def paeth(a, b, c):
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))

    h, w = image.shape
    x = image.astype(np.int64)
    rows = []
    for r in range(h):
        cur, up = x[r], x[r - 1] if r else np.zeros(w, np.int64)
        left, upleft = np.concatenate([[0], cur[:-1]]), np.concatenate([[0], up[:-1]])
        kind = filters[r % len(filters)]
        pred = [np.zeros(w, np.int64), left, up, (left + up) // 2, paeth(left, up, upleft)][kind]
        rows.append(bytes([kind]) + ((cur - pred) % 256).astype(np.uint8).tobytes())
    stream = zlib.compress(b"".join(rows), 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    cuts = np.linspace(0, len(stream), idat_parts + 1).astype(int)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + b"".join(chunk(b"IDAT", stream[a:b]) for a, b in zip(cuts[:-1], cuts[1:])) + chunk(b"IEND", b""))


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (37, 61), (256, 256)])
def test_png_fast_path_decodes_every_row_filter_as_pil_does(tmp_path, shape):
    """Rows stored with each of the five PNG filters (cycled, and each alone), over several IDAT chunks, come back
    as the image that was written — through the fast path (Wuffs, or OpenCV without pywuffs) and through PIL."""
    import io

    from fprt.data import decode as D

    rng = np.random.default_rng(shape[0])
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    image[:, : shape[1] // 2] = np.arange(shape[1] // 2, dtype=np.uint8)  # a smooth part too
    for filters in ([0, 1, 2, 3, 4], [3], [4], [1, 4, 2]):
        data = _png_with_filters(image, filters, idat_parts=min(3, shape[0]))
        fast = D._png_gray8_fast(tmp_path / "x.png", data)
        assert fast is not None, (shape, filters)
        np.testing.assert_array_equal(fast, image, err_msg=f"{shape} {filters}")
        assert fast.flags.c_contiguous and fast.flags.writeable
        with Image.open(io.BytesIO(data)) as im:
            np.testing.assert_array_equal(np.asarray(im), image)


def test_png_fast_path_refuses_a_wrong_crc_in_any_idat_chunk(fast_decoder):
    """The chunk walk leaves IDAT CRCs to the decoder: a wrong one in the middle of three IDAT chunks, or in the
    last, still sends the file to PIL instead of the fast decoder; PIL (which reads no IDAT CRC after the
    first) then decides, as it did when the walk checked them."""
    import io

    from fprt.data import decode as D

    image = np.random.default_rng(5).integers(0, 256, (40, 30), dtype=np.uint8)
    data = _png_with_filters(image, [0, 1, 2, 3, 4], idat_parts=3)
    assert D._png_gray8_fast(None, data) is not None
    for nth in (1, 2):
        bad = _crc_flipped(data, b"IDAT", nth)
        assert D._png_gray8_fast(None, bad) is None
        with Image.open(io.BytesIO(bad)) as im:
            np.testing.assert_array_equal(decode_image("x.png", data=bad), np.asarray(im))


def test_png_fast_path_uses_wuffs_and_leaves_transparency_to_opencv(monkeypatch):
    """Wuffs decodes the plain gray PNG; a file with a tRNS chunk is never handed to it (it would composite the
    transparent gray level onto black)."""
    import io

    from fprt.data import decode as D

    pytest.importorskip("pywuffs")
    image = np.arange(48, dtype=np.uint8).reshape(6, 8)
    called = []
    real = D._gray8_decoder()
    assert real is not None
    monkeypatch.setattr(D, "_gray8_decoder", lambda: lambda data: called.append(1) or real(data))
    plain, transparent = io.BytesIO(), io.BytesIO()
    Image.fromarray(image).save(plain, format="PNG")
    Image.fromarray(image).save(transparent, format="PNG", transparency=3)
    np.testing.assert_array_equal(D._png_gray8_fast(None, plain.getvalue()), image)
    assert called == [1]
    np.testing.assert_array_equal(D._png_gray8_fast(None, transparent.getvalue()), image)
    assert called == [1]
    np.testing.assert_array_equal(real(transparent.getvalue())[..., 0] == image, image != 3)  # why: composited
