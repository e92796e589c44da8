"""The admin page's files, served by ``jobjoker.handlers.pages``; installed as ``jobjoker.static``.

A package only so that ``importlib.resources.files("jobjoker.static")`` finds the folder, in a
checkout and installed alike. It holds no code.
"""
