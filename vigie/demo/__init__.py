"""``vigie demo``: a small, fictional government network on loopback, swept for real.

The demonstration network (:class:`DemoNetwork`) runs inside the vigie
process: a DNS server that is both the zones' authority and vigie's resolver,
web applications over HTTP and HTTPS and a Redis look-alike, for four
fictional agencies under ``gouv.example`` on 127.77.0.0/24. Three
applications carry the weaknesses a CERT meets (an outdated TLS protocol,
expired and self-signed certificates, missing headers, an exposed ``.git``,
a database without authentication, permissive SPF, DMARC ``p=none``, an open
zone transfer, a dangling alias); one is configured well and must grade well.

:func:`run_demo` writes the demo's own configuration and registry into
``./vigie-demo``, starts the network, runs a real sweep with the real checks,
prints the findings and grades, stops the network (also on Ctrl-C, SIGTERM or
an error), and writes the agencies' HTML reports, the CERT's overview and
each agency's digest email (``.eml``).
"""

from vigie.demo._network import DemoError, DemoNetwork, Pki, choose_ports, make_pki
from vigie.demo._run import (
    DEFAULT_OUTPUT,
    DemoInterrupted,
    DemoResult,
    ProgressFactory,
    demo_config_text,
    registry_csv,
    run_demo,
)
from vigie.demo._world import (
    DEMO_NETWORK,
    DemoApplication,
    DemoWorld,
    PortPlan,
    build_world,
    registered_names,
)

__all__ = [
    "DEFAULT_OUTPUT",
    "DEMO_NETWORK",
    "DemoApplication",
    "DemoError",
    "DemoInterrupted",
    "DemoNetwork",
    "DemoResult",
    "DemoWorld",
    "Pki",
    "PortPlan",
    "ProgressFactory",
    "build_world",
    "choose_ports",
    "demo_config_text",
    "make_pki",
    "registered_names",
    "registry_csv",
    "run_demo",
]
