"""compression-bench: measure what compression buys in bytes, accuracy and milliseconds on real hardware."""
