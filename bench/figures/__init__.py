"""Figures from records (matplotlib, no display needed): one module per kind of figure, one palette (a colour and
marker per compressor family), one way to make and write a figure (`save`)."""
