"""An independent XMPP client for Switchboard tests, built on slixmpp.

Driven over stdin/stdout with one JSON object per line. Commands (stdin):
  {"op": "message", "to": JID, "body": TEXT, "id"?: ID, "type"?: "chat", "receipt"?: bool}
  {"op": "presence", "to"?: JID, "type"?: TYPE, "show"?: SHOW, "status"?: TEXT}
  {"op": "raw", "xml": STANZA}
  {"op": "disconnect"}
Events (stdout): {"event": "ready"}, {"event": "message", ...}, {"event": "presence", ...},
  {"event": "iq", "xml": ...}, {"event": "failed", "reason": ...}, {"event": "disconnected"}.
Run with /usr/bin/python3 (Debian's python3-slixmpp).
"""
import asyncio
import json
import sys
import threading

import slixmpp
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0092")
        self.register_plugin("xep_0199")
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", lambda _: emit({"event": "failed", "reason": "auth"}))
        self.add_event_handler("disconnected", lambda _: emit({"event": "disconnected"}))
        # Every message, not just those with a body (slixmpp's "message" event needs one): receipts
        # and chat-state notifications have none.
        self.register_handler(Callback("any message", MatchXPath("{jabber:client}message"), self.on_message))
        self.add_event_handler("presence", self.on_presence)
        # Subscription requests are reported, never auto-answered: tests decide.
        self.roster.auto_authorize = None  # None: neither accept nor reject (False would reject)
        self.roster.auto_subscribe = False

    async def on_start(self, _event):
        self.send_presence()
        await self.get_roster()
        emit({"event": "ready", "jid": str(self.boundjid)})

    def on_message(self, msg):
        emit({
            "event": "message",
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "type": msg["type"],
            "id": msg["id"],
            "body": msg["body"],
            "xml": str(msg),
        })

    def on_presence(self, pres):
        emit({
            "event": "presence",
            "from": str(pres["from"]),
            "to": str(pres["to"]),
            "type": pres["type"],
            "show": pres["show"],
            "status": pres["status"],
            "xml": str(pres),
        })

    async def query(self, cmd):
        """IQ requests made the way slixmpp's own plugins make them; the answer is reported."""
        tag = cmd.get("tag", cmd["op"])
        try:
            if cmd["op"] == "roster":
                await self.get_roster()
                items = {}
                for jid in self.client_roster:
                    item = self.client_roster[jid]
                    items[jid] = {"name": item["name"], "subscription": item["subscription"], "groups": list(item["groups"])}
                emit({"event": "iq", "tag": tag, "type": "result", "items": items})
                return
            if cmd["op"] == "disco_info":
                res = await self["xep_0030"].get_info(jid=cmd["to"], timeout=5)
            elif cmd["op"] == "ping":
                rtt = await self["xep_0199"].ping(jid=cmd["to"], timeout=5)
                emit({"event": "iq", "tag": tag, "type": "result", "rtt": rtt})
                return
            elif cmd["op"] == "version":
                res = await self["xep_0092"].get_version(cmd["to"], timeout=5)
            else:
                iq = self.Iq()
                iq["to"] = cmd["to"]
                iq["type"] = cmd.get("type", "get")
                if cmd.get("payload"):
                    iq.append(ET.fromstring(cmd["payload"]))
                res = await iq.send(timeout=5)
            emit({"event": "iq", "tag": tag, "type": res["type"], "xml": str(res)})
        except slixmpp.exceptions.IqError as err:
            emit({"event": "iq", "tag": tag, "type": "error", "condition": err.condition, "text": err.text, "xml": str(err.iq)})
        except slixmpp.exceptions.IqTimeout:
            emit({"event": "iq", "tag": tag, "type": "timeout"})

    def command(self, cmd):
        op = cmd.get("op")
        if op == "message":
            msg = self.make_message(mto=cmd["to"], mbody=cmd["body"], mtype=cmd.get("type", "chat"))
            if "id" in cmd:
                msg["id"] = cmd["id"]
            if cmd.get("receipt"):
                msg.append(ET.Element("{urn:xmpp:receipts}request"))
            msg.send()
        elif op == "presence":
            kwargs = {}
            if cmd.get("to"):
                kwargs["pto"] = cmd["to"]
            if cmd.get("type"):
                kwargs["ptype"] = cmd["type"]
            if cmd.get("show"):
                kwargs["pshow"] = cmd["show"]
            if cmd.get("status"):
                kwargs["pstatus"] = cmd["status"]
            self.send_presence(**kwargs)
        elif op == "raw":
            self.send_raw(cmd["xml"])
        elif op in ("disco_info", "ping", "version", "iq", "roster"):
            asyncio.ensure_future(self.query(cmd))
        elif op == "disconnect":
            self.disconnect()
        else:
            emit({"event": "error", "reason": "unknown op %r" % op})


def main():
    jid, password, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = Client(jid, password)
    loop = asyncio.get_event_loop()

    def read_stdin():
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                cmd = json.loads(line)
            except ValueError as err:
                emit({"event": "error", "reason": "bad json: %s" % err})
                continue
            loop.call_soon_threadsafe(client.command, cmd)
        loop.call_soon_threadsafe(client.disconnect)

    threading.Thread(target=read_stdin, daemon=True).start()
    # Loopback test server without TLS: plain TCP, no STARTTLS.
    client.connect(address=(host, port), force_starttls=False, disable_starttls=True)
    loop.run_until_complete(client.disconnected)


if __name__ == "__main__":
    main()
