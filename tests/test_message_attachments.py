"""Attachments: what a file is comes from its bytes; files live outside the web root under
generated names; they are served only through the access policy, as downloads that cannot run;
images are shown only as re-encoded previews; a failed send leaves no file behind."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.access.models import AuditEvent
from app.db import db
from app.messages import attachments
from app.messages.models import Attachment, Conversation, Message
from tests import factories
from tests.conftest import csrf_from


def jpeg(size=(640, 480), exif_gps: bool = False) -> bytes:
    image = Image.new("RGB", size, (200, 40, 40))
    out = io.BytesIO()
    if exif_gps:
        exif = Image.Exif()
        exif[0x8825] = {1: "N", 2: (63.0, 25.0, 0.0)}  # GPSInfo: where the photo was taken
        exif[0x010F] = "PhoneMaker"
        image.save(out, "JPEG", exif=exif)
    else:
        image.save(out, "JPEG")
    return out.getvalue()


def png_with_html_tail() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (32, 32), (0, 0, 255, 128)).save(out, "PNG")
    return out.getvalue() + b"<html><script>alert(1)</script></html>"


def pdf(extra: bytes = b"", catalog_extra: bytes = b"") -> bytes:
    """A one-page PDF written by hand (with a correct xref table)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b">>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    if extra:
        objects.append(extra)
    body = b"%PDF-1.4\n"
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += f"{number} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(body)
    body += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        body += f"{offset:010d} 00000 n \n".encode()
    body += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return body


def files_on_disk(app) -> list[Path]:  # type: ignore[no-untyped-def]
    root = Path(app.config["MESSAGE_ATTACHMENT_DIR"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def send(client, unit, files, body="Se vedlegg."):  # type: ignore[no-untyped-def]
    token = csrf_from(client, f"/meldinger/ny/{unit.id}")
    data = {
        "csrf_token": token,
        "topic": "treatment",
        "subject": "Utslett",
        "body": body,
        "files": [(io.BytesIO(content), name) for name, content in files],
    }
    return client.post(f"/meldinger/ny/{unit.id}", data=data, content_type="multipart/form-data")


@pytest.fixture(autouse=True)
def _empty_store(app):
    for path in files_on_disk(app):
        path.unlink()
    yield


def test_a_photo_is_stored_outside_the_web_root_with_a_clean_preview(app, client, login_as, kari, gp):
    login_as(kari)
    photo = jpeg((3000, 2000), exif_gps=True)
    response = send(client, gp, [("../../IMG_2041.JPG", photo)])
    assert response.status_code == 303
    attachment = db.session.scalars(select(Attachment)).one()
    assert attachment.content_type == "image/jpeg"
    assert attachment.filename == "IMG_2041.jpg"
    assert attachment.size == len(photo)
    stored = attachments.path_of(attachment.stored_name)
    assert stored.read_bytes() == photo
    static = Path(app.static_folder).resolve()
    assert static not in stored.resolve().parents
    assert attachment.stored_name not in attachment.filename
    with Image.open(attachments.path_of(attachment.preview_name)) as preview:
        assert max(preview.size) == attachments.PREVIEW_PIXELS
        assert not preview.getexif()  # the GPS position does not travel into the preview


def test_download_is_an_attachment_that_cannot_run_and_is_audited(client, login_as, kari, gp):
    login_as(kari)
    send(client, gp, [("kvittering.png", png_with_html_tail())])
    conversation = db.session.scalars(select(Conversation)).one()
    attachment = db.session.scalars(select(Attachment)).one()
    url = f"/meldinger/{conversation.id}/vedlegg/{attachment.id}"
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "kvittering.png" in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Cache-Control"] == "no-store"
    response.close()
    preview = client.get(url + "?vis=bilde")
    assert preview.status_code == 200
    assert preview.headers["Content-Type"] == "image/png"
    assert preview.headers["Content-Disposition"] == "inline"
    assert preview.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert b"<script>" not in preview.data  # re-encoded from the pixels: the trailing HTML is gone
    preview.close()
    downloads = db.session.scalar(
        select(func.count()).where(AuditEvent.action == "download_attachment", AuditEvent.outcome == "ok")
    )
    assert downloads == 2


def test_a_pdf_is_accepted_and_downloads_as_pdf(client, login_as, kari, gp):
    login_as(kari)
    assert send(client, gp, [("henvisning.PDF", pdf())]).status_code == 303
    attachment = db.session.scalars(select(Attachment)).one()
    assert (attachment.content_type, attachment.filename, attachment.preview_name) == (
        "application/pdf",
        "henvisning.pdf",
        None,
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bilde.jpg", b"<html><script>alert(1)</script></html>", "er verken et bilde (JPEG, PNG, WebP) eller en PDF"),
        ("rapport.pdf", b"MZ\x90\x00" + b"\x00" * 200, "er verken et bilde (JPEG, PNG, WebP) eller en PDF"),
        ("tom.png", b"", "er tom"),
        ("skadet.pdf", b"%PDF-1.4\nthis is not a pdf", "ser ut som en PDF, men kan ikke leses"),
        (
            "skript.pdf",
            pdf(extra=b"<< /S /JavaScript /JS (app.alert(1)) >>", catalog_extra=b"/OpenAction 4 0 R "),
            "inneholder skript, handlinger eller innebygde filer",
        ),
        ("animasjon.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "er verken et bilde (JPEG, PNG, WebP) eller en PDF"),
        # Actions a reader runs by itself, however they are written: on a page, in a link, as hex,
        # with #-escaped names.
        (
            "side.pdf",
            pdf(extra=b"<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] /A << /S /Launch /F (cmd.exe) >> >>"),
            "inneholder skript, handlinger eller innebygde filer",
        ),
        (
            "hex.pdf",
            pdf(extra=b"<< /O << /S /JavaScript /JS <6170702e616c657274283129> >> >>"),
            "inneholder skript, handlinger eller innebygde filer",
        ),
        (
            "escaped.pdf",
            pdf(extra=b"<< /S /Java#53cript /J#53 (app.alert(1)) >>"),
            "inneholder skript, handlinger eller innebygde filer",
        ),
    ],
)
def test_a_file_that_is_not_a_clean_photo_or_pdf_is_refused_and_nothing_is_kept(
    app, client, login_as, kari, gp, name, content, message
):
    login_as(kari)
    response = send(client, gp, [("ok.jpg", jpeg()), (name, content)])
    assert response.status_code == 409
    assert message in response.get_data(as_text=True)
    assert "Du hadde valgt 2 filer. Velg dem på nytt før du sender." in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Conversation)) == 0
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert files_on_disk(app) == []


def test_a_phone_photo_with_more_images_in_it_goes_as_a_jpeg(client, login_as, kari, gp):
    """Phones write depth and gain maps as extra images in the JPEG (MPO)."""
    out = io.BytesIO()
    first, second = Image.new("RGB", (400, 300), (10, 120, 10)), Image.new("RGB", (400, 300), (0, 0, 0))
    first.save(out, "MPO", save_all=True, append_images=[second])
    login_as(kari)
    assert send(client, gp, [("IMG_0001.JPG", out.getvalue())]).status_code == 303
    attachment = db.session.scalars(select(Attachment)).one()
    assert (attachment.content_type, attachment.filename) == ("image/jpeg", "IMG_0001.jpg")
    assert attachment.preview_name is not None


def test_size_and_count_limits_say_so(app, client, login_as, kari, gp):
    login_as(kari)
    limit = app.config["MESSAGE_ATTACHMENT_MAX_BYTES"]
    app.config["MESSAGE_ATTACHMENT_MAX_BYTES"] = 10_000
    try:
        big = send(client, gp, [("stort.jpg", jpeg((2000, 2000)) + b"\x00" * 20_000)])
        assert big.status_code == 409
        assert "er for stor. Hver fil kan være høyst" in big.get_data(as_text=True)
    finally:
        app.config["MESSAGE_ATTACHMENT_MAX_BYTES"] = limit
    many = send(client, gp, [(f"{i}.jpg", jpeg((8, 8))) for i in range(6)])
    assert many.status_code == 409
    assert "høyst 5 filer" in many.get_data(as_text=True)
    assert files_on_disk(app) == []


def test_a_body_over_the_request_limit_is_refused_unread(app, client, login_as, kari, gp):
    login_as(kari)
    token = csrf_from(client, f"/meldinger/ny/{gp.id}")
    huge = b"\xff" * (
        app.config["MESSAGE_MAX_ATTACHMENTS"] * app.config["MESSAGE_ATTACHMENT_MAX_BYTES"] + 2 * 1024 * 1024
    )
    # The body is built here (the test client would spool one this large to a file of its own).
    boundary = "varde-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in {"csrf_token": token, "topic": "other", "subject": "x", "body": "y"}.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + huge
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = client.post(
        f"/meldinger/ny/{gp.id}", data=b"".join(parts), content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 413
    assert "Det du sendte er for stort" in response.get_data(as_text=True)
    # Elsewhere, the ordinary 1 MB limit still holds.
    token = csrf_from(client, "/meldinger")
    other = client.post("/meldinger/utkast/0", data={"csrf_token": token, "body": "x" * (2 * 1024 * 1024)})
    assert other.status_code == 413


def test_a_send_that_fails_after_writing_files_leaves_no_file(app, client, login_as, kari, gp, monkeypatch):
    from app.auth.models import Role

    dr = factories.staff("fastlege.aune", "Dr. Siri Aune", Role.CLINICIAN)
    factories.member_of(dr, gp)
    conversation = factories.conversation(kari, kari.person, gp)
    login_as(dr)
    token = csrf_from(client, f"/ansatt/meldinger/{conversation.id}")

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("the database went away")

    monkeypatch.setattr("app.notify.events.emit", broken)
    app.config["PROPAGATE_EXCEPTIONS"], before = False, app.config.get("PROPAGATE_EXCEPTIONS")
    try:
        response = client.post(
            f"/ansatt/meldinger/{conversation.id}/svar",
            data={"csrf_token": token, "body": "Se skjema", "files": [(io.BytesIO(pdf()), "skjema.pdf")]},
            content_type="multipart/form-data",
        )
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = before
    assert response.status_code == 500
    assert files_on_disk(app) == []
    assert db.session.scalar(select(func.count()).select_from(Message)) == 1


def test_someone_elses_file_is_not_found(client, login_as, kari, per, gp):
    login_as(kari)
    send(client, gp, [("a.jpg", jpeg())])
    conversation = db.session.scalars(select(Conversation)).one()
    attachment = db.session.scalars(select(Attachment)).one()
    factories.gp_of(per.person, gp)
    other = factories.conversation(per, per.person, gp)
    # Per asks for Kari's file directly, and through his own conversation's URL.
    login_as(per)
    assert client.get(f"/meldinger/{conversation.id}/vedlegg/{attachment.id}").status_code == 404
    assert client.get(f"/meldinger/{other.id}/vedlegg/{attachment.id}").status_code == 404
    assert client.get(f"/ansatt/meldinger/{conversation.id}/vedlegg/{attachment.id}").status_code == 404
