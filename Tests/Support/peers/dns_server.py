"""A real authoritative DNS server (UDP + TCP) for the tests, on loopback.

Records live in a JSON file re-read on every query, so a test can publish or
change TXT records while Roster runs:
  {"_roster-challenge.acme.test": ["roster-domain-verification=abc"],   # TXT values
   "broken.test": "servfail", "slow.test": "timeout"}
A value longer than 255 bytes is split into several strings, as publishers
do; UDP answers over 512 bytes are truncated (TC), so clients must retry
over TCP. Usage: dns_server.py RECORDS_JSON PORT
"""
import json
import sys
import time

from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer


class Resolver(BaseResolver):
    def __init__(self, path):
        self.path = path

    def resolve(self, request, handler):
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        try:
            with open(self.path) as f:
                data = json.load(f)
        except Exception:
            data = {}
        entry = data.get(qname)
        if entry == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if entry == "timeout":
            time.sleep(30)
            return reply
        if entry is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if request.q.qtype == QTYPE.TXT:
            for value in entry:
                raw = value.encode()
                chunks = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
                reply.add_answer(RR(qname, QTYPE.TXT, rdata=TXT(chunks), ttl=0))
        return reply


class Handler(DNSHandler):
    udplen = 512


def main():
    path, port = sys.argv[1], int(sys.argv[2])
    resolver = Resolver(path)
    logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    servers = [DNSServer(resolver, address="127.0.0.1", port=port, tcp=tcp, handler=Handler, logger=logger) for tcp in (False, True)]
    for s in servers:
        s.start_thread()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
