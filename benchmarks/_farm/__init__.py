"""The loopback farm and the measuring kit behind ``benchmarks/sweep.py``.

``hosts``: which farm host has which address, name and configuration profile.
``pki``: one CA and a certificate per host (``cryptography``).
``nginx``: one nginx process serving every host (TLS and HTTP).
``dns``: Knot answering for the farm's zone.
``measure``: runs one tool and reports wall time, CPU, peak RSS and the
connections the farm saw.
"""
