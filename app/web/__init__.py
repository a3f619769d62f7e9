"""The web pages at /ui (CONTRACT section 10)."""
