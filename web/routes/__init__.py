"""The routers of the HTTP front, one per area; :func:`web.create_app` includes them."""
