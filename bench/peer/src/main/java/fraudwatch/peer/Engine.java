/* Engine.java — the semantics of the peer's rules, split the way Kafka
 * Streams has to split them.
 *
 * Owns two halves.  route(): what one event does without state — the plain
 * rules' alerts, and for each threshold rule it counts in and each sequence
 * step it matches, one keyed update (rule, step, key, ts, value) that must
 * meet that key's state.  apply(): one keyed update against the state of
 * (rule, key) in a key-value store (RocksDB in the application), by the
 * exact rules of docs/rules.md sections 6-8: the high-water mark, the
 * half-open window (m - W, t], late events seeing only their past, sums in
 * micro-units, chains that keep their start time, sequence steps tried from
 * the last to the first, suppression on the event's ts.  With one input
 * partition the application calls apply() right after route() in the same
 * task; with more it sends the updates through a repartition topic keyed by
 * the rule key first, as any Kafka Streams application must to bring one
 * key's events together (Main.java).
 *
 * State layout (a byte[] per rule and key, DataOutput):
 *   threshold  m, t_a (Long.MIN_VALUE: never alerted), n, then n times ts
 *              and, for sum, the value in micro-units, for distinct, the text;
 *   sequence   m, t_a, then c_i per step (Long.MIN_VALUE: absent).
 */
package fraudwatch.peer;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import com.fasterxml.jackson.databind.JsonNode;
import org.apache.kafka.streams.state.KeyValueStore;

final class Engine {
    static final long NONE = Long.MIN_VALUE;
    static final double SUM_MAX = 9e12;

    /** Where route() puts what it finds. */
    interface Out {
        void alert(String subject, String alertJson);

        void keyed(String key, Update u);
    }

    /** One event's effect on one (rule, key): see the top. */
    static final class Update {
        final int rule, step;
        final long ts;
        final String eventId;
        final long micro;     // sum
        final String text;    // distinct

        Update(int rule, int step, long ts, String eventId, long micro, String text) {
            this.rule = rule;
            this.step = step;
            this.ts = ts;
            this.eventId = eventId;
            this.micro = micro;
            this.text = text;
        }

        /** rule TAB step TAB ts TAB micro TAB len(eventId) TAB eventId text */
        String encode() {
            return rule + "\t" + step + "\t" + ts + "\t" + micro + "\t" + eventId.length() + "\t"
                    + eventId + (text == null ? "" : text);
        }

        static Update decode(String s) {
            String[] p = s.split("\t", 6);
            int n = Integer.parseInt(p[4]);
            String rest = p[5];
            return new Update(Integer.parseInt(p[0]), Integer.parseInt(p[1]), Long.parseLong(p[2]),
                    rest.substring(0, n), Long.parseLong(p[3]),
                    rest.length() > n ? rest.substring(n) : null);
        }
    }

    final Rules rules;

    Engine(Rules rules) {
        this.rules = rules;
    }

    static String alertJson(String rule, String subject, String eventId, long eventTs) {
        StringBuilder b = new StringBuilder(160);
        b.append("{\"rule_id\":");
        str(b, rule);
        b.append(",\"subject\":");
        str(b, subject);
        b.append(",\"event_id\":");
        str(b, eventId);
        b.append(",\"event_ts\":").append(eventTs);
        b.append(",\"detected_ts\":").append(System.currentTimeMillis());
        return b.append("}").toString();
    }

    private static void str(StringBuilder b, String s) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\')
                b.append('\\').append(c);
            else if (c < 0x20)
                b.append(String.format("\\u%04x", (int) c));
            else
                b.append(c);
        }
        b.append('"');
    }

    /** The stateless part of one event (see the top). */
    void route(Event e, Out out) {
        JsonNode ev = e.node;
        for (Rules.Rule r : rules.rules) {
            switch (r.kind) {
                case Rules.PLAIN: {
                    if (!r.matchesType(e.type) || !Rules.all(r.where, ev))
                        break;
                    String s = r.subject == null ? null : Event.text(Event.field(ev, r.subject));
                    if (s == null)
                        s = e.id;
                    out.alert(s, alertJson(r.id, s, e.id, e.ts));
                    break;
                }
                case Rules.THRESHOLD: {
                    if (!r.matchesType(e.type) || !Rules.all(r.where, ev))
                        break;
                    String k = Event.key(ev, r.groupBy);
                    if (k == null)
                        break;
                    long micro = 0;
                    String text = null;
                    if (r.agg == Rules.SUM) {
                        JsonNode v = Event.field(ev, r.aggField);
                        if (v == null || !v.isNumber() || Math.abs(v.doubleValue()) > SUM_MAX)
                            break;
                        micro = Math.round(v.doubleValue() * 1e6);
                    } else if (r.agg == Rules.DISTINCT) {
                        text = Event.text(Event.field(ev, r.aggField));
                        if (text == null)
                            break;
                    }
                    out.keyed(k, new Update(r.index, 0, e.ts, e.id, micro, text));
                    break;
                }
                default: {
                    for (int i = r.steps.length - 1; i >= 0; i--) {
                        Rules.Step st = r.steps[i];
                        if (!(st.event.equals("*") || st.event.equals(e.type)) || !Rules.all(st.where, ev))
                            continue;
                        String k = Event.text(Event.field(ev, st.key));
                        if (k != null)
                            out.keyed(k, new Update(r.index, i, e.ts, e.id, 0, null));
                    }
                }
            }
        }
    }

    /** One keyed update against the store: the alert JSON, or null. */
    String apply(KeyValueStore<String, byte[]> store, String key, Update u) {
        Rules.Rule r = rules.rules.get(u.rule);
        String sk = r.id + "\u0000" + key;
        byte[] old = store.get(sk);
        try {
            if (r.kind == Rules.THRESHOLD)
                return threshold(store, sk, old, r, key, u);
            return sequence(store, sk, old, r, key, u);
        } catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

    private String threshold(KeyValueStore<String, byte[]> store, String sk, byte[] old,
                             Rules.Rule r, String key, Update u) throws IOException {
        long m = NONE, ta = NONE;
        List<long[]> ent = new ArrayList<>();     // {ts, micro}
        List<String> texts = new ArrayList<>();
        if (old != null) {
            DataInputStream in = new DataInputStream(new ByteArrayInputStream(old));
            m = in.readLong();
            ta = in.readLong();
            int n = in.readInt();
            for (int i = 0; i < n; i++) {
                long ts = in.readLong();
                long micro = r.agg == Rules.SUM ? in.readLong() : 0;
                ent.add(new long[] { ts, micro });
                if (r.agg == Rules.DISTINCT)
                    texts.add(in.readUTF());
            }
        }
        long t = u.ts;
        if (m != NONE && t <= m - r.windowMs)
            return null;                          // expired on arrival: as if it never came
        m = m == NONE ? t : Math.max(m, t);
        long lo = m - r.windowMs;
        List<long[]> keep = new ArrayList<>(ent.size() + 1);
        List<String> keepT = new ArrayList<>();
        for (int i = 0; i < ent.size(); i++) {
            if (ent.get(i)[0] > lo) {
                keep.add(ent.get(i));
                if (r.agg == Rules.DISTINCT)
                    keepT.add(texts.get(i));
            }
        }
        keep.add(new long[] { t, u.micro });
        if (r.agg == Rules.DISTINCT)
            keepT.add(u.text);
        double aggv;
        if (r.agg == Rules.COUNT) {
            long c = 0;
            for (long[] x : keep)
                if (x[0] <= t)
                    c++;
            aggv = c;
        } else if (r.agg == Rules.SUM) {
            long s = 0;
            for (long[] x : keep)
                if (x[0] <= t)
                    s += x[1];
            aggv = s;
        } else {
            Set<String> d = new HashSet<>();
            for (int i = 0; i < keep.size(); i++)
                if (keep.get(i)[0] <= t)
                    d.add(keepT.get(i));
            aggv = d.size();
        }
        String alert = null;
        if (r.compare(aggv) && !(ta != NONE && r.suppressMs > 0 && t < ta + r.suppressMs)) {
            ta = t;
            alert = alertJson(r.id, key, u.eventId, t);
        }
        ByteArrayOutputStream bo = new ByteArrayOutputStream(24 + keep.size() * 16);
        DataOutputStream out = new DataOutputStream(bo);
        out.writeLong(m);
        out.writeLong(ta);
        out.writeInt(keep.size());
        for (int i = 0; i < keep.size(); i++) {
            out.writeLong(keep.get(i)[0]);
            if (r.agg == Rules.SUM)
                out.writeLong(keep.get(i)[1]);
            if (r.agg == Rules.DISTINCT)
                out.writeUTF(keepT.get(i));
        }
        store.put(sk, bo.toByteArray());
        return alert;
    }

    private String sequence(KeyValueStore<String, byte[]> store, String sk, byte[] old,
                            Rules.Rule r, String key, Update u) throws IOException {
        int ns = r.steps.length;
        long m = NONE, ta = NONE;
        long[] c = new long[ns];
        java.util.Arrays.fill(c, NONE);
        if (old != null) {
            DataInputStream in = new DataInputStream(new ByteArrayInputStream(old));
            m = in.readLong();
            ta = in.readLong();
            for (int i = 0; i < ns; i++)
                c[i] = in.readLong();
        }
        long t = u.ts;
        int i = u.step;
        m = m == NONE ? t : Math.max(m, t);
        for (int j = 0; j < ns; j++)
            if (c[j] != NONE && c[j] <= m - r.withinMs)
                c[j] = NONE;
        String alert = null;
        if (i == 0) {
            c[0] = c[0] == NONE ? t : Math.max(c[0], t);
        } else if (c[i - 1] != NONE && c[i - 1] <= t) {
            c[i] = c[i] == NONE ? c[i - 1] : Math.max(c[i], c[i - 1]);
            if (i == ns - 1 && !(ta != NONE && r.suppressMs > 0 && t < ta + r.suppressMs)) {
                ta = t;
                alert = alertJson(r.id, key, u.eventId, t);
            }
        }
        ByteArrayOutputStream bo = new ByteArrayOutputStream(16 + 8 * ns);
        DataOutputStream out = new DataOutputStream(bo);
        out.writeLong(m);
        out.writeLong(ta);
        for (long x : c)
            out.writeLong(x);
        store.put(sk, bo.toByteArray());
        return alert;
    }
}
