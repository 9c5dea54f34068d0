"""Draw the app icons (a cairn: a "varde") as PNGs. Run with Pillow installed; the PNGs are committed.

python scripts/make_icons.py
"""

from pathlib import Path

from PIL import Image, ImageDraw

BRAND = (11, 79, 108, 255)
WHITE = (255, 255, 255, 255)
OUT = Path(__file__).resolve().parent.parent / "app" / "static" / "icons"
# Stones as (centre y, half width, half height) on a 64-unit grid, matching varde.svg.
STONES = [(49, 20, 6.5), (37.5, 15, 5.5), (27, 10.5, 4.8), (18, 6.5, 4)]


def draw(size: int, *, maskable: bool = False, rounded: bool = True, mono: bool = False) -> Image.Image:
    scale = 4  # draw large, then downsample for smooth edges
    s = size * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    if not mono:
        if maskable or not rounded:
            d.rectangle([0, 0, s, s], fill=BRAND)
        else:
            d.rounded_rectangle([0, 0, s - 1, s - 1], radius=int(s * 14 / 64), fill=BRAND)
    # A maskable icon keeps its content inside the central 80 % safe zone.
    content = 0.62 if maskable else 1.0
    unit = s / 64 * content
    offset = (s - 64 * unit) / 2
    for cy, rx, ry in STONES:
        cx = 32
        d.ellipse(
            [
                offset + (cx - rx) * unit,
                offset + (cy - ry) * unit,
                offset + (cx + rx) * unit,
                offset + (cy + ry) * unit,
            ],
            fill=WHITE,
        )
    # A small palette keeps the files light (the manifest icons count towards the first load).
    return img.resize((size, size), Image.LANCZOS).quantize(colors=24, method=Image.Quantize.FASTOCTREE)


if __name__ == "__main__":
    draw(192).save(OUT / "icon-192.png", optimize=True)
    draw(512).save(OUT / "icon-512.png", optimize=True)
    draw(512, maskable=True).save(OUT / "icon-maskable-512.png", optimize=True)
    draw(96, mono=True).save(OUT / "badge-96.png", optimize=True)  # Android badge: white on transparent
    print("icons written to", OUT)
