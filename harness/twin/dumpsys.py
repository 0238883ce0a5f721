"""`dumpsys <service>` in the shapes of the profile's API level.

Formats follow shared/reference/adb-wire-facts.md section 6 and AOSP's dump methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.twin import packages
from harness.twin.proc import Proc

if TYPE_CHECKING:
    from harness.twin.device import Twin


async def dumpsys(p: Proc) -> int:
    args = p.argv[1:]
    if not args:
        await p.print(
            "Currently running services:\n  account\n  audio\n  battery\n  display\n  media.camera\n  power\n  wifi\n  window"
        )
        return 0
    service = args[0]
    func = _SERVICES.get(service)
    if func is None:
        await p.print(f"Can't find service: {service}")
        return 0
    await p.out.write(func(p.twin, args[1:]).encode())
    return 0


def _power(twin: Twin, args: list[str]) -> str:
    on = twin.screen.screen_on
    state = "ON" if on else "OFF"
    return (
        "POWER MANAGER (dumpsys power)\n\nPower Manager State:\n"
        f"  mWakefulness={'Awake' if on else 'Asleep'}\n"
        f"  mIsPowered=true\n  mPlugType=2\n"
        f"  mDisplayReady=true\n  mHoldingWakeLockSuspendBlocker=false\n"
        f"  mHoldingDisplaySuspendBlocker={'true' if on else 'false'}\n\n"
        f"Display Power: state={state}\n"
    )


def _window(twin: Twin, args: list[str]) -> str:
    d = twin.profile.display
    sc = twin.screen
    activity = f"{sc.focus_package}/.{'Launcher' if sc.state == 'home' else 'MainActivity'}"
    if args[:1] == ["displays"]:
        return (
            "WINDOW MANAGER DISPLAY CONTENTS (dumpsys window displays)\n"
            f"  Display: mDisplayId=0\n    init={d.width}x{d.height} {d.density}dpi cur={d.width}x{d.height} "
            f"app={d.width}x{d.height - sc.status_h} rng={d.height}x{d.height}-{d.width}x{d.width}\n"
        )
    return (
        "WINDOW MANAGER WINDOWS (dumpsys window windows)\n"
        f"  Window #0 Window{{41e0b6b8 u0 {activity}}}:\n"
        f"    mDisplayId=0 mSession=Session{{41c9f0b0 uid 10011}} mClient=android.os.BinderProxy@41e0b4a0\n"
        f"    mOwnerUid=10011 mShowToOwnerOnly=true package={sc.focus_package} appop=NONE\n"
        f"    mAttrs=WM.LayoutParams{{(0,0)(fillxfill) ty=BASE_APPLICATION fl=#{0x81810100 | (0x2000 if sc.secure_showing() else 0):x} fmt=-1}}\n\n"
        f"  mCurrentFocus=Window{{41e0b6b8 u0 {activity}}}\n"
        f"  mFocusedApp=AppWindowToken{{41d7e2f0 token=Token{{41d2c860 ActivityRecord{{41d2c6b0 u0 {activity}}}}}}}\n"
    )


def _battery(twin: Twin, args: list[str]) -> str:
    return (
        "Current Battery Service state:\n  AC powered: false\n  USB powered: true\n  Wireless powered: false\n"
        "  status: 2\n  health: 2\n  present: true\n  level: 87\n  scale: 100\n  voltage: 4123\n"
        "  temperature: 285\n  technology: Li-ion\n"
    )


def _wifi(twin: Twin, args: list[str]) -> str:
    w = twin.wifi
    if not w.enabled:
        return (
            "Wi-Fi is disabled\nStay-awake conditions: 0\n\nInternal state:\n"
            "current SM state: InitialState\n"
            "mWifiInfo SSID: <unknown ssid>, BSSID: <none>, MAC: 02:00:00:00:00:00, Supplicant state: UNINITIALIZED, "
            "RSSI: -127, Link speed: -1, Frequency: -1, Net ID: -1, Metered hint: false\n"
        )
    ssid = f'"{w.ssid}"' if twin.personality.api >= 17 else w.ssid
    if twin.personality.api >= 30:
        speed = f"Link speed: {w.link_speed_mbps}Mbps, Tx Link speed: {w.link_speed_mbps}Mbps, Rx Link speed: {w.link_speed_mbps}Mbps"
        freq = f", Frequency: {w.frequency_mhz}MHz"
    elif twin.personality.api >= 21:
        speed, freq = f"Link speed: {w.link_speed_mbps}Mbps", f", Frequency: {w.frequency_mhz}MHz"
    else:
        speed, freq = f"Link speed: {w.link_speed_mbps}", ""
    return (
        "Wi-Fi is enabled\nStay-awake conditions: 0\n\nInternal state:\n"
        "current SM state: ConnectedState\n"
        f"mWifiInfo SSID: {ssid}, BSSID: {w.bssid}, MAC: 02:00:00:44:55:66, Supplicant state: COMPLETED, "
        f"RSSI: {w.rssi_dbm}, {speed}{freq}, Net ID: 0, Metered hint: false, score: 60\n"
    )


def _account(twin: Twin, args: list[str]) -> str:
    lines = ["User UserInfo{0:Owner:13}:", f"  Accounts: {len(twin.accounts)}"]
    lines += [f"    Account {{name={name}, type={kind}}}" for name, kind in twin.accounts]
    lines += ["", "  Active Sessions: 0"]
    return "\n".join(lines) + "\n"


def _camera(twin: Twin, args: list[str]) -> str:
    hw = twin.profile.hardware
    cams = ([("BACK", 0)] if hw.back_camera else []) + ([("FRONT", 1)] if hw.front_camera else [])
    api = twin.personality.api
    open_ids = {cid for cid, _ in twin.camera_clients}
    if api < 24:
        out = [
            "Camera module HAL API version: 0x1",
            "Camera module API version: 0x200",
            "Camera module name: QCamera Module",
            "Camera module author: Qualcomm Innovation Center Inc",
            f"Number of camera devices: {len(cams)}",
        ]
        for cid, (facing, _) in enumerate(cams):
            out += [f"Camera {cid} static information:", f"  Facing: {facing}", "  Orientation: 90"]
            out.append(
                "  Device is open. Client instance dump:"
                if cid in open_ids
                else "  Device is closed, no client instance"
            )
        if not twin.camera_clients:
            out.append("No active camera clients yet.")
        return "\n".join(out) + "\n"
    out = [
        "== Service global info: ==",
        "",
        f"Number of camera devices: {len(cams)}",
        f"Number of normal camera devices: {len(cams)}",
    ]
    for cid, (facing, _) in enumerate(cams):
        out += [
            f'    Device {cid} maps to "{cid}"',
            f"Camera {cid} information:",
            f"  Facing: {facing}",
        ]
    out += ["Active Camera Clients:"]
    if twin.camera_clients:  # AOSP really prints "State: 2User Id" with no separator
        out.append("[")
        out += [
            f"(Camera ID: {cid}, Cost: 100, PID: 4321, Score: 0, State: 2User Id: 0, Client Package Name: {pkg}, "
            "Conflicting Client Devices: {})"
            for cid, pkg in twin.camera_clients
        ]
        out.append("]")
    else:
        out.append("[]")
    return "\n".join(out) + "\n"


def _audio(twin: Twin, args: list[str]) -> str:
    out = [
        "Audio event log: ",
        "",
        "Stream volumes (device: index)",
        "- STREAM_VOICE_CALL:",
        "   Muted: false",
        "",
    ]
    if twin.personality.has_audio_recording_dump:
        out.append("\nAudio recording:")
        out.append("  RecordActivityMonitor dump time: 10:00:00.000")
        for idx, (source, pkg) in enumerate(twin.recording_clients):
            out.append(
                f"  session:{1000 + idx} -- source client={source} -- uid:10123 pid:4321 -- pack:{pkg} -- silenced:false"
            )
    return "\n".join(out) + "\n"


def _display(twin: Twin, args: list[str]) -> str:
    d = twin.profile.display
    return (
        "DISPLAY MANAGER (dumpsys display)\n"
        f"  mDefaultViewport=DisplayViewport{{valid=true, displayId=0, orientation=0, "
        f"logicalFrame=Rect(0, 0 - {d.width}, {d.height}), physicalFrame=Rect(0, 0 - {d.width}, {d.height}), "
        f"deviceWidth={d.width}, deviceHeight={d.height}}}\n"
        "Display Devices: size=1\n"
        f'  DisplayDeviceInfo{{"Built-in Screen": {d.width} x {d.height}, 60.0 fps, density {d.density}, '
        f"{float(d.density)} x {float(d.density)} dpi, touch INTERNAL, rotation 0, type BUILT_IN}}\n"
        f"    mCurrentOrientation=0\n"
    )


def _surfaceflinger(twin: Twin, args: list[str]) -> str:
    if args[:1] == ["--display-id"]:
        return 'Display 4619827259835644672 (HWC display 0): port=0 pnpId=GGL displayName="EMU_display_0"\n'
    d = twin.profile.display
    return f"Display[0] : {d.width}x{d.height}, xdpi={d.density}.000, ydpi={d.density}.000, refresh=16666667\n"


_SERVICES = {
    "power": _power,
    "window": _window,
    "battery": _battery,
    "wifi": _wifi,
    "account": _account,
    "media.camera": _camera,
    "audio": _audio,
    "display": _display,
    "SurfaceFlinger": _surfaceflinger,
    "package": lambda twin, args: packages.dumpsys_package(twin, args),
    "activity": lambda twin, args: packages.dumpsys_activity(twin, args),
}
