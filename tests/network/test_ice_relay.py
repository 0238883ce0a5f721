"""WebRTC through the relay: the pinned UdpRelay and the SDP rewrite of harness.network.ice
(behaviour; a real session through it is tests/media/test_media_relay.py)."""

from __future__ import annotations

import socket
import time

import pytest

from harness.errors import NetworkShaperError
from harness.network.ice import IceRelay, rewrite_sdp, sdp_candidates
from harness.network.impairment import UdpRelay
from harness.network.profiles import parse_network_profile

CLEAN = parse_network_profile("clean", {"description": "d", "source": "s"})

# the shape aiortc gives an offer: BUNDLE, one host candidate per m-section, CRLF lines
OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "m=video 42976 UDP/TLS/RTP/SAVPF 97",
        "c=IN IP4 127.0.0.1",
        "a=mid:0",
        "a=candidate:abc 1 udp 2130706431 127.0.0.1 42976 typ host",
        "a=end-of-candidates",
        "m=application 46475 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 127.0.0.1",
        "a=mid:1",
        "a=candidate:abc 1 udp 2130706431 127.0.0.1 46475 typ host",
        "a=end-of-candidates",
        "",
    ]
)


def _eventually(cond, timeout_s: float = 2.0) -> bool:
    """The relay counts a packet just after sending it: a receiver can see it first."""
    deadline = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    return cond()


def _udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2.0)
    return s


def test_candidates_are_read_per_section_and_rewritten_with_the_m_line():
    assert sdp_candidates(OFFER) == [(0, ("127.0.0.1", 42976)), (1, ("127.0.0.1", 46475))]
    out = rewrite_sdp(OFFER, {("127.0.0.1", 42976): ("127.0.0.1", 5000)})
    assert sdp_candidates(out) == [(0, ("127.0.0.1", 5000)), (1, ("127.0.0.1", 46475))]
    assert "m=video 5000 UDP/TLS/RTP/SAVPF 97" in out and "m=application 46475" in out
    assert out.count("\r\n") == OFFER.count("\r\n")  # line endings kept


@pytest.mark.parametrize(
    "line",
    [
        "a=candidate:x 1 tcp 1 127.0.0.1 9 typ host tcptype active",
        "a=candidate:x 1 udp 1 203.0.113.7 4000 typ srflx raddr 127.0.0.1 rport 5",
    ],
)
def test_a_candidate_the_relay_cannot_carry_is_one_clear_error(line):
    with pytest.raises(NetworkShaperError, match="cannot relay"):
        sdp_candidates(
            OFFER.replace("a=candidate:abc 1 udp 2130706431 127.0.0.1 46475 typ host", line)
        )


def test_an_offer_without_candidates_is_refused_before_anything_starts():
    relay = IceRelay(CLEAN)
    with pytest.raises(NetworkShaperError, match="no candidate"):
        relay.rewrite_offer("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 97\r\n")
    assert relay.relays == {}


def test_pinned_relay_hands_out_its_upstream_address_before_any_traffic():
    offerer, answerer = _udp(), _udp()
    relay = UdpRelay(("127.0.0.1", 0), offerer.getsockname(), CLEAN, pinned=True)
    relay.start()
    try:
        assert relay.upstream_address is not None and relay.upstream_address != relay.address
        # the offerer speaks first, to the address it was told: nowhere to go yet, counted
        offerer.sendto(b"early", relay.upstream_address)
        assert _eventually(lambda: relay.counters().reverse.dropped_send == 1), relay.counters()
        relay.pin_client(answerer.getsockname())
        offerer.sendto(b"to-answerer", relay.upstream_address)
        data, src = answerer.recvfrom(100)
        assert data == b"to-answerer" and src == relay.address  # seen from where it was told
        answerer.sendto(b"to-offerer", relay.address)
        data, src = offerer.recvfrom(100)
        assert data == b"to-offerer" and src == relay.upstream_address
        stranger = _udp()
        stranger.sendto(b"intruder", relay.address)
        assert _eventually(lambda: relay.counters().refused_clients == 1), relay.counters()
        c = relay.counters()
        assert c.clients == 1 and c.forward.forwarded == 1
    finally:
        relay.stop()
        for s in (offerer, answerer):
            s.close()


def test_pin_client_needs_a_pinned_relay():
    relay = UdpRelay(("127.0.0.1", 0), ("127.0.0.1", 9), CLEAN)
    with pytest.raises(NetworkShaperError, match="pinned"):
        relay.pin_client(("127.0.0.1", 1))


def test_ice_relay_pairs_offer_and_bundled_answer_and_stops_cleanly():
    offerer = _udp()
    port = offerer.getsockname()[1]
    offer = OFFER.replace("42976", str(port))
    ice = IceRelay(CLEAN, seed=3)
    seen_offer = ice.rewrite_offer(offer)
    try:
        listen = ice.relays[("127.0.0.1", port)].address
        assert sdp_candidates(seen_offer)[0] == (0, listen)
        answerer = _udp()
        b = answerer.getsockname()
        answer = OFFER.replace("42976", str(b[1])).replace("46475", str(b[1]))  # bundled: one port
        seen_answer = ice.rewrite_answer(answer)
        upstream = ice.relays[("127.0.0.1", port)].upstream_address
        assert {a for _, a in sdp_candidates(seen_answer)} == {upstream}
        answerer.sendto(b"check", listen)
        data, src = offerer.recvfrom(100)
        assert (data, src) == (b"check", upstream)
        assert _eventually(lambda: ice.counters().forward.forwarded == 1), ice.counters()
    finally:
        ice.stop()
        ice.stop()  # twice: never raises
    assert ice.counters().forward.forwarded == 1  # counters survive the stop
