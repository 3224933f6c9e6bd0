"""Runs scim2-tester against a live Roster over its SCIM Unix socket.

Usage: scim_conformance.py SOCKET_PATH BEARER_TOKEN
Prints one line per check ("STATUS title: reason") and a summary line
"SUMMARY total=N error=N critical=N skipped=N ...". Exits 1 if any check is
ERROR or CRITICAL (SKIPPED checks are listed, not failures: see docs/scim.md).
"""
import sys
from collections import Counter

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


def main():
    sock, token = sys.argv[1], sys.argv[2]
    transport = httpx2.HTTPTransport(uds=sock)
    http = httpx2.Client(base_url="http://roster/scim/v2", transport=transport,
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client = SyncSCIMClient(http)
    results = check_server(client, raise_exceptions=False)
    counts = Counter()
    for r in results:
        status = r.status.name if hasattr(r.status, "name") else str(r.status)
        counts[status] += 1
        reason = (r.reason or "").replace("\n", " ")[:300]
        print(f"{status} {r.title}: {reason}")
    total = sum(counts.values())
    print("SUMMARY total=%d " % total + " ".join(f"{k.lower()}={v}" for k, v in sorted(counts.items())))
    bad = counts.get("ERROR", 0) + counts.get("CRITICAL", 0)
    sys.exit(1 if bad or total == 0 else 0)


if __name__ == "__main__":
    main()
