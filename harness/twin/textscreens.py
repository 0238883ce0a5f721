"""Text screens with known text: what the agent must be able to read, and where it is.

Screens: a settings list, an email, an error dialog, small and large fonts, German words with
umlauts. Each renders at any screen size into an RGB image and returns its truth: every line's
text, box (x, y, w, h) in screen pixels and font size in px, which the twin logs as
`text_shown` in groundtruth.jsonl and harness.vision.legibility reads back.

Font: Pillow's built-in FreeType font (ImageFont.load_default(size), Pillow >= 10.1; Pillow is a
dependency of adbutils and uiautomator2, and no font file is needed). cv2.putText has no
umlauts, and the built-in font has none either: its ASCII glyphs are drawn and the umlauts
composed from the base letter and two dots drawn here (a, o, u, A, O, U); the screens avoid
the letter sharp s, which neither font has.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

REFERENCE_HEIGHT_PX = 800  # font sizes below are for an 800-px-high screen, scaled to others
BG_RGB = (250, 250, 250)
TEXT_RGB = (25, 25, 25)
_UMLAUT_BASE = {"ä": "a", "ö": "o", "ü": "u", "Ä": "A", "Ö": "O", "Ü": "U"}


@dataclass(frozen=True)
class TextLine:
    """One line of known text on the screen.

    Attributes:
        text: the characters shown.
        box: (x, y, w, h) of the line's ink plus a small margin, screen pixels.
        font_px: the font size.
        words: (word, x, w) of each word: where it starts and how wide it is, screen pixels.
    """

    text: str
    box: tuple[int, int, int, int]
    font_px: int
    words: tuple[tuple[str, int, int], ...] = ()


# screen name -> [(text, font px on an 800-px-high screen)]
_SCREENS: dict[str, list[tuple[str, int]]] = {
    "settings": [
        ("Settings", 34),
        ("Wireless & Networks", 22),
        ("Display & Sounds", 22),
        ("Notifications & Quiet Time", 22),
        ("Applications & Games", 22),
        ("Device Options", 22),
        ("Privacy & Security", 22),
        ("Battery level 87% (about 6 h left)", 18),
        ("Serial number G000H4071234ABCD", 16),
    ],
    "email": [
        ("Inbox (3)", 30),
        ("From: Anna Berger <anna.berger@example.com>", 18),
        ("Subject: Your order #112-4093 has shipped", 18),
        ("Hi Sam, the package arrives on Thursday", 20),
        ("between 9:00 and 13:00. Track it with", 20),
        ("code 1Z999AA10123456784 on the website.", 20),
        ("Reply  Forward  Delete", 16),
    ],
    "error": [
        ("Unable to connect", 32),
        ("Error 0x80070005: the server did not respond.", 20),
        ("Check that Wi-Fi is on and try again.", 20),
        ("Details: DNS lookup failed for mayday.example.net", 16),
        ("Try again    Cancel", 24),
    ],
    "fonts": [
        ("Large text is easy to read", 44),
        ("Medium text for menus and buttons", 24),
        ("Small text of a footnote or a label", 16),
        ("Tiny text under the toolbar icons", 15),
    ],
    "german": [
        ("Einstellungen für Geräte", 32),
        ("Bildschirm und Töne", 22),
        ("Über dieses Gerät", 22),
        ("Öffentliche Netzwerke: Ärger vermeiden", 20),
        ("Kindersicherung für Bücher und Hörbücher", 20),
        ("Schrift klein: Änderungen übernehmen", 16),
    ],
}
SCREEN_NAMES = tuple(_SCREENS)


def _font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=px)


def _draw_line(draw: ImageDraw.ImageDraw, x: float, y: float, text: str, font) -> None:
    """Draw text at (x, y) (top-left of the font's em box), composing the umlauts."""
    px = font.size
    dot = max(0.8, px * 0.05)  # sizes tuned so the OCR reads them (docs/vision.md)
    for ch in text:
        base = _UMLAUT_BASE.get(ch, ch)
        draw.text((x, y), base, fill=TEXT_RGB, font=font)
        if ch in _UMLAUT_BASE:
            left, top, right, _ = draw.textbbox((x, y), base, font=font)
            gap = px * (0.06 if base.isupper() else 0.08)
            cy = top - dot - max(1.0, gap)
            cx = (left + right) / 2
            for side in (-1, 1):
                px_ = cx + side * max(dot * 1.3, (right - left) * 0.11)
                draw.ellipse((px_ - dot, cy - dot, px_ + dot, cy + dot), fill=TEXT_RGB)
        x += font.getlength(base)


def _word_spans(text: str, x0: int, font) -> tuple[tuple[str, int, int], ...]:
    plain = text.translate(str.maketrans(_UMLAUT_BASE))
    out, pos = [], 0
    for word in text.split():
        start = text.index(word, pos)
        x = x0 + font.getlength(plain[:start])
        w = font.getlength(plain[start : start + len(word)])
        out.append((word, round(x), max(1, round(w))))
        pos = start + len(word)
    return tuple(out)


def render(name: str, width: int, height: int) -> tuple[np.ndarray, list[TextLine]]:
    """One text screen at width x height: the RGB image and its lines of text with positions.

    Raises:
        ValueError: unknown screen name (names the known ones).
    """
    if name not in _SCREENS:
        raise ValueError(f"unknown text screen {name!r}; known: {', '.join(SCREEN_NAMES)}")
    scale = height / REFERENCE_HEIGHT_PX
    img = Image.new("RGB", (width, height), BG_RGB)
    draw = ImageDraw.Draw(img)
    x0 = round(width * 0.05)
    y = round(height * 0.1)
    lines: list[TextLine] = []
    for text, size in _SCREENS[name]:
        px = max(8, round(size * scale))
        font = _font(px)
        _draw_line(draw, x0, y, text, font)
        ascent, descent = font.getmetrics()
        tw = font.getlength(text.translate(str.maketrans(_UMLAUT_BASE)))
        margin = max(2, round(px * 0.25))
        box = (
            max(0, x0 - margin),
            max(0, y - margin),
            min(width - max(0, x0 - margin), round(tw) + 2 * margin),
            ascent + descent + 2 * margin,
        )
        lines.append(TextLine(text, box, px, _word_spans(text, x0, font)))
        y += round(px * 1.9)
    return np.asarray(img).copy(), lines


def truth_fields(name: str, width: int, height: int, lines: list[TextLine]) -> dict:
    """The `text_shown` ground-truth record's fields for a rendered screen."""
    return {
        "screen": name,
        "size": [width, height],
        "lines": [
            {**asdict(ln), "box": list(ln.box), "words": [list(w) for w in ln.words]}
            for ln in lines
        ],
    }
