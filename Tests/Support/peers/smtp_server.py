"""A real SMTP server (aiosmtpd) for the tests, on loopback.

Every accepted message is written as a file (the exact bytes of DATA) into
MAILDIR. Replies can be scripted per recipient through RULES_JSON, re-read on
every command:
  {"fail@x.test": "550 5.1.1 No such user",      # always refuse
   "later@x.test": ["451 4.3.0 Try again later"]} # refuse once per listed reply, then accept
Usage: smtp_server.py PORT MAILDIR RULES_JSON
"""
import asyncio
import json
import os
import sys
import time
import uuid

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, maildir, rules_path):
        self.maildir = maildir
        self.rules_path = rules_path
        self.used = {}

    def rules(self):
        try:
            with open(self.rules_path) as f:
                return json.load(f)
        except Exception:
            return {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        rule = self.rules().get(address.lower())
        if isinstance(rule, str):
            return rule
        if isinstance(rule, list):
            n = self.used.get(address.lower(), 0)
            if n < len(rule):
                self.used[address.lower()] = n + 1
                return rule[n]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = "%d-%s.eml" % (time.time_ns(), uuid.uuid4().hex)
        tmp = os.path.join(self.maildir, "." + name)
        with open(tmp, "wb") as f:
            f.write(("X-Envelope-To: %s\r\nX-Envelope-From: %s\r\n" % (",".join(envelope.rcpt_tos), envelope.mail_from)).encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.maildir, name))
        return "250 Message accepted"


def main():
    port, maildir, rules = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    os.makedirs(maildir, exist_ok=True)
    controller = Controller(Handler(maildir, rules), hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
