"""Legibility: can the agent read the text on the screen it receives? CER against known text.

The twin's text screens (harness.twin.textscreens) log every line they show with its box and
words (`text_shown` in groundtruth.jsonl). Here each line's box, mapped onto the received frame,
is read by an offline OCR recognizer and compared with the truth: the character error rate
(CER) is the Levenshtein distance between the two over the truth's length, per frame over all
its lines; metric `share_text_cer` in percent.

Engine: rapidocr-onnxruntime 1.4.4 (PP-OCRv4 recognizer, ONNX model inside the wheel, no
download at run time), the optional extra `pip install -e '.[ocr]'`. Only its recognizer runs
(the truth says where the text is, so no detection), on each line alone at REC_HEIGHT_PX:
about 0.04 s of one core per line (a 1280x800 text screen 0.3 s, the part of a 640x400 share
that is read 0.35-0.4 s: short lines are padded to rapidocr's minimum width). Its alphabet
(trained for Chinese and English) has no ö, Ä, Ö or ß and it drops and adds spaces at random,
so both texts are compared without whitespace and with diacritics folded to their base
letters (ü -> u): the metric measures what the transport did to the letters, not the engine's
alphabet.

Sampling (the per-session CPU goal, a quarter core): one frame per OCR_INTERVAL_S window is
read, the one with the lowest SSIM in it (the sample leans to the worst frames, so its p95 errs
on the customer's side): twelve reads in the share run's 5-s text window, enough for a p95. A
line whose pixels were read before (a static screen's settled share repeats them) takes that
read (OcrEngine.read_line): the cost is that of the lines that changed. A damaged stretch
shorter than the window between two sampled frames can be missed.

Size: one metric end to end (the engine's loading and its line cache, the truth's boxes mapped
onto a frame, the CER, the per-run sampling and the worst frames' marks), which share one
engine object and one truth format; split, each part would import the rest.
"""

from __future__ import annotations

import hashlib
import math
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from harness.errors import MeasurementError
from harness.measure import Measurement
from harness.vision.image import check_image

# One frame read per window: twelve reads in share_quality.TEXT_WINDOW_S (a p95 needs ten), at
# up to 0.4 s of one core each on the share, less the lines that repeat (docs/vision.md)
OCR_INTERVAL_S = 0.4
OCR_THREADS = 1
# The recognizer's input height. PP-OCRv4 was trained at 48 px; its input height is free (the
# model is convolutional), and reading each line alone at 56 px read the twin's clean screens
# best over seven screen sizes (640x400 .. 2560x1600; docs/vision.md has the sweep 48-72 px).
REC_HEIGHT_PX = 56
REC_MIN_RATIO = 320 / 48  # rapidocr's minimum input width over height (short lines padded)
READ_CACHE_LINES = 512  # line crops remembered with their read (a static screen repeats them)
INSTALL_HINT = "pip install -e '.[ocr]' (rapidocr-onnxruntime: OCR for share_text_cer)"
MARK_BGR = (0, 0, 230)


# ---------------------------------------------------------------------------------------------
# Text comparison


def normalise(text: str) -> str:
    """Text as compared: whitespace removed, diacritics folded to base letters, ß as ss."""
    folded = unicodedata.normalize("NFKD", text.replace("ß", "ss"))
    return "".join(c for c in folded if not unicodedata.combining(c) and not c.isspace())


def edit_ops(truth: str, read: str) -> tuple[int, list[bool]]:
    """Levenshtein distance and, per truth character, whether it was misread.

    A substituted or deleted character is misread; an insertion marks the truth character
    before it (or the first one).
    """
    n, m = len(truth), len(read)
    d = np.zeros((n + 1, m + 1), np.int32)
    d[:, 0] = np.arange(n + 1)
    d[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        ti = truth[i - 1]
        row, prev = d[i], d[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ti != read[j - 1]))
    bad = [False] * n
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i, j] == d[i - 1, j - 1] + (truth[i - 1] != read[j - 1]):
            if truth[i - 1] != read[j - 1]:
                bad[i - 1] = True
            i, j = i - 1, j - 1
        elif i > 0 and d[i, j] == d[i - 1, j] + 1:
            bad[i - 1] = True
            i -= 1
        else:
            if n:
                bad[max(0, i - 1)] = True
            j -= 1
    return int(d[n, m]), bad


def cer(truth: str, read: str) -> float:
    """Character error rate (0..1+) of `read` against `truth`, both normalised.

    Raises:
        MeasurementError: the truth has no characters.
    """
    t = normalise(truth)
    if not t:
        raise MeasurementError("CER: the truth text has no characters")
    return edit_ops(t, normalise(read))[0] / len(t)


# ---------------------------------------------------------------------------------------------
# Truth


@dataclass(frozen=True)
class TruthLine:
    """A line of known text: its characters, box (x, y, w, h) and words (word, x, w)."""

    text: str
    box: tuple[int, int, int, int]
    words: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True)
class TextTruth:
    """What a text screen showed (a `text_shown` ground-truth record): lines on a screen size."""

    screen: str
    size: tuple[int, int]
    lines: tuple[TruthLine, ...]
    t_s: float | None = None

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> TextTruth:
        """From a `text_shown` record (harness.twin.textscreens.truth_fields).

        Raises:
            MeasurementError: a missing or malformed key (named).
        """
        try:
            lines = tuple(
                TruthLine(
                    str(ln["text"]),
                    tuple(int(v) for v in ln["box"]),
                    tuple((str(w), int(x), int(ww)) for w, x, ww in ln.get("words", [])),
                )
                for ln in rec["lines"]
            )
            size = (int(rec["size"][0]), int(rec["size"][1]))
            return cls(str(rec.get("screen", "")), size, lines, rec.get("t"))
        except (KeyError, TypeError, ValueError) as e:
            raise MeasurementError(f"text truth: malformed text_shown record ({e!r})") from e

    def scaled(self, width: int, height: int) -> TextTruth:
        """The same truth on a frame of another size (the share is the screen scaled)."""
        sx, sy = width / self.size[0], height / self.size[1]

        def box(b):
            return (round(b[0] * sx), round(b[1] * sy), round(b[2] * sx), round(b[3] * sy))

        lines = tuple(
            TruthLine(
                ln.text,
                box(ln.box),
                tuple((w, round(x * sx), max(1, round(ww * sx))) for w, x, ww in ln.words),
            )
            for ln in self.lines
        )
        return TextTruth(self.screen, (width, height), lines, self.t_s)

    def clipped(self, x0: int, x1: int) -> TextTruth:
        """Only the words wholly inside columns [x0, x1) (e.g. away from a pane that floats over
        the screen): each line keeps those words, its box spans them; lines without any go.
        Lines without word spans are kept only when their box is inside."""
        lines = []
        for ln in self.lines:
            x, y, w, h = ln.box
            if not ln.words:
                if x >= x0 and x + w <= x1:
                    lines.append(ln)
                continue
            words = tuple(wd for wd in ln.words if wd[1] >= x0 and wd[1] + wd[2] <= x1)
            if not words:
                continue
            if words == ln.words:
                lines.append(ln)
                continue
            first, last = ln.words.index(words[0]), ln.words.index(words[-1])
            margin = max(2, h // 4)
            left = (
                x
                if first == 0
                else max(ln.words[first - 1][1] + ln.words[first - 1][2] + 1, words[0][1] - margin)
            )
            right = words[-1][1] + words[-1][2] + margin
            if last + 1 < len(ln.words):  # not into the next word's ink
                right = min(right, ln.words[last + 1][1] - 1)
            left, right = max(x0, left), min(x1, right)
            text = " ".join(wd[0] for wd in words)
            lines.append(TruthLine(text, (left, y, right - left, h), words))
        return TextTruth(self.screen, self.size, tuple(lines), self.t_s)


# ---------------------------------------------------------------------------------------------
# OCR engine


def ocr_unavailable() -> str | None:
    """None when the OCR engine imports, else one line saying how to install it."""
    try:
        import rapidocr_onnxruntime  # noqa: F401
    except Exception as e:  # noqa: BLE001 -- ImportError, or a broken onnxruntime / cv2 install
        return f"OCR not available ({type(e).__name__}: {e}); install it: {INSTALL_HINT}"
    return None


class OcrEngine:
    """The offline OCR (rapidocr-onnxruntime), one thread, loaded once per process.

    `read_lines` runs the PP-OCRv4 recognizer itself on each line alone, at REC_HEIGHT_PX: the
    read of a line is a function of its pixels only (rapidocr batches six lines and pads each
    to the widest one, so a line's read and cost depend on its neighbours), which lets a line
    seen before with the same pixels take its earlier read (`cache_hits`).
    """

    _lock = threading.Lock()
    _shared: OcrEngine | None = None

    def __init__(self, threads: int = OCR_THREADS, *, rec_height_px: int = REC_HEIGHT_PX):
        reason = ocr_unavailable()
        if reason:
            raise MeasurementError(reason)
        from rapidocr_onnxruntime import RapidOCR

        self._engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=threads)
        rec = self._engine.text_rec  # rapidocr-onnxruntime 1.4.4 (pinned by the ocr extra)
        self._session, self._decode = rec.session, rec.postprocess_op
        self.rec_height_px = rec_height_px
        self._cache: OrderedDict[bytes, str] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.lines_read = 0  # recognizer runs
        self.cache_hits = 0  # lines answered from the cache

    @classmethod
    def shared(cls) -> OcrEngine:
        """One engine per process (its models take ~0.5 s to load)."""
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def _recognise(self, crop: np.ndarray) -> str:
        """One line crop (BGR) through the recognizer, prepared by rapidocr's own rule
        (TextRecognizer.resize_norm_img) at rec_height_px: resized to that height (aspect kept,
        at most the padded width), scaled to [-1, 1], right-padded with zeros to at least
        REC_MIN_RATIO times the height."""
        h, w = crop.shape[:2]
        height = self.rec_height_px
        padded = int(height * max(REC_MIN_RATIO, w / h))
        width = min(padded, math.ceil(height * w / h))
        x = cv2.resize(crop, (width, height)).astype(np.float32).transpose(2, 0, 1) / 255
        batch = np.zeros((1, 3, height, padded), np.float32)
        batch[0, :, :, :width] = (x - 0.5) / 0.5
        preds = self._session(batch)[0]
        return str(self._decode(preds)[0][0])

    def read_line(self, crop: np.ndarray) -> str:
        """The text of one line crop (BGR, at least 4x4 px); the same pixels read the same."""
        digest = hashlib.blake2b(str(crop.shape).encode(), digest_size=16)
        digest.update(np.ascontiguousarray(crop))
        key = digest.digest()
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                return self._cache[key]
        text = self._recognise(crop)
        with self._cache_lock:
            self.lines_read += 1
            self._cache[key] = text
            while len(self._cache) > READ_CACHE_LINES:
                self._cache.popitem(last=False)
        return text

    def read_lines(self, bgr: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> list[str]:
        """The text in each box (x, y, w, h) of a frame, recognizer only, each line alone."""
        h, w = bgr.shape[:2]
        out = [""] * len(boxes)
        for k, (x, y, bw, bh) in enumerate(boxes):
            x0, y0 = max(0, x), max(0, y)
            x1, y1 = min(w, x + bw), min(h, y + bh)
            if x1 - x0 >= 4 and y1 - y0 >= 4:
                out[k] = self.read_line(np.ascontiguousarray(bgr[y0:y1, x0:x1]))
        return out

    def read_page(self, bgr: np.ndarray) -> list[tuple[list, str, float]]:
        """Detection + recognition on a whole frame: (quad, text, score) per text found."""
        res, _ = self._engine(bgr)
        return [(r[0], r[1], float(r[2])) for r in (res or [])]


# ---------------------------------------------------------------------------------------------
# Per frame


@dataclass(frozen=True)
class LineRead:
    """One line: the truth, what was read, its errors and the misread words (index into words)."""

    truth: TruthLine
    read: str
    errors: int
    chars: int
    misread_words: tuple[int, ...]


@dataclass
class FrameLegibility:
    """CER of one frame against its text truth.

    Attributes:
        t_s: the frame's time; index: its position among the frames given.
        lines: per line, what was read.
    """

    t_s: float
    index: int
    lines: list[LineRead] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(ln.errors for ln in self.lines)

    @property
    def chars(self) -> int:
        return sum(ln.chars for ln in self.lines)

    @property
    def cer(self) -> float:
        """Errors over truth characters, all lines of the frame (0..1+)."""
        return self.errors / self.chars if self.chars else 0.0


def _misread_words(line: TruthLine, bad: list[bool]) -> tuple[int, ...]:
    out, pos = [], 0
    words = line.words or tuple((w, 0, 0) for w in line.text.split())
    for k, (word, _x, _w) in enumerate(words):
        n = len(normalise(word))
        if any(bad[pos : pos + n]):
            out.append(k)
        pos += n
    return tuple(out)


def read_frame(
    frame: np.ndarray, truth: TextTruth, engine: OcrEngine, *, t_s: float = 0.0, index: int = 0
) -> FrameLegibility:
    """Read every truth line on a frame (truth scaled to the frame's size) and score it.

    Raises:
        MeasurementError: a bad frame, or the truth has no characters.
    """
    check_image(frame, f"legibility frame {index}", min_size=(16, 16))
    h, w = frame.shape[:2]
    bgr = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame[:, :, :3]
    t = truth if truth.size == (w, h) else truth.scaled(w, h)
    reads = engine.read_lines(np.ascontiguousarray(bgr), [ln.box for ln in t.lines])
    out = FrameLegibility(t_s, index)
    for line, read in zip(t.lines, reads, strict=True):
        truth_n = normalise(line.text)
        errors, bad = edit_ops(truth_n, normalise(read))
        out.lines.append(LineRead(line, read, errors, len(truth_n), _misread_words(line, bad)))
    if out.chars == 0:
        raise MeasurementError(f"legibility: the text truth of {truth.screen!r} has no characters")
    return out


def sample(times_s: Sequence[float], ssims: Sequence[float | None], every_s: float) -> list[int]:
    """Which frames to read: per window of every_s seconds, the one with the lowest SSIM (the
    first when none has one). every_s <= 0 reads every frame."""
    if every_s <= 0:
        return list(range(len(times_s)))
    if not times_s:
        return []
    t0 = min(times_s)
    best: dict[int, int] = {}
    for i, t in enumerate(times_s):
        k = int((t - t0) // every_s)
        j = best.get(k)
        s_i = ssims[i] if ssims[i] is not None else np.inf
        if j is None or s_i < (ssims[j] if ssims[j] is not None else np.inf):
            best[k] = i
    return [best[k] for k in sorted(best)]


def measure(
    frames: Sequence[np.ndarray],
    times_s: Sequence[float],
    truth: TextTruth,
    *,
    ssims: Sequence[float | None] | None = None,
    every_s: float = OCR_INTERVAL_S,
    engine: OcrEngine | None = None,
) -> list[FrameLegibility]:
    """CER of sampled received frames that show the text screen (see `sample`).

    Raises:
        MeasurementError: no frames, times and frames of different lengths, no OCR engine.
    """
    if not frames:
        raise MeasurementError("legibility: no frames to read")
    if len(times_s) != len(frames):
        raise MeasurementError(
            f"legibility: {len(frames)} frames but {len(times_s)} times were given"
        )
    engine = engine or OcrEngine.shared()
    picked = sample(times_s, ssims or [None] * len(frames), every_s)
    return [read_frame(frames[i], truth, engine, t_s=times_s[i], index=i) for i in picked]


def to_measurement(reads: Sequence[FrameLegibility], *, every_s: float = OCR_INTERVAL_S):
    """share_text_cer in percent, one sample per frame read (meta: the sampling, the number of
    frames read; per sample the misread lines)."""
    m = Measurement("share_text_cer", "%", meta={"sampled_every_s": every_s, "reads": len(reads)})
    for r in reads:
        misread = [r.lines[k].truth.text for k in range(len(r.lines)) if r.lines[k].misread_words]
        m.add(
            100.0 * r.cer,
            t=r.t_s,
            frame=r.index,
            errors=r.errors,
            chars=r.chars,
            misread_lines=misread[:5],
        )
    return m


# ---------------------------------------------------------------------------------------------
# Worst frames, sent | received, misread words marked


def _mark(img: np.ndarray, lines: Sequence[LineRead], sx: float, sy: float) -> np.ndarray:
    """A BGR copy of img with each misread word boxed (boxes scaled by sx, sy)."""
    out = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img[:, :, :3].copy()
    thick = max(2, min(out.shape[:2]) // 300)
    for ln in lines:
        x, y, w, h = ln.truth.box
        y0, y1 = round(y * sy), round((y + h) * sy)
        spans = [(wx, ww) for k, (_t, wx, ww) in enumerate(ln.truth.words) if k in ln.misread_words]
        if ln.misread_words and not ln.truth.words:
            spans = [(x, w)]
        for wx, ww in spans:
            cv2.rectangle(
                out, (round(wx * sx) - 2, y0), (round((wx + ww) * sx) + 2, y1), MARK_BGR, thick
            )
    return out


def worst_frames_image(
    sent: Sequence[np.ndarray],
    received: Sequence[np.ndarray],
    reads: Sequence[FrameLegibility],
    *,
    count: int = 3,
) -> np.ndarray:
    """The `count` worst-read frames, one row each: sent | received, misread words boxed in red
    on both (the received frame at the sent frame's size), CER written above.

    Args:
        sent: the reference frame of each read (same order as reads).
        received: the received frame of each read.

    Raises:
        MeasurementError: nothing read, or lists of different lengths.
    """
    if not reads or len(sent) != len(reads) or len(received) != len(reads):
        raise MeasurementError(
            f"legibility: worst frames need as many sent and received frames as reads "
            f"({len(sent)}, {len(received)}, {len(reads)})"
        )
    order = sorted(range(len(reads)), key=lambda k: -reads[k].cer)[:count]
    rows = []
    for k in order:
        ref = sent[k]
        h, w = ref.shape[:2]
        rec = received[k]
        if rec.shape[:2] != (h, w):
            rec = cv2.resize(rec, (w, h), interpolation=cv2.INTER_LINEAR)
        if ref.ndim == 2:
            ref = cv2.cvtColor(ref, cv2.COLOR_GRAY2BGR)
        r = reads[k]
        rh, rw = received[k].shape[:2]  # the read's boxes are on the received frame
        a = _mark(ref, r.lines, w / rw, h / rh)
        b = _mark(rec, r.lines, w / rw, h / rh)
        row = np.hstack([a, np.full((h, 8, 3), 255, np.uint8), b])
        bar = np.full((max(24, h // 20), row.shape[1], 3), 255, np.uint8)
        label = f"t={r.t_s:.1f}s  CER {100 * r.cer:.1f}%  ({r.errors}/{r.chars})  sent | received"
        cv2.putText(
            bar,
            label,
            (8, bar.shape[0] - 7),
            cv2.FONT_HERSHEY_SIMPLEX,
            bar.shape[0] / 40,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
        rows.append(np.vstack([bar, row]))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.vstack(rows)
