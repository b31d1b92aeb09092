"""Wrong API keys are rate-limited per client: a token bucket per address, in bounded memory.

Each client may get BURST keys wrong at once, then one more every 1/RATE seconds. While its
bucket is empty every authenticated call from it is answered 429 before its key is even
compared, so guessing is no faster with the right key in the list. IPv6 clients are counted per
/64, the block one host usually has to itself. At most MAX_CLIENTS buckets are kept; the least
recently seen is forgotten first (a forgotten client starts with a full bucket).
"""
from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict

BURST = 10
RATE = 1.0  # wrong keys per second once the burst is spent
MAX_CLIENTS = 10_000


def client_id(host: str | None) -> str:
    """The address a bucket is kept for: the IPv4 address, or the IPv6 /64."""
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return host or "?"
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


class AuthFailures:
    def __init__(self, burst: int = BURST, rate: float = RATE, max_clients: int = MAX_CLIENTS,
                 clock=time.monotonic):
        self.burst, self.rate, self.max_clients, self.clock = burst, rate, max_clients, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # id -> (tokens, at)

    def _tokens(self, who: str) -> float:
        tokens, at = self._buckets.get(who, (self.burst, self.clock()))
        return min(self.burst, tokens + (self.clock() - at) * self.rate)

    def wait(self, who: str) -> float:
        """Seconds until `who` may try a key again; 0 when it may now."""
        if who not in self._buckets:
            return 0.0
        missing = 1 - self._tokens(who)
        return max(0.0, missing / self.rate)

    def failed(self, who: str) -> bool:
        """Count a wrong key; True when this one used up the client's burst (worth one log line)."""
        before = self._tokens(who)
        self._buckets[who] = (before - 1, self.clock())
        self._buckets.move_to_end(who)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return before >= 1 > before - 1

    def __len__(self) -> int:
        return len(self._buckets)
