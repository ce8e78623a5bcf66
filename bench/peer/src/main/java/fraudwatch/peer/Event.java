/* Event.java — reading an event the way fraudwatch's rules see it.
 *
 * Owns parsing one input message (Jackson tree), the checks that make an
 * event well-formed (event_id, type, ts: docs/rules.md section 2), field
 * paths, and the "numbers as text" rule for keys and subjects (section 9).
 * Malformed events are counted and dropped; fraudwatch sends them to its
 * dead-letter topic instead (no alert either way).
 */
package fraudwatch.peer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.math.BigDecimal;

final class Event {
    private static final ObjectMapper OM = new ObjectMapper();

    final JsonNode node;
    final String id;
    final String type;
    final long ts;

    private Event(JsonNode node, String id, String type, long ts) {
        this.node = node;
        this.id = id;
        this.type = type;
        this.ts = ts;
    }

    /** The event in `value`, or null when it is malformed. */
    static Event parse(String value) {
        JsonNode n;
        try {
            n = OM.readTree(value);
        } catch (Exception e) {
            return null;
        }
        if (n == null || !n.isObject())
            return null;
        JsonNode id = n.get("event_id"), type = n.get("type"), ts = n.get("ts");
        if (id == null || !id.isTextual() || id.textValue().isEmpty() || type == null
                || !type.isTextual() || type.textValue().isEmpty() || ts == null || !ts.isNumber())
            return null;
        double d = ts.doubleValue();
        if (d != Math.rint(d) || d < 0 || d > 253402300799999.0)
            return null;
        return new Event(n, id.textValue(), type.textValue(), ts.longValue());
    }

    /** The member at `path`, or null when some part is missing. */
    static JsonNode field(JsonNode ev, String[] path) {
        JsonNode n = ev;
        for (String p : path) {
            if (n == null || !n.isObject())
                return null;
            n = n.get(p);
        }
        return n;
    }

    /** A string as it is, a number as JavaScript writes it, else null. */
    static String text(JsonNode v) {
        if (v == null)
            return null;
        if (v.isTextual())
            return v.textValue();
        if (v.isNumber())
            return number(v.doubleValue());
        return null;
    }

    /** Number.prototype.toString() for the cases keys meet: integers up to
     *  2^53 exactly; others from the digits of Double.toString, which in
     *  Java 17 are not always the shortest (bench/peer/README.md). */
    static String number(double d) {
        if (d == 0)
            return "0";
        if (d == Math.rint(d) && Math.abs(d) <= 9007199254740992.0)
            return Long.toString((long) d);
        String s = Double.toString(d);
        double a = Math.abs(d);
        if (a >= 1e-6 && a < 1e21)
            return new BigDecimal(s).stripTrailingZeros().toPlainString();
        if (s.contains("E")) {
            String[] p = s.split("E");
            String mant = p[0].endsWith(".0") ? p[0].substring(0, p[0].length() - 2) : p[0];
            int e = Integer.parseInt(p[1]);
            return mant + "e" + (e > 0 ? "+" : "") + e;
        }
        return s.endsWith(".0") ? s.substring(0, s.length() - 2) : s;
    }

    /** The text of each group_by / key path joined by '|', or null. */
    static String key(JsonNode ev, String[][] paths) {
        if (paths.length == 1)
            return text(field(ev, paths[0]));
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < paths.length; i++) {
            String t = text(field(ev, paths[i]));
            if (t == null)
                return null;
            if (i > 0)
                b.append('|');
            b.append(t);
        }
        return b.toString();
    }
}
