"""One ASGI application per framework, all serving the same endpoints.

The harness puts this directory on ``PYTHONPATH`` and serves ``<module>:app``.
Modules are named ``*_app`` so that they never shadow the library they use.
"""
