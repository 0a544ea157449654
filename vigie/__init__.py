"""vigie: network exposure scanner for a national CERT."""

__version__ = "0.1.0"
