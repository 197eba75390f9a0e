// The Prometheus adapter of the metrics port: label values from the network folded into a fixed
// set, the cache hit ratio, and levels read at scrape time.
import assert from "node:assert/strict";
import { PromMetrics } from "../../components/http/prom-metrics.js";

function line(text: string, prefix: string): string | undefined {
  return text.split("\n").find((l) => l.startsWith(prefix));
}

describe("PromMetrics", function () {
  it("folds methods, stanza names and status codes from the network into a fixed set", async function () {
    const metrics = new PromMetrics();
    metrics.sipRequestAnswered("MESSAGE", 200);
    metrics.sipRequestAnswered("X-RANDOM-1", 405);
    metrics.sipRequestAnswered("X-RANDOM-2", 405);
    metrics.sipRequestSent("NOTIFY", 9999);
    metrics.xmppStanzaSent("handshake");
    metrics.xmppStanzaSent("presence");
    const text = await metrics.text();
    assert.equal(
      line(text, 'switchboard_sip_requests_answered_total{method="MESSAGE",code="200"}'),
      'switchboard_sip_requests_answered_total{method="MESSAGE",code="200"} 1',
    );
    assert.equal(
      line(text, 'switchboard_sip_requests_answered_total{method="other",code="405"}'),
      'switchboard_sip_requests_answered_total{method="other",code="405"} 2',
    );
    assert.equal(
      line(text, 'switchboard_sip_requests_sent_total{method="NOTIFY",code="other"}'),
      'switchboard_sip_requests_sent_total{method="NOTIFY",code="other"} 1',
    );
    assert.ok(line(text, 'switchboard_xmpp_stanzas_sent_total{name="other"} 1'));
    assert.ok(line(text, 'switchboard_xmpp_stanzas_sent_total{name="presence"} 1'));
    assert.equal(line(text, 'switchboard_sip_requests_answered_total{method="X-RANDOM'), undefined);
  });

  it("computes each cache's hit ratio, and counts relays in the latency histogram", async function () {
    const metrics = new PromMetrics();
    metrics.cacheLookup("ldap", true);
    metrics.cacheLookup("ldap", true);
    metrics.cacheLookup("ldap", true);
    metrics.cacheLookup("ldap", false);
    metrics.cacheLookup("enum", false);
    metrics.message("sip-to-xmpp", "accepted", 0.003);
    metrics.message("sip-to-xmpp", "item-not-found", 0.2);
    const text = await metrics.text();
    assert.ok(line(text, 'switchboard_cache_hit_ratio{cache="ldap"} 0.75'));
    assert.ok(line(text, 'switchboard_cache_hit_ratio{cache="enum"} 0'));
    assert.ok(line(text, 'switchboard_messages_total{direction="sip-to-xmpp",outcome="item-not-found"} 1'));
    assert.ok(line(text, 'switchboard_message_relay_seconds_bucket{le="0.005",direction="sip-to-xmpp"} 1'));
    assert.ok(line(text, 'switchboard_message_relay_seconds_count{direction="sip-to-xmpp"} 2'));
  });

  it("reads the levels at scrape time, and the queue once per scrape", async function () {
    let queueReads = 0;
    let depth = 2;
    const metrics = new PromMetrics({
      now: () => 1_000_000,
      sipSubscriptions: () => 7,
      xmppSubscriptions: () => Promise.resolve(3),
      queue: () => {
        queueReads += 1;
        return Promise.resolve({ depth, oldestQueuedAt: depth > 0 ? 940_000 : undefined });
      },
      connections: () => ({ xmpp: true, redis: false }),
    });
    const first = await metrics.text();
    assert.ok(line(first, "switchboard_sip_subscriptions 7"));
    assert.ok(line(first, "switchboard_xmpp_subscriptions 3"));
    assert.ok(line(first, "switchboard_queue_depth 2"));
    assert.ok(line(first, "switchboard_queue_oldest_age_seconds 60"));
    assert.ok(line(first, 'switchboard_connection_up{component="xmpp"} 1'));
    assert.ok(line(first, 'switchboard_connection_up{component="redis"} 0'));
    assert.equal(queueReads, 1);
    depth = 0;
    await new Promise((resolve) => setImmediate(resolve));
    const second = await metrics.text();
    assert.ok(line(second, "switchboard_queue_depth 0"));
    assert.ok(line(second, "switchboard_queue_oldest_age_seconds 0"));
    assert.equal(queueReads, 2);
  });

  it("folds uncommon codes into their class and counts unsent requests as none", async function () {
    const metrics = new PromMetrics();
    metrics.sipRequestSent("MESSAGE", 499);
    metrics.sipRequestSent("MESSAGE", 498);
    metrics.sipRequestSent("MESSAGE", 0);
    const text = await metrics.text();
    assert.ok(line(text, 'switchboard_sip_requests_sent_total{method="MESSAGE",code="4xx"} 2'));
    assert.ok(line(text, 'switchboard_sip_requests_sent_total{method="MESSAGE",code="none"} 1'));
  });

  it("serves the scrape when a level cannot be read: that gauge reads NaN and the failure is counted", async function () {
    const metrics = new PromMetrics({
      queue: () => Promise.reject(new Error("redis unreachable")),
      sipSubscriptions: () => 4,
    });
    const text = await metrics.text();
    // prom-client writes NaN as "Nan"; Prometheus reads it case-insensitively (Go's ParseFloat).
    assert.ok(line(text, "switchboard_queue_depth Nan"));
    assert.ok(line(text, "switchboard_queue_oldest_age_seconds Nan"));
    assert.ok(line(text, "switchboard_sip_subscriptions 4"));
    assert.ok(line(text, 'switchboard_metric_collect_failures_total{level="queue"} 1'));
    assert.ok(line(text, "process_resident_memory_bytes "));
  });
});
