"""OCR of dose-screen pages: a general engine (tesseract), never templates of one font, because
real screens use bitmap fonts we have no sample of. Pixels in, text out; the only I/O is the
tesseract subprocess."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from shared.dicom import number, text
from shared.outcome import Failed


class OcrUnavailable(RuntimeError):
    """The OCR engine is not installed or does not run: a deployment fault, not the object's."""


@dataclass(frozen=True)
class Preparation:
    """How a page image is prepared for the OCR: upscale factor and Gaussian blur radius (px,
    after scaling). Screen fonts are small (about 12 px capitals) and pure binary; the engine
    reads smoothed, larger glyphs more reliably, and different preparations make different
    mistakes, which is what the agreement rule relies on."""

    scale: float
    blur_px: float


PREPARATIONS: tuple[Preparation, ...] = (Preparation(2.0, 1.0), Preparation(3.0, 1.5), Preparation(1.5, 1.0))
# Characters a dose screen prints. Keeping the engine to these stops it "recognising" digits as
# look-alike symbols (@ for 0, } for ), | for 1), which measurably cut misread numbers.
CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.:()<>/%+-[]_ "
TESSERACT = os.environ.get("DOSEFLOW_TESSERACT", "tesseract")
OCR_TIMEOUT_S = 120
CROP_MARGIN_PX = 12


def ocr_available() -> bool:
    return shutil.which(TESSERACT) is not None


def page_images(ds: Dataset, prep: Preparation = PREPARATIONS[0]) -> list:
    """The page's frames as Pillow images, dark text on white, scaled and smoothed.

    Text is whatever differs clearly from the background (the most common value), so white
    or grey text on black, dark on light, MONOCHROME1/2, 8 or 16 bit and RGB all come out the
    same without trusting the stored window."""
    from PIL import Image, ImageFilter, ImageOps

    try:
        pixels = np.asarray(ds.pixel_array)
    except Exception as exc:  # no pixel data, unsupported compression, truncated
        raise Failed(f"dose screen {text(ds, 'SOPInstanceUID')}: pixel data not readable: "
                     f"{type(exc).__name__}: {str(exc)[:160]}") from exc
    samples = int(number(ds.get("SamplesPerPixel")) or 1)
    if samples > 1:
        pixels = pixels.astype(np.float32).mean(axis=-1)
    frames = pixels if pixels.ndim == 3 else pixels[np.newaxis, ...]
    images = []
    for frame in frames:
        frame = frame.astype(np.float32)
        values, counts = np.unique(frame, return_counts=True)
        background = values[np.argmax(counts)]
        distance = np.abs(frame - background)
        if distance.max() <= 0:
            continue  # a blank frame carries no text
        ink = distance > 0.25 * distance.max()
        # Only the text's bounding box (plus a margin) goes to the engine: a screen's text fills a
        # fraction of the page, and the engine's time grows with the pixels it is given.
        rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        top, bottom = max(0, rows[0] - CROP_MARGIN_PX), rows[-1] + CROP_MARGIN_PX + 1
        left, right = max(0, columns[0] - CROP_MARGIN_PX), columns[-1] + CROP_MARGIN_PX + 1
        image = Image.fromarray(np.where(ink[top:bottom, left:right], 0, 255).astype(np.uint8))
        image = ImageOps.expand(image, border=CROP_MARGIN_PX, fill=255)
        if prep.scale != 1:
            image = image.resize((round(image.width * prep.scale), round(image.height * prep.scale)),
                                 Image.BICUBIC)
        if prep.blur_px:
            image = image.filter(ImageFilter.GaussianBlur(prep.blur_px))
        images.append(image)
    if not images:
        raise Failed(f"dose screen {text(ds, 'SOPInstanceUID')}: the page is blank")
    return images


def ocr_image(image) -> str:
    """Tesseract on one image, as a subprocess without a shell: PNG on stdin, text on stdout.
    Page segmentation 6 (one uniform block) keeps each screen row on one line."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    env = dict(os.environ)
    env.setdefault("OMP_THREAD_LIMIT", "1")  # several workers share the CPUs; threads only contend
    try:
        done = subprocess.run([TESSERACT, "stdin", "stdout", "--psm", "6", "-l", "eng",
                               "-c", f"tessedit_char_whitelist={CHARACTERS}"],
                              input=buffer.getvalue(), capture_output=True, timeout=OCR_TIMEOUT_S,
                              env=env, check=False)
    except FileNotFoundError as exc:
        raise OcrUnavailable(f"OCR engine {TESSERACT!r} not found (install tesseract-ocr)") from exc
    except subprocess.TimeoutExpired as exc:
        raise Failed(f"OCR took longer than {OCR_TIMEOUT_S} s on a dose screen page") from exc
    if done.returncode != 0:
        raise OcrUnavailable(f"OCR engine failed (exit {done.returncode}): "
                             f"{done.stderr.decode('utf-8', 'replace')[:200]}")
    return done.stdout.decode("utf-8", "replace")


def read_screen_text(ds: Dataset, prep: Preparation = PREPARATIONS[0]) -> str:
    """The OCR text of one dose-screen page (all frames, in order)."""
    return "\n".join(ocr_image(image) for image in page_images(ds, prep))


