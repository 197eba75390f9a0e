-- Switchboard in Prosody: the gateway domain as an external component (XEP-0114), and mod_privilege
-- (XEP-0356, Debian package prosody-modules) granting it the home users' presence.
-- See docs/operator-guide.md ("Prosody") and docs/xmpp.md.
--
-- Install: copy to /etc/prosody/conf.d/switchboard.cfg.lua (Debian's prosody.cfg.lua ends with
-- Include "conf.d/*.cfg.lua"), replace the names and the secret, then `prosodyctl check config` and
-- `prosodyctl reload`. Checked with `luac -p` and with `prosodyctl --config ... check config` (Prosody
-- 0.12.3) on a config that includes this file.
--
-- Names: example.org is the home domain (Switchboard's `domain`), sip.example.org the gateway domain
-- (`xmpp.component.jid`). The secret is `xmpp.component.secret`.

-- Global: where the component port listens (XEP-0114). Prosody's defaults are port 5347 on loopback;
-- set component_interfaces to an address the bridge reaches when it runs on another host, and keep the
-- port behind a firewall (the handshake is a shared secret in clear text).
component_ports = { 5347 }
component_interfaces = { "127.0.0.1" }

-- The home domain. If this VirtualHost is defined elsewhere with its own modules_enabled, add
-- "privilege" to that list instead: an option set here replaces the one set there.
VirtualHost "example.org"
    modules_enabled = { "privilege" }
    -- XEP-0356 grants. presence: every home user's presence reaches the bridge without a subscription
    -- (otherwise each user approves one from the gateway). roster: colleagues' phones are written into
    -- rosters (xmpp.rosterPhones). message: not used by the bridge today, granted as in docs/xmpp.md.
    privileged_entities = {
        ["sip.example.org"] = { presence = "managed_entity"; roster = "both"; message = "outgoing" };
    }

-- The gateway domain. Components do not load the global modules, so privilege is enabled here too.
Component "sip.example.org"
    component_secret = "change-me"
    modules_enabled = { "privilege" }
    -- Several bridge instances on one Redis (docs/scaling.md): uncomment, so that the instance that
    -- takes the component lease over replaces the connection of a holder that hangs (frozen, not
    -- dead) instead of being refused for as long as that one lingers. Leave it commented (Prosody's
    -- default, kick_new) for a single instance: two bridges started by mistake would take the
    -- component from each other in turn.
    -- component_conflict_resolve = "kick_old"
