"""Photos and PDFs sent with messages: checked by their content, stored outside the web root.

What a file is comes from its bytes, never its name: Pillow decodes an image (JPEG, PNG, WebP) or
pypdf parses a PDF, and anything else is refused. A PDF that is encrypted, or where any object
holds a script, an automatic or launching action, a form submission or an embedded file, is
refused too (every object is looked at, those in compressed object streams included). Each image
also gets a preview re-encoded from its pixels (no metadata, no trailing bytes), the only form
shown inline; every original is served as a download.

Files are written to a temporary name and moved into place before the database row commits;
``Stored.discard`` removes them again when the transaction does not commit, so a failed send
leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from PIL import Image, ImageOps, JpegImagePlugin, MpoImagePlugin, PngImagePlugin, WebPImagePlugin

# MPO: a JPEG with more images in it (phones' depth and gain maps); it is sent on as the JPEG it is.
IMAGE_TYPES = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
PDF_TYPE = "application/pdf"
ACCEPT = "image/jpeg,image/png,image/webp,application/pdf"
PREVIEW_PIXELS = 1600  # longest side of the inline preview
MAX_PIXELS = 50_000_000  # larger images are refused (a decompression bomb costs memory, not bytes)
# Only these decoders ever see a sender's bytes (importing them registers them with Pillow; the
# JPEG opener hands an MPO on to its plugin).
_DECODERS = (JpegImagePlugin, MpoImagePlugin, PngImagePlugin, WebPImagePlugin)
_OPENERS = ["JPEG", "PNG", "WEBP"]
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", PDF_TYPE: "pdf"}
# Anything in a PDF that makes a reader do something by itself: scripts, actions on opening a
# document or page, launching programs, submitting forms, embedded files and media.
_PDF_ACTIVE_KEYS = frozenset(
    {"/JS", "/JavaScript", "/AA", "/OpenAction", "/Launch", "/EmbeddedFiles", "/EmbeddedFile", "/RichMedia", "/XFA"}
)
_PDF_ACTIVE_ACTIONS = frozenset(
    {"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/GoToR", "/GoToE", "/RichMediaExecute", "/Rendition"}
)
_PDF_MAX_OBJECTS = 50_000


class Rejected(ValueError):
    """The file is refused; the message says why, in the user's language."""


@dataclass
class Checked:
    filename: str
    content_type: str
    data: bytes
    preview: bytes | None  # re-encoded JPEG/PNG for images


@dataclass
class Stored:
    names: list[str] = field(default_factory=list)

    def discard(self) -> None:
        for name in self.names:
            with contextlib.suppress(FileNotFoundError):
                path_of(name).unlink()


def clean_filename(name: str | None, content_type: str) -> str:
    """A name fit to show and offer as a download's name: no path, no control characters, the
    extension the content has (a PDF called photo.jpg downloads as photo.pdf)."""
    base = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", base).strip(" .")[:80] or _("vedlegg")
    return f"{stem}.{_EXTENSIONS[content_type]}"


def check(filename: str | None, data: bytes) -> Checked:
    """What the file is, from its bytes; Rejected with the reason if it is not a photo or a PDF,
    is empty or too large."""
    limit = current_app.config["MESSAGE_ATTACHMENT_MAX_BYTES"]
    shown = (filename or "").rsplit("/", 1)[-1][:80] or _("vedlegg")
    if not data:
        raise Rejected(_("«%(name)s» er tom.", name=shown))
    if len(data) > limit:
        raise Rejected(
            _("«%(name)s» er for stor. Hver fil kan være høyst %(mb)s MB.", name=shown, mb=limit // (1024 * 1024))
        )
    if data.startswith(b"%PDF-"):
        _check_pdf(data, shown)
        return Checked(clean_filename(filename, PDF_TYPE), PDF_TYPE, data, None)
    content_type, preview = _check_image(data, shown)
    return Checked(clean_filename(filename, content_type), content_type, data, preview)


def _not_supported(shown: str) -> Rejected:
    return Rejected(
        _("«%(name)s» er verken et bilde (JPEG, PNG, WebP) eller en PDF. Send bilder eller PDF-filer.", name=shown)
    )


def _check_image(data: bytes, shown: str) -> tuple[str, bytes]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=_OPENERS) as probe:
                kind = probe.format
                if kind not in IMAGE_TYPES:
                    raise _not_supported(shown)
                if probe.width * probe.height > MAX_PIXELS:
                    raise Rejected(_("«%(name)s» har for mange bildepunkter.", name=shown))
                probe.verify()
            with Image.open(io.BytesIO(data), formats=_OPENERS) as image:
                image.load()
                image = ImageOps.exif_transpose(image)
                image.thumbnail((PREVIEW_PIXELS, PREVIEW_PIXELS))
                out = io.BytesIO()
                if image.mode in ("RGBA", "LA", "P"):
                    image.convert("RGBA").save(out, "PNG", optimize=True)
                else:
                    image.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
    except Rejected:
        raise
    except Exception:  # anything Pillow raises on these bytes: they are not an image it can show
        raise _not_supported(shown) from None
    return IMAGE_TYPES[kind], out.getvalue()


def _check_pdf(data: bytes, shown: str) -> None:
    from pypdf import PdfReader
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

    unreadable = Rejected(_("«%(name)s» ser ut som en PDF, men kan ikke leses.", name=shown))
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise Rejected(_("«%(name)s» er passordbeskyttet. Send den uten passord.", name=shown))
        if len(reader.pages) == 0:
            raise unreadable
        # Every object in the file, those packed in object streams too (names are compared as
        # pypdf decodes them, so #-escapes do not hide anything).
        numbers = {(num, gen) for gen, entries in reader.xref.items() for num in entries}
        numbers |= {(num, 0) for num in reader.xref_objStm}
        if len(numbers) > _PDF_MAX_OBJECTS:
            raise unreadable
        active = any(
            _pdf_active(reader.get_object(IndirectObject(num, gen, reader)), DictionaryObject, ArrayObject)
            for num, gen in numbers
        )
    except Rejected:
        raise
    except Exception:  # whatever pypdf raises on a broken file: it is not a PDF we can pass on
        raise unreadable from None
    if active:
        raise Rejected(
            _("«%(name)s» inneholder skript, handlinger eller innebygde filer, og kan ikke sendes.", name=shown)
        )


def _pdf_active(obj: object, dictionary: type, array: type, depth: int = 0) -> bool:
    """Does this object (a dictionary, an array, their direct children) make a reader act?"""
    if depth > 8:
        return False
    if isinstance(obj, dictionary):
        if any(str(key) in _PDF_ACTIVE_KEYS for key in obj):
            return True
        if str(obj.get("/S", "")) in _PDF_ACTIVE_ACTIONS:
            return True
        return any(_pdf_active(value, dictionary, array, depth + 1) for value in obj.values())
    if isinstance(obj, array):
        return any(_pdf_active(value, dictionary, array, depth + 1) for value in obj)
    return False


def root() -> Path:
    return Path(current_app.config["MESSAGE_ATTACHMENT_DIR"])


def path_of(name: str) -> Path:
    """Where a stored name lives (two levels of fan-out, so no directory grows huge)."""
    if not re.fullmatch(r"[0-9a-f]{40}", name):
        raise ValueError("not a stored name")
    return root() / name[:2] / name[2:4] / name


def _write(data: bytes, stored: Stored) -> str:
    name = secrets.token_hex(20)
    target = path_of(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{name}.part")
    try:
        with open(temporary, "xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    stored.names.append(name)
    return name


def store(checked: Checked, stored: Stored) -> dict:
    """Write the file (and its preview); the columns of its Attachment row."""
    return {
        "stored_name": _write(checked.data, stored),
        "preview_name": _write(checked.preview, stored) if checked.preview is not None else None,
        "filename": checked.filename,
        "content_type": checked.content_type,
        "size": len(checked.data),
        "sha256": hashlib.sha256(checked.data).hexdigest(),
    }
