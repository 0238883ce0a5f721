"""Vision: timecodes, latency, fidelity, events and annotations (numpy in, dataclasses out).

Never touches a device. Importing this package is cheap and free of OpenCV: the device twin
imports harness.vision.timecode (the pure codec) on its own; import the other modules directly
(harness.vision.latency, .fidelity, .events, .annotation, .locator, .video).
"""
