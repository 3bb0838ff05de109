"""Draw the module and extension icons (128 x 128 PNG): a vertebral column with one red wedge vertebra.

Run from the repository root: ``python3 VertebralFracture/Resources/Icons/make_icons.py``.
"""

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 128
SCALE = 4  # draw large, then downsample for smooth edges
BONE = (236, 226, 200, 255)
OUTLINE = (120, 105, 80, 255)
DISC = (120, 170, 215, 255)
FRACTURE = (215, 40, 40, 255)


def draw_icon() -> Image.Image:
    """The icon as an RGBA image."""
    big = SIZE * SCALE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    s = SCALE
    bodies, top, height, gap, width = 4, 9 * s, 22 * s, 6 * s, 52 * s
    for index in range(bodies):
        y0, y1 = top + index * (height + gap), top + index * (height + gap) + height
        x0 = 22 * s + int(abs(index - 1.5) * 4 * s)  # gentle curve
        x1 = x0 + width
        process = [(x1 - 2 * s, y0 + 6 * s), (x1 + 30 * s, y0 + 12 * s), (x1 + 30 * s, y0 + 18 * s)]
        draw.polygon([*process, (x1 - 2 * s, y1 - 3 * s)], fill=BONE, outline=OUTLINE, width=2 * s)
        if index == 2:  # the fractured vertebra: anterior (left) height halved, a wedge
            wedge = [(x0, y0 + height // 2), (x1, y0), (x1, y1), (x0, y1)]
            draw.polygon(wedge, fill=FRACTURE, outline=(120, 10, 10, 255), width=2 * s)
        else:
            draw.rounded_rectangle((x0, y0, x1, y1), radius=5 * s, fill=BONE, outline=OUTLINE, width=2 * s)
        if index < bodies - 1:
            draw.rounded_rectangle((x0 + 3 * s, y1 + 1 * s, x1 - 3 * s, y1 + gap - 1 * s), radius=2 * s, fill=DISC)
    return image.resize((SIZE, SIZE), Image.LANCZOS)


def main() -> None:
    """Write the module icon and the extension icon."""
    root = Path(__file__).resolve().parents[3]
    icon = draw_icon()
    targets = ("VertebralFracture/Resources/Icons/VertebralFracture.png", "Resources/VertebralFracture.png")
    for path in (root / target for target in targets):
        path.parent.mkdir(parents=True, exist_ok=True)
        icon.save(path)
        print(path)


if __name__ == "__main__":
    main()
