"""WebRTC media through the impairment relay: the answerer's side of an offer/answer rewrite.

ICE sends media straight between the candidates both peers put in their SDP, so a relay that
waits at a HOST:PORT sees nothing unless both peers are told the relay's addresses instead of
each other's. IceRelay does that for one offer/answer exchange (no trickle: aiortc puts every
candidate in the SDP):

    offerer candidate T  --offer rewritten-->  the answerer sees L (the relay's listen address)
    answerer candidate B --answer rewritten--> the offerer sees U (the relay's upstream socket)

    answerer B -> L ==relay, forward direction==> U -> T offerer
    offerer  T -> U ==relay, reverse direction==> L -> B answerer

One pinned UdpRelay per distinct offered candidate (with BUNDLE only the first carries traffic).
Connectivity checks, DTLS, SRTP and the data channel all cross the relay, so the profile's
delay, jitter, loss, rate and outages apply to every byte of the session, as on a real link.
Only UDP host candidates on loopback are relayed; anything else is refused with one clear error.
"""

from __future__ import annotations

import logging
import re

from harness.errors import NetworkShaperError
from harness.network.impairment import Address, RelayCounters, UdpRelay
from harness.network.profiles import NetworkProfile

log = logging.getLogger(__name__)

_CANDIDATE = re.compile(
    r"^(a=candidate:\S+ (\d+) (\S+) \d+ )(\S+) (\d+)( typ (\S+).*)$", re.MULTILINE
)


def sdp_candidates(sdp: str) -> list[tuple[int, Address]]:
    """(m-section index, (host, port)) of every candidate, in order.

    Raises:
        NetworkShaperError: a candidate the relay cannot carry (not UDP, not a host candidate).
    """
    out: list[tuple[int, Address]] = []
    section = -1
    for line in sdp.splitlines():
        if line.startswith("m="):
            section += 1
            continue
        m = _CANDIDATE.match(line)
        if m is None:
            continue
        transport, host, port, typ = m.group(3), m.group(4), int(m.group(5)), m.group(7)
        if transport.lower() != "udp" or typ != "host":
            raise NetworkShaperError(
                f"ice relay: cannot relay a {transport} {typ} candidate ({line.strip()})"
            )
        out.append((section, (host, port)))
    return out


def rewrite_sdp(sdp: str, mapping: dict[Address, Address]) -> str:
    """The SDP with every candidate (and the m= line's default port) moved per `mapping`."""
    lines = sdp.split("\r\n") if "\r\n" in sdp else sdp.split("\n")
    sep = "\r\n" if "\r\n" in sdp else "\n"
    out = []
    for line in lines:
        m = _CANDIDATE.match(line)
        if m is not None:
            src = (m.group(4), int(m.group(5)))
            if src in mapping:
                host, port = mapping[src]
                line = f"{m.group(1)}{host} {port}{m.group(6)}"
        out.append(line)
    # the m= line's port and c= address are the default candidate's: keep them consistent
    ports = {src[1]: dst for src, dst in mapping.items()}
    for i, line in enumerate(out):
        if line.startswith("m="):
            parts = line.split(" ")
            if len(parts) > 1 and parts[1].isdigit() and int(parts[1]) in ports:
                parts[1] = str(ports[int(parts[1])][1])
                out[i] = " ".join(parts)
    return sep.join(out)


class IceRelay:
    """Route one WebRTC offer/answer exchange through pinned UDP relays with a profile.

    Args:
        profile: the network profile applied to the media.
        seed: seed of the relays' random decisions (relay k gets seed + k).
        forward: profile direction of the answerer -> offerer traffic ("down" when the
            answerer is the far end, e.g. the support agent talking to a tablet).
        host: where the relays listen (loopback).

    Use: offer = r.rewrite_offer(offer); (set it, make the answer); answer = r.rewrite_answer(answer);
    r.stop() when the session ends (never raises; counters survive it).
    """

    def __init__(
        self,
        profile: NetworkProfile,
        *,
        seed: int = 0,
        forward: str = "down",
        host: str = "127.0.0.1",
    ):
        self.profile = profile
        self.seed = seed
        self.forward = forward
        self.host = host
        self.relays: dict[Address, UdpRelay] = {}  # offered candidate -> its relay
        self._section: dict[Address, int] = {}  # offered candidate -> first m-section offering it
        self._final: list[RelayCounters] | None = None

    def rewrite_offer(self, sdp: str) -> str:
        """Start a relay per offered candidate; the offer as the answerer must see it.

        Raises:
            NetworkShaperError: no candidate in the offer, a candidate that cannot be relayed,
                or a relay that cannot start (those already started are stopped).
        """
        cands = sdp_candidates(sdp)
        if not cands:
            raise NetworkShaperError(
                "ice relay: the offer has no candidate to relay (trickle ICE is not supported)"
            )
        try:
            for sec, target in cands:
                if target not in self.relays:
                    self._section[target] = sec
                    relay = UdpRelay(
                        (self.host, 0),
                        target,
                        self.profile,
                        seed=self.seed + len(self.relays),
                        forward=self.forward,
                        pinned=True,
                    )
                    self.relays[target] = relay
                    relay.start()
        except BaseException:
            self.stop()
            raise
        return rewrite_sdp(sdp, {t: r.address for t, r in self.relays.items()})

    def rewrite_answer(self, sdp: str) -> str:
        """Pin each relay to the answerer's candidate of the same m-section; the answer as the
        offerer must see it.

        Raises:
            NetworkShaperError: the answer's candidates do not pair with the offer's.
        """
        offered = list(self.relays)
        answer = sdp_candidates(sdp)
        if not answer:
            raise NetworkShaperError("ice relay: the answer has no candidate to relay")
        by_section = {sec: addr for sec, addr in answer}
        mapping: dict[Address, Address] = {}
        for target, relay in self.relays.items():
            client = by_section.get(self._section[target], answer[0][1])
            if client in mapping and mapping[client] != relay.upstream_address:
                continue  # bundled: one answerer port for every section; the first relay has it
            relay.pin_client(client)
            mapping[client] = relay.upstream_address
        if not mapping:
            raise NetworkShaperError(
                f"ice relay: no answer candidate pairs with the offer's {offered}"
            )
        return rewrite_sdp(sdp, mapping)

    def counters(self) -> RelayCounters | None:
        """Counters of the relay that carried the session (the one with the most traffic)."""
        every = self.all_counters()
        if not every:
            return None
        return max(every, key=lambda c: c.forward.received + c.reverse.received)

    def all_counters(self) -> list[RelayCounters]:
        if self._final is not None:
            return list(self._final)
        return [r.counters() for r in self.relays.values()]

    def stop(self) -> None:
        """Stop every relay (never raises); the counters stay readable."""
        if self._final is not None:
            return
        final = []
        for relay in self.relays.values():
            try:
                relay.stop()
                final.append(relay.counters())
            except Exception as e:  # noqa: BLE001 -- cleanup never raises
                log.warning("ice relay: stopping %s: %s", relay.address, e)
        self._final = final
