"""Microphone -> agent: a chirp played into the tablet's microphone, found in what the agent heard."""

from __future__ import annotations

import time

from harness.session.media import chirp, find_chirp
from harness.twin.truth import read_truth


def test_mic_to_agent_latency_matches_the_truth(live):
    sound = chirp()
    samples = []
    for _ in range(5):
        time.sleep(0.6)
        # the lab speaker (the twin's control socket) says when it played the sound
        t_play = live.tp.client().mic(sound.tolist())
        time.sleep(0.6)
        bot = live.bot.session
        arrival = find_chirp(list(bot.audio), bot.audio_rate, sound, after=t_play)
        samples.append((t_play, arrival))
    started = [e["t"] for e in read_truth(live.tp.twins[0].truth, "mic_sound_started")]
    assert len(started) == 5
    for (t_play, arrival), t_mic in zip(samples, started, strict=True):
        measured = arrival.t_arrival - t_play
        true = arrival.t_arrival - t_mic
        assert arrival.score > 0.8
        # from the sound in the air; the microphone took it into its next 20 ms frame (plus the
        # twin's own scheduling lag under load)
        assert 0.0 <= measured - true <= 0.1, (measured, true)
        assert 0.0 < true < 0.5
