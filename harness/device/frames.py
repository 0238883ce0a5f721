"""Frame sources: timestamped frames from a device on the host's monotonic clock.

Polling sources (raw `screencap` over exec:, the `framebuffer:` service) time each frame by the
request and the arrival: the frame shows the screen at some instant between the two, so an
event first seen in frame k happened after frame k-1's request and before frame k's arrival.
That interval is the uncertainty every figure read off these frames carries.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable

import numpy as np

from harness.device.adb import SHELL_TIMEOUT_S, Device
from harness.errors import DeviceError

_FB_HEADER_V2 = struct.Struct("<13I")  # after the version word


class Frame:
    """One captured frame: BGR pixels, capture index, and host times (monotonic, s).

    Made from the device's RGBA pixels (`rgba=`), `image` is converted on first use (then
    kept) and `region()` converts only the part asked for: a frame read for one pane's code
    costs a conversion of that pane, not of the screen."""

    __slots__ = ("_image", "_rgba", "index", "t_request", "t_arrival", "source")

    def __init__(
        self,
        image: np.ndarray | None,
        index: int,
        t_request: float,
        t_arrival: float,
        source: str,
        *,
        rgba: np.ndarray | None = None,
    ) -> None:
        if image is None and rgba is None:
            raise ValueError("Frame: BGR or RGBA pixels")
        self._image, self._rgba = image, rgba
        self.index, self.t_request, self.t_arrival, self.source = (
            index,
            t_request,
            t_arrival,
            source,
        )

    @property
    def image(self) -> np.ndarray:
        """The frame as BGR (H, W, 3) uint8."""
        if self._image is None:
            self._image = _rgba_to_bgr(self._rgba)
            self._rgba = None
        return self._image

    def region(self, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
        """BGR pixels of [y1:y2, x1:x2] (the same bytes as image[y1:y2, x1:x2]).

        Raises:
            ValueError: the region reaches below the rows this frame holds (a partial read)."""
        pixels = self._image if self._image is not None else self._rgba
        if y2 > pixels.shape[0]:
            raise ValueError(f"Frame.region: rows to {y2}, the frame holds {pixels.shape[0]}")
        if self._image is not None:
            return self._image[y1:y2, x1:x2]
        return _rgba_to_bgr(self._rgba[y1:y2, x1:x2])

    def region_view(self, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
        """BGR pixels of [y1:y2, x1:x2] without a conversion: a read-only view of the device's
        RGBA bytes with the channels reversed (negative channel stride) when the frame holds
        them. For numpy readers that sample a few points (the code read of a pane); OpenCV
        needs region()'s contiguous copy.

        Raises:
            ValueError: the region reaches below the rows this frame holds (a partial read)."""
        if self._image is not None:
            return self.region(x1, y1, x2, y2)
        if y2 > self._rgba.shape[0]:
            raise ValueError(f"Frame.region: rows to {y2}, the frame holds {self._rgba.shape[0]}")
        view = self._rgba[y1:y2, x1:x2, 2::-1].view()
        view.flags.writeable = False
        return view

    @property
    def t(self) -> float:
        return self.t_arrival

    def __repr__(self) -> str:
        return (
            f"Frame(index={self.index}, t_request={self.t_request:.3f}, "
            f"t_arrival={self.t_arrival:.3f}, source={self.source!r})"
        )


def grab_framebuffer(device: Device, timeout_s: float = SHELL_TIMEOUT_S) -> np.ndarray:
    """One frame from the `framebuffer:` service (RGBA8888 or RGB565 layouts), as BGR."""
    deadline = time.monotonic() + timeout_s
    with device.stream("framebuffer:", timeout_s) as s:
        head = _read(s, 4, deadline, device)
        (version,) = struct.unpack("<I", head)
        if version != 2:
            raise DeviceError(device.serial, f"framebuffer: header version {version} not supported")
        fields = _FB_HEADER_V2.unpack(_read(s, _FB_HEADER_V2.size, deadline, device))
        bpp, _cs, size, w, h = fields[:5]
        if bpp != 32 or size != w * h * 4:
            raise DeviceError(
                device.serial, f"framebuffer: {bpp} bpp, {size} bytes for {w}x{h} not supported"
            )
        data = _read(s, size, deadline, device)
    return _rgba_to_bgr(np.frombuffer(data, np.uint8).reshape(h, w, 4))


_RAW_HEADER = struct.Struct("<III")  # width, height, pixel format (then a colour space on API 28+)
_MAX_RAW_PIXELS = 16384 * 16384


def grab_screencap_raw(device: Device, timeout_s: float = SHELL_TIMEOUT_S) -> np.ndarray:
    """One frame from raw `screencap` over exec: (API 21+), as BGR.

    The stream is read straight into one buffer of the frame's size (no chunks joined, no
    copy of the bytes), the pixels converted from there."""
    return _rgba_to_bgr(grab_screencap_rgba(device, timeout_s))


def grab_screencap_rgba(device: Device, timeout_s: float = SHELL_TIMEOUT_S) -> np.ndarray:
    """One frame from raw `screencap` over exec: (API 21+), its RGBA pixels (H, W, 4) as read."""
    return read_screencap(device, timeout_s)[0]


def read_screencap(
    device: Device,
    timeout_s: float = SHELL_TIMEOUT_S,
    *,
    rows: int | None = None,
    extra: int | None = None,
) -> tuple[np.ndarray, int]:
    """Raw `screencap` over exec: (API 21+): the RGBA pixels (H, W, 4) as read, and the header's
    bytes after width, height and format (`extra`: 0, or 4 for a colour space).

    With `rows` and the `extra` a whole frame of this device showed, only the first `rows`
    rows are read and the stream is closed: (rows, W, 4), a frame read for a region near the
    top costs the bytes of that region's rows, not of the screen's."""
    deadline = time.monotonic() + timeout_s
    with device.stream("exec:screencap", timeout_s) as s:
        head = bytearray(_RAW_HEADER.size)
        got = _recv_into(s, memoryview(head), deadline, device, timeout_s)
        if got < len(head):
            raise DeviceError(device.serial, f"screencap: {got} bytes is not a frame")
        w, h, fmt = _RAW_HEADER.unpack(head)
        if fmt != 1 or not 0 < w * h <= _MAX_RAW_PIXELS:
            raise DeviceError(device.serial, f"screencap: format {fmt}, {w}x{h} not supported")
        if rows is not None and extra is not None and 0 < rows < h:
            part = np.empty(extra + rows * w * 4, np.uint8)
            got = _recv_into(s, memoryview(part), deadline, device, timeout_s)
            if got < part.size:
                raise DeviceError(
                    device.serial, f"screencap: the stream ended after {got} of {part.size} bytes"
                )
            return part[extra:].reshape(rows, w, 4), extra
        size = w * h * 4
        # the rest: a 4-byte colour space (API 28+) or not, the pixels, and one byte more to
        # tell a longer stream from a whole frame
        buf = np.empty(4 + size + 1, np.uint8)
        rest = _recv_into(s, memoryview(buf), deadline, device, timeout_s)
    extra = rest - size
    if extra not in (0, 4):
        raise DeviceError(
            device.serial,
            f"screencap: format {fmt}, {rest + len(head)} bytes for {w}x{h} not supported",
        )
    return buf[extra : extra + size].reshape(h, w, 4), extra


def _recv_into(s, view: memoryview, deadline: float, device: Device, timeout_s: float) -> int:
    """Fill `view` from the stream until it is full or the stream ends; the bytes read."""
    from harness.errors import AdbError, AdbTimeoutError

    got = 0
    while got < len(view):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AdbTimeoutError("screencap", timeout_s, serial=device.serial)
        s.settimeout(remaining)
        try:
            n = s.recv_into(view[got:])
        except TimeoutError:
            raise AdbTimeoutError("screencap", timeout_s, serial=device.serial) from None
        except OSError as e:
            raise AdbError(
                "screencap", serial=device.serial, msg=f"`screencap`: connection lost: {e}"
            ) from None
        if not n:
            break
        got += n
    return got


def _rgba_to_bgr(rgba: np.ndarray) -> np.ndarray:
    """RGBA8888 pixels as a new contiguous BGR array (cv2's SIMD conversion: about a tenth of
    numpy's strided copy, 0.7 ms against 8 ms for 1280x800, the same bytes)."""
    import cv2

    return cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGR)


_PNG_PATH = "/data/local/tmp/hil-frame.png"


def grab_screencap_png(device: Device, timeout_s: float = SHELL_TIMEOUT_S) -> np.ndarray:
    """One frame as a PNG written on the device and pulled with sync: for old adbd, whose
    4 KiB packets make a raw frame slow and whose PTY mangles binary stdout."""
    import cv2

    device.shell(f"screencap -p {_PNG_PATH}", timeout_s=timeout_s, check=True)
    png = device.pull_bytes(_PNG_PATH, timeout_s)
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise DeviceError(device.serial, f"screencap -p {_PNG_PATH}: not a PNG ({len(png)} bytes)")
    return img


def _read(s, n: int, deadline: float, device: Device) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeviceError(
                device.serial, f"framebuffer: timed out after {len(buf)} of {n} bytes"
            )
        s.settimeout(remaining)
        chunk = s.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            raise DeviceError(
                device.serial, f"framebuffer: stream ended after {len(buf)} of {n} bytes"
            )
        buf += chunk
    return bytes(buf)


def polling_method(device: Device) -> str:
    """Raw screencap over exec: (API 21+); a PNG file and a sync pull on older adbd."""
    return "screencap-png" if device.api_level < 21 else "screencap"


class PollingSource:
    """Grabs frames back to back in a thread and hands each to `on_frame` (in that thread).

    Stops when on_frame returns True, when stop() is called, or after max_s (always bounded).
    """

    def __init__(
        self,
        device: Device,
        method: str | None = None,
        timeout_s: float = SHELL_TIMEOUT_S,
        rate_hz: float | None = None,
        rows: int | None = None,
    ):
        """Args: rate_hz: request frames on a schedule of this many per second (a late
        request goes at once and the schedule moves on: no burst to catch up); None: back to
        back, as fast as the device answers. rows: only the screen's first `rows` rows are
        looked at (raw screencap: after the first frame, read whole to learn its header, each
        frame reads those rows and closes the stream; its image holds only them)."""
        if rate_hz is not None and not rate_hz > 0:
            raise ValueError(f"PollingSource: rate_hz must be > 0, got {rate_hz!r}")
        if rows is not None and not rows > 0:
            raise ValueError(f"PollingSource: rows must be > 0, got {rows!r}")
        self.rate_hz = rate_hz
        self.rows = rows
        self._extra: int | None = None  # the raw header's extra bytes, from a whole frame
        self.device = device
        self.method = method or polling_method(device)
        self.grab: Callable[[Device, float], np.ndarray] = {
            "framebuffer": grab_framebuffer,
            "screencap": grab_screencap_raw,
            "screencap-png": grab_screencap_png,
        }[self.method]
        # raw screencap: the RGBA as read, each Frame converting what is looked at
        self.grab_rgba: Callable[[Device, float], np.ndarray] | None = (
            grab_screencap_rgba if self.method == "screencap" else None
        )
        self.timeout_s = timeout_s
        self.frames = 0
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, on_frame: Callable[[Frame], bool], max_s: float) -> None:
        """Capture in this thread until on_frame says stop, stop() or max_s."""
        deadline = time.monotonic() + max_s
        period_s = 1.0 / self.rate_hz if self.rate_hz else 0.0
        t_next = time.monotonic()
        while not self._stop.is_set() and time.monotonic() < deadline:
            if period_s:
                now = time.monotonic()
                if t_next > now and self._stop.wait(min(t_next, deadline) - now):
                    return
                if time.monotonic() >= deadline:
                    return
                t_next = max(t_next + period_s, time.monotonic())
            t_req = time.monotonic()
            try:
                if self.grab_rgba is not None and self.rows is not None:
                    rgba, self._extra = read_screencap(
                        self.device, self.timeout_s, rows=self.rows, extra=self._extra
                    )
                    frame = Frame(
                        None, self.frames, t_req, time.monotonic(), self.method, rgba=rgba
                    )
                elif self.grab_rgba is not None:  # converted when (and where) it is looked at
                    rgba = self.grab_rgba(self.device, self.timeout_s)
                    frame = Frame(
                        None, self.frames, t_req, time.monotonic(), self.method, rgba=rgba
                    )
                else:
                    image = self.grab(self.device, self.timeout_s)
                    frame = Frame(image, self.frames, t_req, time.monotonic(), self.method)
            except Exception as e:  # noqa: BLE001 -- reported to the caller; the loop ends
                self.error = e
                return
            self.frames += 1
            if on_frame(frame):
                return

    def start(self, on_frame: Callable[[Frame], bool], max_s: float) -> PollingSource:
        self._thread = threading.Thread(
            target=self.run, args=(on_frame, max_s), daemon=True, name="frame-poll"
        )
        self._thread.start()
        return self

    def stop(self, join_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(join_s)


CAMERA_OPEN_TIMEOUT_S = 5.0
CAMERA_READ_TIMEOUT_S = 3.0


class CameraSource:
    """A lab camera (IP camera URL, video file, or USB index) read with cv2.VideoCapture, each
    frame timed on arrival. Open and every read are bounded; a wrong URL or a stall is one
    clear error naming the URL."""

    def __init__(
        self,
        url: str | int,
        open_timeout_s: float = CAMERA_OPEN_TIMEOUT_S,
        read_timeout_s: float = CAMERA_READ_TIMEOUT_S,
    ):
        self.url = url
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.frames = 0
        self.error: Exception | None = None

    def run(self, on_frame: Callable[[Frame], bool], max_s: float) -> None:
        """Read until on_frame returns True or max_s; a failure is left in .error."""
        import cv2

        from harness.errors import MeasurementError

        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self.read_timeout_s * 1000),
        ]
        cap = (
            cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
            if isinstance(self.url, str)
            else cv2.VideoCapture(self.url)
        )
        try:
            if not cap.isOpened():
                self.error = MeasurementError(
                    f"lab camera {self.url}: cannot open the stream "
                    f"(wrong URL, or nothing answered within {self.open_timeout_s:g} s)"
                )
                return
            deadline = time.monotonic() + max_s
            while time.monotonic() < deadline:
                t_req = time.monotonic()
                ok, img = cap.read()
                if not ok or img is None:
                    self.error = MeasurementError(
                        f"lab camera {self.url}: no frame within {self.read_timeout_s:g} s "
                        f"(the stream stalled or ended after {self.frames} frames)"
                    )
                    return
                frame = Frame(img, self.frames, t_req, time.monotonic(), "camera")
                self.frames += 1
                if on_frame(frame):
                    return
        finally:
            cap.release()


class ScreenrecordSource:
    """`screenrecord --output-format=h264 -` over exec: (API 21+), decoded as it streams.

    Frames are timed on decode; the pipeline (device encoder, adb, decoder) delays them by an
    amount `harness.vision.calibration.calibrate_delay` measures against the Timecode app, so a frame's estimated shown
    time is arrival - delay, within the calibration's spread.
    """

    def __init__(
        self,
        device: Device,
        size: tuple[int, int] | None = None,
        bit_rate: int = 4_000_000,
        read_timeout_s: float = SHELL_TIMEOUT_S,
    ):
        self.device = device
        self.size = size
        self.bit_rate = bit_rate
        self.read_timeout_s = read_timeout_s
        self.frames = 0
        self.error: Exception | None = None

    def run(self, on_frame: Callable[[Frame], bool], max_s: float) -> None:
        import av

        if self.device.api_level < 21:
            self.error = DeviceError(
                self.device.serial, "screenrecord to stdout needs API 21+ (use polling or a camera)"
            )
            return
        limit = max(1, min(180, int(max_s + 1)))
        cmd = f"screenrecord --output-format=h264 --bit-rate {self.bit_rate} --time-limit {limit}"
        if self.size:
            cmd += f" --size {self.size[0]}x{self.size[1]}"
        codec = av.CodecContext.create("h264", "r")
        deadline = time.monotonic() + max_s
        try:
            with self.device.stream(f"exec:{cmd} -", self.read_timeout_s) as s:
                while time.monotonic() < deadline:
                    s.settimeout(self.read_timeout_s)
                    try:
                        chunk = s.recv(1 << 16)
                    except TimeoutError:
                        self.error = DeviceError(
                            self.device.serial,
                            f"screenrecord: no data for {self.read_timeout_s:g} s",
                        )
                        return
                    if not chunk:
                        return
                    for packet in codec.parse(chunk):
                        for vf in codec.decode(packet):
                            t = time.monotonic()
                            frame = Frame(
                                vf.to_ndarray(format="bgr24"), self.frames, t, t, "screenrecord"
                            )
                            self.frames += 1
                            if on_frame(frame):
                                return
        except Exception as e:  # noqa: BLE001 -- reported to the caller
            self.error = e
