"""The simples showcase: a shared notes board (``python -m examples.showcase.app``)."""
