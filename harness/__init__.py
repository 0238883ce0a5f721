"""mayday-hil: a hardware-in-the-loop test harness for one-press live video support on tablets."""

__version__ = "0.1.0"
