"""The device twin: a process the real adb server sees as a device (see shared/DESIGN.md)."""
