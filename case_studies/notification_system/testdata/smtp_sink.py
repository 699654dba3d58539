#!/usr/bin/python3
"""A real SMTP server for the notifier's email tests (Debian package python3-aiosmtpd).

    smtp_sink.py --port 2525 --out DIR [--reject ADDRESS=REPLY ...] [--auth USER:PASSWORD]

Listens on 127.0.0.1:PORT. Every message accepted is written to DIR as msg-NNNN.eml (the raw
bytes received) and msg-NNNN.json: the envelope plus the message as Python's own email parser
reads it (decoded headers, body with \n line ends, defects), so a test checks our MIME encoding against an
independent implementation. A RCPT TO for an ADDRESS given with --reject gets REPLY (e.g.
"550 5.1.1 No such mailbox" or "451 4.3.0 Try again later"). With --auth, AUTH PLAIN/LOGIN is
offered over the clear connection (tests only) and only USER:PASSWORD is accepted.
"""
import argparse
import email
import email.policy
import json
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, out, rejects):
        self.out = out
        self.rejects = rejects
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rejects.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        with self.lock:
            self.count += 1
            base = os.path.join(self.out, "msg-%04d" % self.count)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        body = parsed.get_content() if not parsed.is_multipart() else None
        if body is not None:
            body = body.replace("\r\n", "\n")  # SMTP's line ends, as a reader's text
        summary = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": {name: str(value) for name, value in parsed.items()},
            "content_type": parsed.get_content_type(),
            "charset": parsed.get_content_charset(),
            "transfer_encoding": parsed.get("Content-Transfer-Encoding", ""),
            "body": body,
            "defects": [repr(d) for d in parsed.defects] +
                       [repr(d) for _, v in parsed.items() for d in getattr(v, "defects", ())],
            "authenticated_as": session.authenticated and session.login_data
                                and session.login_data.decode("utf-8", "replace"),
        }
        # The .eml first, then the .json through a rename: a reader that sees the .json sees both.
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        with open(base + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(summary, f, ensure_ascii=False)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 Message accepted for delivery"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--reject", action="append", default=[], metavar="ADDRESS=REPLY")
    parser.add_argument("--auth", metavar="USER:PASSWORD")
    args = parser.parse_args()

    rejects = {}
    for item in args.reject:
        address, _, reply = item.partition("=")
        rejects[address.lower()] = reply
    kwargs = {}
    if args.auth:
        user, _, password = args.auth.partition(":")

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login == user.encode() and auth_data.password == password.encode()
            # handled=False: let the server answer 535 itself.
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        kwargs = {"authenticator": authenticate, "auth_require_tls": False}

    controller = Controller(Sink(args.out, rejects), hostname="127.0.0.1", port=args.port,
                            **kwargs)
    controller.start()
    print("smtp_sink: listening on 127.0.0.1:%d" % args.port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
