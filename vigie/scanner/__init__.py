"""The scanner: the sweep engine (``engine``), the port stage (``ports``, the only
module that imports nmap), the scope guard (``scope``), name resolution
(``resolve``) and one module or package per check family (``service``,
``tls``, ``http``, ``dns``, ``mail``, ``ipv6``), registered in ``families``. Nothing here writes to
the database: results stream to the caller's observer.
"""
