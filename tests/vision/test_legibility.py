"""Legibility without the OCR engine: text comparison, truth records, sampling, marked frames."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import MeasurementError
from harness.twin import textscreens as ts
from harness.vision import legibility as lg


def test_normalise_drops_whitespace_and_folds_diacritics():
    assert lg.normalise(" Über  dieses\tGerät ") == "UberdiesesGerat"
    assert lg.normalise("Straße") == "Strasse"
    assert lg.normalise("Error: 0x80") == "Error:0x80"


@pytest.mark.parametrize(
    "truth, read, distance",
    [
        ("kitten", "sitting", 3),
        ("settings", "settings", 0),
        ("abc", "", 3),
        ("abc", "xabcx", 2),
        ("Display", "Dlsplay", 1),
    ],
)
def test_levenshtein_distance(truth, read, distance):
    assert lg.edit_ops(truth, read)[0] == distance


def test_cer_counts_against_the_truth_length_and_marks_the_misread_characters():
    assert lg.cer("Wireless & Networks", "Wireless & Networks") == 0.0
    assert lg.cer("Wireless & Networks", "Wire1ess&Netw0rks") == pytest.approx(2 / 17)
    _, bad = lg.edit_ops("footnote", "fotnote")
    assert sum(bad) == 1
    _, bad = lg.edit_ops("abc", "abxc")
    assert sum(bad) == 1
    with pytest.raises(MeasurementError, match="no characters"):
        lg.cer("  ", "x")


def _truth(name="email", size=(1280, 800)):
    img, lines = ts.render(name, *size)
    return img, lg.TextTruth.from_record(ts.truth_fields(name, *size, lines))


def test_truth_record_round_trip_and_scaling():
    img, truth = _truth()
    assert truth.screen == "email" and truth.size == (1280, 800) and len(truth.lines) == 7
    assert truth.lines[0].text == "Inbox (3)" and truth.lines[0].words[0][0] == "Inbox"
    half = truth.scaled(640, 400)
    x, y, w, h = truth.lines[1].box
    assert half.lines[1].box == (round(x / 2), round(y / 2), round(w / 2), round(h / 2))
    # the boxes hold the text's ink: nothing dark outside them, something dark in each
    dark = img.min(axis=2) < 128
    inside = np.zeros_like(dark)
    for ln in truth.lines:
        bx, by, bw, bh = ln.box
        assert dark[by : by + bh, bx : bx + bw].any(), ln.text
        inside[by : by + bh, bx : bx + bw] = True
    assert not (dark & ~inside).any()
    with pytest.raises(MeasurementError, match="malformed"):
        lg.TextTruth.from_record({"screen": "x", "size": [1, 1], "lines": [{"box": [0, 0]}]})


def test_umlaut_screen_renders_umlaut_dots_above_the_base_letters():
    img_de, _ = ts.render("german", 1280, 800)
    assert img_de.shape == (800, 1280, 3)
    # "Über" vs the same word drawn without its dots: the dots add ink above the U only
    from PIL import Image, ImageDraw

    font = ts._font(40)
    a = Image.new("RGB", (200, 80), ts.BG_RGB)
    b = Image.new("RGB", (200, 80), ts.BG_RGB)
    ts._draw_line(ImageDraw.Draw(a), 10, 20, "Über", font)
    ts._draw_line(ImageDraw.Draw(b), 10, 20, "Uber", font)
    diff = np.any(np.asarray(a) != np.asarray(b), axis=2)
    ys, xs = np.nonzero(diff)
    assert diff.any() and ys.max() < 20 + font.getbbox("U")[1]  # only above the letter
    assert xs.max() < 10 + font.getlength("U") + 2
    with pytest.raises(ValueError, match="known: settings"):
        ts.render("nope", 100, 100)


def test_sampling_reads_the_lowest_ssim_frame_of_each_window():
    times = [0.0, 1.0, 2.0, 4.9, 5.0, 6.0, 10.2]
    ssims = [0.99, 0.95, 0.97, None, 0.99, 0.90, None]
    assert lg.sample(times, ssims, 5.0) == [1, 5, 6]
    assert lg.sample(times, ssims, 0.0) == list(range(7))
    assert lg.sample([], [], 5.0) == []


class _ScriptedReader:
    """Stands in for the OCR engine in this pure unit test: returns the given reads per line."""

    def __init__(self, reads):
        self.reads = reads

    def read_lines(self, bgr, boxes):
        assert len(boxes) == len(self.reads)
        return list(self.reads)


def test_frame_cer_measurement_and_worst_frames_marks_the_misread_words():
    img, truth = _truth("error")
    reads = [ln.text for ln in truth.lines]
    clean = lg.read_frame(img, truth, _ScriptedReader(reads), t_s=1.0, index=0)
    assert clean.cer == 0.0 and clean.chars > 100
    damaged_reads = list(reads)
    damaged_reads[1] = damaged_reads[1].replace("server", "sewer").replace("respond", "resp0nd")
    bad = lg.read_frame(img, truth, _ScriptedReader(damaged_reads), t_s=6.0, index=5)
    words = [w for w, _x, _w in truth.lines[1].words]
    assert [words[k] for k in bad.lines[1].misread_words] == ["server", "respond."]
    assert bad.errors == 3 and bad.cer == pytest.approx(3 / clean.chars)
    m = lg.to_measurement([clean, bad])
    assert m.name == "share_text_cer" and m.unit == "%"
    assert m.values == [0.0, pytest.approx(300 / clean.chars)]
    assert m.samples[1].meta["misread_lines"] == [truth.lines[1].text]
    # received at half size: boxes are scaled onto it, the image marks the words in red
    small = np.ascontiguousarray(img[::2, ::2])
    bad_small = lg.read_frame(small, truth, _ScriptedReader(damaged_reads), t_s=6.0, index=5)
    out = lg.worst_frames_image([img, img], [small, small], [clean, bad_small], count=1)
    assert out.shape[1] == 2 * 1280 + 8
    red = (out[:, :, 2] > 200) & (out[:, :, 1] < 40) & (out[:, :, 0] < 40)
    ys, xs = np.nonzero(red)
    assert red.sum() > 100
    _w, wx, ww = truth.lines[1].words[words.index("server")]
    assert ((xs >= wx - 4) & (xs <= wx + ww + 4)).any()  # on the sent half, at the word
    assert ((xs >= 1288 + wx - 4) & (xs <= 1288 + wx + ww + 4)).any()  # and on the received


def test_bad_input_is_one_clear_error():
    img, truth = _truth()
    with pytest.raises(MeasurementError, match="2 frames but 1 times"):
        lg.measure([img, img], [0.0], truth, engine=_ScriptedReader([]))
    with pytest.raises(MeasurementError, match="no frames"):
        lg.measure([], [], truth, engine=_ScriptedReader([]))
    with pytest.raises(MeasurementError, match="uint8"):
        lg.read_frame(img.astype(np.float32), truth, _ScriptedReader([]))


def test_clipped_truth_keeps_the_words_wholly_inside_and_boxes_them_without_the_next_word():
    img, lines = ts.render("error", 1280, 800)
    truth = lg.TextTruth.from_record(ts.truth_fields("error", 1280, 800, lines))
    keep = 300  # a pane over the rest (at 0.65 of the width every line of it fits)
    clipped = truth.clipped(0, keep)
    assert clipped.size == truth.size
    for full, part in zip(truth.lines, clipped.lines, strict=True):
        inside = [w for w in full.words if w[1] + w[2] <= keep]
        assert part.words == tuple(inside)
        assert lg.normalise(part.text) == lg.normalise("".join(w[0] for w in inside))
        x, _y, w, _h = part.box
        assert x + w <= keep
        nxt = full.words[len(inside)] if len(inside) < len(full.words) else None
        if nxt is not None:  # the box stops before the next word's ink
            assert x + w < nxt[1]
            assert part.words[-1][1] + part.words[-1][2] <= x + w
        else:
            assert part == full
    # long lines lost their tail
    assert any(len(p.words) < len(f.words) for p, f in zip(clipped.lines, truth.lines, strict=True))
    # nothing of a line wholly outside: it goes
    assert truth.clipped(1270, 1280).lines == ()
