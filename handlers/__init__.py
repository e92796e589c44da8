"""HTTP and WebSocket handlers, one module per resource.

Each module ends with ``default_handlers``, a list of ``(pattern, HandlerClass)``; the app factory
(``jobjoker.app``) concatenates them, so adding a resource is one module and one line there.
Handlers are thin: parse, call the domain, serialise.
"""
