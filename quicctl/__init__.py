"""quicctl: build, load, configure, debug, demonstrate, benchmark and test the QUIC kernel module."""

__version__ = "0.1.0"
