"""Loopback emulators of the services storage backends talk to (test code).

Each emulator is an ASGI app checking what the real service checks (auth headers, argument
JSON, offsets, required parameters), so a wrong call fails a test. `fixtures.py` has pytest
fixtures that start them; import those into a test module to reuse them.
"""
