"""`dumpsys audio`: who is recording now (API 24+); unknown on older releases.

The recording section starts with `RecordActivityMonitor dump time: <time>`, then:

- API 24-28: one line per active recording,
  `  session:<n> -- source:MIC -- uid:<u> -- patch:<p> -- pack:<pkg> -- format client=...`
  (API 29 spells the source `source client=MIC, dev=...` and adds `-- silenced:false`).
- API 30+: per recorder `riid <n>; active? true|false` followed by
  `  session:<n> -- source client=MIC, dev=... -- uid:<u> -- patch:<p> -- pack:<pkg>
  -- format client=..., dev=... -- silenced:false -- effects client=..., dev=...`
  or `  no config`; only `active? true` recorders are recording.

The section ends at the first other line (the `Audio event log:` / `Events log:` history that
follows it lists past recordings and is ignored). API 17/19 (AudioService of 4.2/4.4: focus
stack, remote control stack, stream volumes, audio routes) has no recording section at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.device.parsers.text import ShellOutputError, check_shell_failure, lines_of

COMMAND = "dumpsys audio"
_MONITOR = "RecordActivityMonitor dump time:"
_AUDIO_SERVICE_MARKERS = (
    _MONITOR,
    "Stream volumes (device: index)",
    "Audio Focus stack entries",
    "Audio routes:",
)
_RIID = re.compile(r"^riid (-?\d+); active\? (true|false)$")
_SESSION = re.compile(r"^session:(-?\d+)\s")
_SOURCE = re.compile(r" -- source(?: client=|:)(.+?)(?=, dev=| -- |$)")
_UID = re.compile(r" -- uid:(-?\d+)")
_PACK = re.compile(r" -- pack:(\S*)")
_SILENCED = re.compile(r" -- silenced:(true|false)")


@dataclass(frozen=True)
class AudioRecording:
    """One active recording.

    Attributes:
        source: the client's audio source as AOSP names it (MIC, CAMCORDER,
            VOICE_COMMUNICATION, VOICE_RECOGNITION, ...).
        package: the recording app; None when the dump says null.
        silenced: True when the system silences it (privacy, concurrency), None before API 29.
        session: the audio session id.
        uid: the client's uid.
    """

    source: str
    package: str | None
    silenced: bool | None = None
    session: int | None = None
    uid: int | None = None


def parse_dumpsys_audio(text: str | bytes) -> tuple[AudioRecording, ...] | None:
    """Parse the active recordings out of `dumpsys audio`.

    Returns:
        The active recordings (empty tuple: nobody records), or None when this release has
        no recording section (API < 24): unknown, not "no recording".

    Raises:
        ShellOutputError: not AudioService's dump, or a recording line without a source.
    """
    check_shell_failure(COMMAND, text)
    lines = lines_of(text)
    if not any(marker in line for line in lines for marker in _AUDIO_SERVICE_MARKERS):
        raise ShellOutputError(COMMAND, "no AudioService section (stream volumes, focus...)", text)
    start = next((i for i, line in enumerate(lines) if line.strip().startswith(_MONITOR)), None)
    if start is None:
        return None
    recordings = []
    active = True  # before API 30 only active recordings are listed, no `riid`
    for line in lines[start + 1 :]:
        s = line.strip()
        if not s or s == "no config":
            continue
        m = _RIID.match(s)
        if m:
            active = m.group(2) == "true"
            continue
        if not _SESSION.match(s):
            break
        if active:
            recordings.append(_recording(s, text))
    return tuple(recordings)


def _recording(line: str, text: str | bytes) -> AudioRecording:
    source = _SOURCE.search(line)
    if source is None:
        raise ShellOutputError(COMMAND, f"recording line without a source: {line[:60]!r}", text)
    pack = _PACK.search(line)
    package = pack.group(1) if pack else None
    silenced = _SILENCED.search(line)
    uid = _UID.search(line)
    return AudioRecording(
        source=source.group(1).strip(),
        package=None if package in (None, "", "null") else package,
        silenced=None if silenced is None else silenced.group(1) == "true",
        session=int(_SESSION.match(line).group(1)),
        uid=int(uid.group(1)) if uid else None,
    )
