"""The service functions the command line, the scheduler and the web console call.

Each function takes the settings, opens its own database session, applies the
rule it is named after and returns plain values (rows, views, bytes): callers
parse and render, they hold no session and write no query.
"""
