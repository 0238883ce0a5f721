"""The twin world's STF farm API (in process, no twins) and the harness's STF client against it:
STF API v1 shapes, bearer auth, leases, expiry, faults; the client never shows its token."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

import pytest

from harness.errors import ProfileError
from harness.farm.stf import (
    StfClient,
    StfError,
    matches,
    parse_filters,
    parse_shard,
    shard_of,
    take_shard,
)
from harness.profiles import load_profile, load_profiles
from harness.twin.stf import FarmDevice, StfFarm

TOKEN, OTHER = "tok-a", "tok-b"
STF_DEVICE_FIELDS = {
    "serial", "present", "ready", "using", "owner", "model", "manufacturer", "sdk", "version",
    "provider", "remoteConnect", "remoteConnectUrl", "platform", "display", "status", "abi",
}  # fmt: skip


@pytest.fixture
def farm(tmp_path):
    hdx, emu = load_profile("fire-hdx-7-2013"), load_profile("android-emulator-api34")
    devices = [FarmDevice("TWIN00001", 1, hdx), FarmDevice("TWIN00002", 2, hdx)]
    devices.append(FarmDevice("TWIN00003", 3, emu))
    f = StfFarm(devices, [TOKEN, OTHER], truth_path=tmp_path / "stf.jsonl")
    port = f.start()
    f.url = f"http://127.0.0.1:{port}"
    yield f
    f.stop()


def call(farm, method, path, token=TOKEN, body=None, auth=None):
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        farm.url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode()


def test_bearer_auth_missing_wrong_or_malformed_is_401(farm):
    assert call(farm, "GET", "/api/v1/devices", token=None) == (
        401,
        {"success": False, "description": "Requires Authentication"},
    )
    status, body = call(farm, "GET", "/api/v1/devices", token="nope")
    assert (status, body["description"]) == (401, "Bad Credentials")
    status, body = call(farm, "GET", "/api/v1/user", auth=f"Token {TOKEN}")
    assert status == 401 and "Bearer" in body["description"]


def test_devices_list_has_stf_fields_and_fields_filter(farm):
    status, body = call(farm, "GET", "/api/v1/devices")
    assert status == 200 and body["success"] is True
    devs = {d["serial"]: d for d in body["devices"]}
    assert set(devs) == {"TWIN00001", "TWIN00002", "TWIN00003"}
    hdx = devs["TWIN00001"]
    assert STF_DEVICE_FIELDS <= set(hdx)
    assert (hdx["model"], hdx["manufacturer"], hdx["sdk"], hdx["version"]) == (
        "KFTHWI",
        "Amazon",
        "17",
        "4.2.2",
    )
    assert hdx["present"] and hdx["ready"] and not hdx["using"] and hdx["owner"] is None
    assert hdx["provider"]["name"] == "twin-provider-1"
    status, body = call(farm, "GET", "/api/v1/devices?fields=serial,model")
    assert all(set(d) == {"serial", "model"} for d in body["devices"])
    status, body = call(farm, "GET", "/api/v1/devices/TWIN00003")
    assert status == 200 and body["device"]["sdk"] == "34"
    assert call(farm, "GET", "/api/v1/devices/NOPE")[0] == 404


def test_claim_is_exclusive_and_using_is_per_user(farm):
    assert call(farm, "GET", "/api/v1/user")[1]["user"]["email"] == "user1@twin-stf.local"
    status, body = call(
        farm, "POST", "/api/v1/user/devices", body={"serial": "TWIN00001", "timeout": 60000}
    )
    assert (status, body) == (200, {"success": True, "description": "Device successfully added"})
    # the other user: 403, sees an owner but `using` false (as STF normalizes per user)
    status, body = call(farm, "POST", "/api/v1/user/devices", OTHER, body={"serial": "TWIN00001"})
    assert (status, body["description"]) == (403, "Device is being used or not available")
    theirs = call(farm, "GET", "/api/v1/devices/TWIN00001", OTHER)[1]["device"]
    mine = call(farm, "GET", "/api/v1/devices/TWIN00001")[1]["device"]
    assert theirs["using"] is False and theirs["owner"]["email"] == "user1@twin-stf.local"
    assert mine["using"] is True
    assert [d["serial"] for d in call(farm, "GET", "/api/v1/user/devices")[1]["devices"]] == [
        "TWIN00001"
    ]
    assert call(farm, "GET", "/api/v1/user/devices", OTHER)[1]["devices"] == []
    assert call(farm, "GET", "/api/v1/user/devices/TWIN00001", OTHER)[0] == 403
    assert call(farm, "DELETE", "/api/v1/user/devices/TWIN00001", OTHER)[0] == 403
    assert call(farm, "POST", "/api/v1/user/devices/TWIN00001/remoteConnect", OTHER)[0] == 403
    assert call(farm, "POST", "/api/v1/user/devices", body={"serial": "NOPE"})[0] == 404
    assert call(farm, "POST", "/api/v1/user/devices", body={"timeout": 5})[0] == 400
    assert call(farm, "DELETE", "/api/v1/user/devices/TWIN00001")[0] == 200
    assert call(farm, "POST", "/api/v1/user/devices", OTHER, body={"serial": "TWIN00001"})[0] == 200


def test_remote_connect_opens_a_port_to_the_twin_and_release_closes_it(farm):
    with socket.socket() as twin:  # stands in for the twin's adb port
        twin.bind(("127.0.0.1", 0))
        twin.listen(1)
        farm.devices["TWIN00002"].twin_port = twin.getsockname()[1]
        call(farm, "POST", "/api/v1/user/devices", body={"serial": "TWIN00002"})
        status, body = call(farm, "POST", "/api/v1/user/devices/TWIN00002/remoteConnect")
        assert status == 200 and body["description"] == "Remote connection is enabled"
        host, port = body["remoteConnectUrl"].split(":")
        assert host == "127.0.0.1"
        dev = call(farm, "GET", "/api/v1/devices/TWIN00002")[1]["device"]
        assert dev["remoteConnect"] is True and dev["remoteConnectUrl"] == body["remoteConnectUrl"]
        with socket.create_connection((host, int(port)), timeout=5) as c:
            twin.settimeout(5)
            peer, _ = twin.accept()
            c.sendall(b"CNXN")
            peer.settimeout(5)
            assert peer.recv(4) == b"CNXN"  # bytes reach the twin's port
            assert call(farm, "DELETE", "/api/v1/user/devices/TWIN00002")[0] == 200
            c.settimeout(5)
            assert c.recv(4) == b""  # the lease ended: the farm closed the connection
            peer.close()
        with pytest.raises(OSError):
            socket.create_connection((host, int(port)), timeout=2).close()


def test_lease_expires_after_its_timeout(farm):
    call(farm, "POST", "/api/v1/user/devices", body={"serial": "TWIN00003", "timeout": 200})
    assert farm.expire() == []
    time.sleep(0.3)
    assert farm.expire() == ["TWIN00003"]
    assert call(farm, "GET", "/api/v1/devices/TWIN00003")[1]["device"]["owner"] is None
    assert [e["why"] for e in farm.events if e["event"] == "release"] == ["expired"]


def test_faults_leave_return_api_down_and_slow(farm):
    call(farm, "POST", "/api/v1/user/devices", body={"serial": "TWIN00001"})
    assert (
        call(farm, "POST", "/_twin/faults", body={"op": "leave", "serial": "TWIN00001"})[0] == 200
    )
    dev = call(farm, "GET", "/api/v1/devices/TWIN00001")[1]["device"]
    assert (dev["present"], dev["owner"]) == (False, None)
    assert call(farm, "POST", "/api/v1/user/devices", body={"serial": "TWIN00001"})[0] == 403
    call(farm, "POST", "/_twin/faults", body={"op": "return", "serial": "TWIN00001"})
    assert call(farm, "POST", "/api/v1/user/devices", body={"serial": "TWIN00001"})[0] == 200
    assert call(farm, "POST", "/_twin/faults", body={"op": "melt"})[0] == 400
    client = StfClient(farm.url, TOKEN, timeout_s=0.5)
    call(farm, "POST", "/_twin/faults", body={"op": "api_down", "seconds": 30})
    with pytest.raises(StfError, match="502"):
        client.devices()
    assert client.retries == {"stf GET /api/v1/devices": 2}  # bounded and counted
    call(farm, "POST", "/_twin/faults", body={"op": "api_down", "seconds": 0})
    call(farm, "POST", "/_twin/faults", body={"op": "api_slow", "seconds": 1.0})
    with pytest.raises(StfError, match="no answer"):
        client.user()
    call(farm, "POST", "/_twin/faults", body={"op": "api_slow", "seconds": 0})
    assert client.user()["name"] == "user1"


def test_client_never_shows_its_token(farm):
    secret = "s3cr3t-token-value"
    client = StfClient(farm.url, secret)
    assert secret not in repr(client)
    with pytest.raises(StfError) as e:
        client.devices()
    assert e.value.status == 401 and secret not in str(e.value)
    assert "STF_TOKEN" in str(e.value)
    with pytest.raises(ProfileError, match="--stf-token"):
        StfClient(farm.url, "")
    with pytest.raises(ProfileError, match="--stf"):
        StfClient("farm.example:7100", TOKEN)


def test_client_claim_and_release_round_trip(farm):
    a, b = StfClient(farm.url, TOKEN), StfClient(farm.url, OTHER)
    assert a.claim("TWIN00002", 5000) is True
    assert b.claim("TWIN00002", 5000) is False
    with pytest.raises(StfError, match="403"):
        b.release("TWIN00002")
    a.release("TWIN00002")
    assert b.claim("TWIN00002", 5000) is True


def test_filters_and_shards():
    assert parse_filters(["model=KFTHWI", "sdk=17"]) == {"model": "KFTHWI", "sdk": "17"}
    for bad in ("colour=red", "model", "model="):
        with pytest.raises(ProfileError, match="--stf-filter"):
            parse_filters([bad])
    profiles = load_profiles()
    hdx = {"model": "KFTHWI", "manufacturer": "Amazon", "sdk": "17", "version": "4.2.2"}
    emu = {"model": "sdk_gphone64_x86_64", "manufacturer": "Google", "sdk": "34"}
    assert matches(hdx, {"profile": "fire-hdx-7-2013"}, profiles)
    assert not matches(emu, {"profile": "fire-hdx-7-2013"}, profiles)
    assert matches(emu, {"sdk": "34"}) and not matches(hdx, {"sdk": "34"})
    with pytest.raises(ProfileError, match="unknown profile"):
        matches(hdx, {"profile": "nokia-3310"}, profiles)
    assert parse_shard("2/3") == (2, 3) and parse_shard(None) is None
    for bad in ("0/2", "3/2", "1", "a/b"):
        with pytest.raises(ProfileError, match="--shard"):
            parse_shard(bad)
    items = [f"TWIN{i:05d}" for i in range(7)]
    parts = [take_shard(items, (i, 3)) for i in (1, 2, 3)]
    assert sorted(sum(parts, [])) == items and sum(map(len, parts)) == 7  # disjoint, complete
    assert parts == [take_shard(items, (i, 3)) for i in (1, 2, 3)]  # deterministic
    ids = [f"suite.py::test_{i}" for i in range(40)]
    shards = {i: [t for t in ids if shard_of(t, 2) == i] for i in (1, 2)}
    assert sorted(shards[1] + shards[2]) == sorted(ids) and shards[1] and shards[2]
    assert shard_of("suite.py::test_3", 2) == shard_of("suite.py::test_3", 2)


def test_farm_cli_bad_input_is_one_error(capsys):
    from harness.cli import main

    assert main(["farm", "stf", "--twins", "nokia-3310", "--token", "t"]) == 2
    assert "unknown profile 'nokia-3310'" in capsys.readouterr().err
    assert main(["farm", "stf", "--twins", "fire-hdx-7-2013x0", "--token", "t"]) == 2
    assert "--twins: fire-hdx-7-2013x0: expected PROFILE or PROFILExN" in capsys.readouterr().err
    assert main(["farm", "stf", "--twins", "fire-hdx-7-2013", "--token", ""]) == 2
    assert "--token" in capsys.readouterr().err


def test_empty_bearer_token_is_bad_credentials(farm):
    status, body = call(farm, "GET", "/api/v1/user", auth="Bearer ")
    assert (status, body["description"]) == (401, "Bad Credentials")
