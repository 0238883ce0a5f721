"""APKs: a maker for tests (a zip with a real binary AndroidManifest.xml) and the parser the
twin's package manager installs with, refusing bad ones with Android's failure codes.

Binary XML layout after AOSP libs/androidfw ResourceTypes.h (ResChunk_header, ResStringPool,
ResXMLTree_node/attrExt/attribute, Res_value). Signatures are checked for presence (a v1
META-INF/*.SF + *.RSA/DSA/EC pair), not verified cryptographically.
"""

from __future__ import annotations

import io
import struct
import time
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.twin.fs import FsError

if TYPE_CHECKING:
    from harness.twin.proc import Proc

RES_STRING_POOL_TYPE = 0x0001
RES_XML_TYPE = 0x0003
RES_XML_START_NAMESPACE_TYPE = 0x0100
RES_XML_END_NAMESPACE_TYPE = 0x0101
RES_XML_START_ELEMENT_TYPE = 0x0102
RES_XML_END_ELEMENT_TYPE = 0x0103
RES_XML_RESOURCE_MAP_TYPE = 0x0180
TYPE_STRING = 0x03
TYPE_INT_DEC = 0x10
UTF8_FLAG = 1 << 8
ANDROID_NS = "http://schemas.android.com/apk/res/android"
ATTR_IDS = {"versionCode": 0x0101021B, "versionName": 0x0101021C}
_NO_INDEX = 0xFFFFFFFF
MAX_APK_BYTES = 512 << 20


class ApkError(Exception):
    """An APK the package manager refuses: code (INSTALL_...) and detail."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Manifest:
    package: str
    version_code: int
    version_name: str | None
    permissions: tuple[str, ...] = ()


# --- writing -------------------------------------------------------------------------------
def _string_pool(strings: list[str]) -> bytes:
    offsets, data = [], bytearray()
    for s in strings:
        offsets.append(len(data))
        raw = s.encode("utf-16-le")
        data += struct.pack("<H", len(s)) + raw + b"\0\0"
    while len(data) % 4:
        data += b"\0"
    header_size = 28
    strings_start = header_size + 4 * len(strings)
    size = strings_start + len(data)
    return (
        struct.pack(
            "<HHIIIIII",
            RES_STRING_POOL_TYPE,
            header_size,
            size,
            len(strings),
            0,
            0,
            strings_start,
            0,
        )
        + b"".join(struct.pack("<I", o) for o in offsets)
        + bytes(data)
    )


def manifest_xml(
    package: str, version_code: int, version_name: str | None, permissions: tuple[str, ...] = ()
) -> bytes:
    """A binary AndroidManifest.xml: <manifest package versionCode versionName> with
    <uses-permission android:name> children."""
    # attribute names with resource ids come first, in the order of the resource map
    strings = ["versionCode", "versionName", "name", "android", ANDROID_NS, "package", "manifest"]
    strings += ["uses-permission"]
    idx = {s: i for i, s in enumerate(strings)}

    def add(s: str) -> int:
        if s not in idx:
            idx[s] = len(strings)
            strings.append(s)
        return idx[s]

    pkg_i = add(package)
    vn_i = add(version_name) if version_name is not None else None
    perm_i = [add(p) for p in permissions]
    res_map = struct.pack("<HHI", RES_XML_RESOURCE_MAP_TYPE, 8, 8 + 12) + struct.pack(
        "<III", ATTR_IDS["versionCode"], ATTR_IDS["versionName"], 0x01010003
    )

    def node(kind: int, body: bytes) -> bytes:
        return struct.pack("<HHIII", kind, 16, 16 + len(body), 1, _NO_INDEX) + body

    def attr(ns: int, name: int, raw: int, dtype: int, data: int) -> bytes:
        return struct.pack("<IIIHBBI", ns, name, raw, 8, 0, dtype, data)

    def start(name: int, attrs: list[bytes]) -> bytes:
        ext = struct.pack("<IIHHHHHH", _NO_INDEX, name, 20, 20, len(attrs), 0, 0, 0)
        return node(RES_XML_START_ELEMENT_TYPE, ext + b"".join(attrs))

    def end(name: int) -> bytes:
        return node(RES_XML_END_ELEMENT_TYPE, struct.pack("<II", _NO_INDEX, name))

    ns = idx[ANDROID_NS]
    attrs = [attr(ns, idx["versionCode"], _NO_INDEX, TYPE_INT_DEC, version_code & 0xFFFFFFFF)]
    if vn_i is not None:
        attrs.append(attr(ns, idx["versionName"], vn_i, TYPE_STRING, vn_i))
    attrs.append(attr(_NO_INDEX, idx["package"], pkg_i, TYPE_STRING, pkg_i))
    body = node(RES_XML_START_NAMESPACE_TYPE, struct.pack("<II", idx["android"], ns))
    body += start(idx["manifest"], attrs)
    for pi in perm_i:
        body += start(idx["uses-permission"], [attr(ns, idx["name"], pi, TYPE_STRING, pi)])
        body += end(idx["uses-permission"])
    body += end(idx["manifest"])
    body += node(RES_XML_END_NAMESPACE_TYPE, struct.pack("<II", idx["android"], ns))
    pool = _string_pool(strings)
    content = pool + res_map + body
    return struct.pack("<HHI", RES_XML_TYPE, 8, 8 + len(content)) + content


def make_apk(
    package: str,
    version_code: int = 1,
    version_name: str | None = "1.0",
    permissions: tuple[str, ...] = (),
    signed: bool = True,
    manifest: bool = True,
) -> bytes:
    """An APK for tests: a zip with a binary manifest, classes.dex and (signed) v1 signature files.

    Args:
        package: the manifest's package name.
        version_code: android:versionCode.
        version_name: android:versionName (None: absent).
        permissions: uses-permission names.
        signed: add META-INF/MANIFEST.MF, CERT.SF, CERT.RSA (presence only; not a real signature).
        manifest: False leaves AndroidManifest.xml out (a broken APK).
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        if manifest:
            z.writestr(
                "AndroidManifest.xml",
                manifest_xml(package, version_code, version_name, permissions),
            )
        z.writestr("classes.dex", b"dex\n035\0" + bytes(104))
        if signed:
            z.writestr(
                "META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: mayday-hil\r\n"
            )
            z.writestr("META-INF/CERT.SF", "Signature-Version: 1.0\r\nCreated-By: mayday-hil\r\n")
            z.writestr("META-INF/CERT.RSA", b"\x30\x82\x01\x00" + bytes(256))
    return buf.getvalue()


# --- reading -------------------------------------------------------------------------------
def _read_pool(data: bytes, off: int) -> list[str]:
    _t, hsize, _size, count, _styles, flags, start, _ss = struct.unpack_from("<HHIIIIII", data, off)
    offsets = struct.unpack_from(f"<{count}I", data, off + hsize)
    base = off + start
    out = []
    for o in offsets:
        p = base + o
        if flags & UTF8_FLAG:
            n = data[p]
            p += 2 if n & 0x80 else 1  # utf-16 length (skipped)
            n = data[p]
            if n & 0x80:
                n = ((n & 0x7F) << 8) | data[p + 1]
                p += 1
            p += 1
            out.append(data[p : p + n].decode("utf-8", "replace"))
        else:
            (n,) = struct.unpack_from("<H", data, p)
            p += 2
            if n & 0x8000:
                (lo,) = struct.unpack_from("<H", data, p)
                n = ((n & 0x7FFF) << 16) | lo
                p += 2
            out.append(data[p : p + 2 * n].decode("utf-16-le", "replace"))
    return out


def parse_manifest(xml: bytes) -> Manifest:  # noqa: C901 -- binary AXML: one branch per chunk type
    """package, versionCode, versionName and permissions of a binary AndroidManifest.xml.

    Raises:
        ApkError: INSTALL_PARSE_FAILED_BAD_MANIFEST (or _NOT_APK for text XML).
    """
    try:
        kind, hsize, size = struct.unpack_from("<HHI", xml, 0)
    except struct.error:
        raise ApkError("INSTALL_PARSE_FAILED_NOT_APK", "AndroidManifest.xml is empty") from None
    if kind != RES_XML_TYPE:
        raise ApkError("INSTALL_PARSE_FAILED_BAD_MANIFEST", "AndroidManifest.xml is not binary XML")
    strings: list[str] = []
    package = None
    code = None
    name = None
    perms: list[str] = []
    off = hsize
    try:
        while off + 8 <= min(size, len(xml)):
            ctype, chsize, csize = struct.unpack_from("<HHI", xml, off)
            if csize < 8:
                break
            if ctype == RES_STRING_POOL_TYPE:
                strings = _read_pool(xml, off)
            elif ctype == RES_XML_START_ELEMENT_TYPE:
                _ns, ename, astart, asize, count = struct.unpack_from("<IIHHH", xml, off + chsize)
                tag = strings[ename]
                for i in range(count):
                    a = off + chsize + astart + i * asize
                    _ans, aname, raw, _s, _r, dtype, adata = struct.unpack_from("<IIIHBBI", xml, a)
                    key = strings[aname]
                    value = strings[raw] if raw != _NO_INDEX else None
                    if dtype == TYPE_STRING and value is None:
                        value = strings[adata]
                    if tag == "manifest" and key == "package":
                        package = value
                    elif tag == "manifest" and key == "versionCode":
                        code = adata if dtype != TYPE_STRING else int(value or 0)
                    elif tag == "manifest" and key == "versionName":
                        name = value if value is not None else str(adata)
                    elif tag == "uses-permission" and key == "name" and value:
                        perms.append(value)
            off += csize
    except (struct.error, IndexError, ValueError) as e:
        raise ApkError("INSTALL_PARSE_FAILED_BAD_MANIFEST", f"corrupt binary XML: {e}") from None
    if not package:
        raise ApkError("INSTALL_PARSE_FAILED_BAD_MANIFEST", "<manifest> has no package")
    return Manifest(package, code or 0, name, tuple(perms))


def parse_apk(data: bytes) -> Manifest:
    """Check an APK as PackageParser does: a zip, a binary manifest, v1 signature files.

    Raises:
        ApkError: with INSTALL_PARSE_FAILED_NOT_APK, _BAD_MANIFEST or _NO_CERTIFICATES.
    """
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        names = set(z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ApkError("INSTALL_PARSE_FAILED_NOT_APK", "Failed to load asset path") from None
    with z:
        if "AndroidManifest.xml" not in names:
            raise ApkError("INSTALL_PARSE_FAILED_BAD_MANIFEST", "No AndroidManifest.xml")
        manifest = parse_manifest(z.read("AndroidManifest.xml"))
        sig = any(n.startswith("META-INF/") and n.endswith(".SF") for n in names)
        block = any(
            n.startswith("META-INF/") and n.rsplit(".", 1)[-1] in ("RSA", "DSA", "EC")
            for n in names
        )
        if not (sig and block):
            raise ApkError(
                "INSTALL_PARSE_FAILED_NO_CERTIFICATES",
                "No signature found in package of version 2 or newer for package "
                + manifest.package,
            )
    return manifest


# --- installing ----------------------------------------------------------------------------
def failure_line(api: int, err: ApkError, tmp_path: str) -> str:
    """`Failure [...]` as pm prints it on the API level (a detail from Android 7 on; the
    detail texts follow PackageParser's messages, not verified against each release)."""
    if err.code == "INSTALL_PARSE_FAILED_NOT_APK" and api >= 24:
        return f"Failure [{err.code}: Failed to parse {tmp_path}: {err.detail} {tmp_path}]"
    if api >= 24:
        return f"Failure [{err.code}: Failed to parse {tmp_path}: {err.detail}]"
    return f"Failure [{err.code}]"


def install_bytes(twin, data: bytes, replace: bool = True, downgrade: bool = False) -> str:
    """Install an APK's bytes; returns pm's last line ("Success" or "Failure [...]")."""
    from harness.twin.packages import package_info

    api = twin.personality.api
    session = twin.alloc_pid()
    tmp = (
        f"/data/app/vmdl{session}.tmp/base.apk"
        if api >= 21
        else f"/data/local/tmp/vmdl{session}.tmp"
    )
    try:
        manifest = parse_apk(data)
    except ApkError as e:
        twin.log_event("PackageManager", f"Failed parse during installPackageLI: {e}", level="W")
        return failure_line(api, e, tmp)
    old = package_info(twin, manifest.package)
    if old is not None:
        if not replace and api < 28:
            return "Failure [INSTALL_FAILED_ALREADY_EXISTS]"
        if manifest.version_code < old.version_code and not downgrade:
            detail = (
                f": Downgrade detected: Update version code {manifest.version_code}"
                f" is older than current {old.version_code}"
            )
            return f"Failure [INSTALL_FAILED_VERSION_DOWNGRADE{detail if api >= 24 else ''}]"
    path = (
        f"/data/app/~~{session:x}==/{manifest.package}-1/base.apk"
        if api >= 30
        else (
            f"/data/app/{manifest.package}-1/base.apk"
            if api >= 21
            else f"/data/app/{manifest.package}-1.apk"
        )
    )
    twin.packages[manifest.package] = path
    info = package_info(twin, manifest.package)
    info.version_code = manifest.version_code
    info.version_name = manifest.version_name if manifest.version_name is not None else "null"
    info.requested = manifest.permissions
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    info.last_update = now
    if old is None:
        info.first_install = now
    twin.truth.record(
        "package_installed", package=manifest.package, version_code=manifest.version_code
    )
    twin.log_event(
        "PackageManager",
        f"installPackageLI: {manifest.package} versionCode={manifest.version_code}",
    )
    return "Success"


async def install_from_path(p: Proc, args: list[str]) -> int:
    """`pm install [-r] [-t] [-d] [-g] PATH` (a file on the device) or `-S SIZE` (stdin)."""
    twin = p.twin
    api = twin.personality.api
    flags = [a for a in args if a.startswith("-")]
    if "-S" in args:
        size = int(args[args.index("-S") + 1])
        data = (await p.stdin.read_all())[:size]
        if len(data) < size:
            await p.print("Failure [INSTALL_FAILED_INVALID_APK: short read]")
            return 1
    else:
        paths = [a for a in args if not a.startswith("-")]
        if not paths:
            await p.eprint(
                "Error: no package specified" if api < 24 else "Error: APK content must be streamed"
            )
            return 1
        path = twin.fs.norm(paths[-1], p.shell.cwd)
        if api < 21:
            await p.print(f"\tpkg: {path}")
        try:
            data = twin.fs.read(path)
        except FsError:
            if api >= 24:
                await p.eprint(f"Error: Unable to open file: {paths[-1]}")
                await p.eprint("Consider using a file under /data/local/tmp/")
                await p.print("Error: Can't open file: " + paths[-1])
                return 1
            await p.print("Failure [INSTALL_FAILED_INVALID_URI]")
            return 1
    line = install_bytes(twin, data, replace="-r" in flags or api >= 28, downgrade="-d" in flags)
    await p.print(line)
    return 0 if line == "Success" else 1
