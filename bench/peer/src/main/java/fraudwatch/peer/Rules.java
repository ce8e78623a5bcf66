/* Rules.java — fraudwatch's rule files, read for the peer.
 *
 * Owns loading a rules directory (every *.json file: an array of rules or
 * {"rules": [...]}, every NAME.list file: the watchlist NAME) and keeping the
 * rules whose ids were asked for, as the three kinds of docs/rules.md: plain,
 * threshold (count / sum / distinct over a sliding window) and sequence.  It
 * reads the patterns, windows, limits, suppression and lists from the same
 * files fraudwatch reads, so the two cannot drift apart; it is no validator
 * (`fraudwatch rules check` is): a rule it cannot represent is refused with
 * its id and the reason, never silently changed.
 */
package fraudwatch.peer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Stream;

final class Rules {
    static final int PLAIN = 0, THRESHOLD = 1, SEQUENCE = 2;
    static final int COUNT = 0, SUM = 1, DISTINCT = 2;

    /** One condition of a `where` (docs/rules.md section 4). */
    static final class Cond {
        String[] field;
        Pattern regex;
        boolean negate;          // not_regex, not_in_list
        Set<String> list;
        String op;
        Double num;              // value a number
        String str;              // value a string
        List<Cond> any;

        boolean holds(JsonNode ev) {
            if (any != null) {
                for (Cond c : any)
                    if (c.holds(ev))
                        return true;
                return false;
            }
            JsonNode v = Event.field(ev, field);
            if (regex != null) {
                boolean m = v != null && v.isTextual() && regex.matcher(v.textValue()).find();
                return m != negate;
            }
            if (list != null) {
                boolean m = v != null && v.isTextual() && list.contains(v.textValue());
                return m != negate;
            }
            if (num != null) {
                if (v == null || !v.isNumber())
                    return false;
                double x = v.doubleValue(), y = num;
                switch (op) {
                    case "<": return x < y;
                    case "<=": return x <= y;
                    case ">": return x > y;
                    case ">=": return x >= y;
                    case "==": return x == y;
                    default: return x != y;
                }
            }
            if (v == null || !v.isTextual())
                return false;
            return op.equals("==") == v.textValue().equals(str);
        }
    }

    static boolean all(List<Cond> where, JsonNode ev) {
        for (Cond c : where)
            if (!c.holds(ev))
                return false;
        return true;
    }

    static final class Step {
        String event;
        List<Cond> where;
        String[] key;
    }

    static final class Rule {
        int index;
        String id;
        int kind;
        String event;                 // plain, threshold
        List<Cond> where = List.of();
        String[] subject;             // plain
        long suppressMs;
        String[][] groupBy;           // threshold
        long windowMs;
        int agg;
        String[] aggField;
        String cmp;
        double limit;
        long limitMicro;
        Step[] steps;                 // sequence
        long withinMs;

        boolean matchesType(String type) {
            return event.equals("*") || event.equals(type);
        }

        /** The comparison of the threshold against an aggregate. */
        boolean compare(double x) {
            double y = agg == SUM ? (double) limitMicro : limit;
            switch (cmp) {
                case ">=": return x >= y;
                case ">": return x > y;
                case "<=": return x <= y;
                case "<": return x < y;
                default: return x == y;
            }
        }
    }

    final Map<String, Set<String>> lists = new HashMap<>();
    final List<Rule> rules = new ArrayList<>();

    static String[] path(String p) {
        return p.split("\\.");
    }

    static Rules load(Path dir, Set<String> ids) throws IOException {
        Rules rs = new Rules();
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.sorted().toList();
        }
        for (Path f : files) {
            String name = f.getFileName().toString();
            if (name.startsWith(".") || !name.endsWith(".list"))
                continue;
            Set<String> set = new HashSet<>();
            for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
                String v = line.strip();
                if (!v.isEmpty() && !v.startsWith("#"))
                    set.add(v);
            }
            rs.lists.put(name.substring(0, name.length() - 5), set);
        }
        ObjectMapper om = new ObjectMapper();
        Set<String> found = new HashSet<>();
        for (Path f : files) {
            String name = f.getFileName().toString();
            if (name.startsWith(".") || !name.endsWith(".json"))
                continue;
            JsonNode root = om.readTree(f.toFile());
            JsonNode arr = root.isArray() ? root : root.get("rules");
            for (JsonNode r : arr) {
                String id = r.get("id").asText();
                if (!ids.contains(id))
                    continue;
                if (r.has("enabled") && !r.get("enabled").asBoolean())
                    throw new IllegalArgumentException(name + ": rule " + id + " is disabled");
                Rule rule = rs.rule(r, name + ": rule " + id);
                rule.index = rs.rules.size();
                rs.rules.add(rule);
                found.add(id);
            }
        }
        for (String id : ids)
            if (!found.contains(id))
                throw new IllegalArgumentException("rule " + id + " not found in " + dir);
        return rs;
    }

    private Rule rule(JsonNode r, String where) {
        Rule x = new Rule();
        x.id = r.get("id").asText();
        if (r.has("sequence")) {
            x.kind = SEQUENCE;
            JsonNode st = r.get("sequence");
            x.steps = new Step[st.size()];
            for (int i = 0; i < st.size(); i++) {
                Step s = new Step();
                s.event = st.get(i).get("event").asText();
                s.where = conds(st.get(i).get("where"), where);
                s.key = path(st.get(i).get("key").asText());
                x.steps[i] = s;
            }
            x.withinMs = r.get("within_s").asLong() * 1000;
            x.suppressMs = r.has("suppress_s") ? r.get("suppress_s").asLong() * 1000 : x.withinMs;
            return x;
        }
        x.event = r.get("event").asText();
        x.where = conds(r.get("where"), where);
        JsonNode th = r.get("threshold");
        if (th == null) {
            x.kind = PLAIN;
            x.subject = r.has("subject") ? path(r.get("subject").asText()) : null;
            x.suppressMs = r.has("suppress_s") ? r.get("suppress_s").asLong() * 1000 : 0;
            if (x.suppressMs != 0)
                throw new IllegalArgumentException(where + ": a plain rule with suppress_s > 0 "
                        + "needs keyed state the peer does not implement");
            return x;
        }
        x.kind = THRESHOLD;
        JsonNode g = th.get("group_by");
        if (g.isArray()) {
            x.groupBy = new String[g.size()][];
            for (int i = 0; i < g.size(); i++)
                x.groupBy[i] = path(g.get(i).asText());
        } else {
            x.groupBy = new String[][] { path(g.asText()) };
        }
        x.windowMs = th.get("window_s").asLong() * 1000;
        x.suppressMs = r.has("suppress_s") ? r.get("suppress_s").asLong() * 1000 : x.windowMs;
        JsonNode a;
        if ((a = th.get("count")) != null) {
            x.agg = COUNT;
        } else if ((a = th.get("sum")) != null) {
            x.agg = SUM;
        } else if ((a = th.get("distinct")) != null) {
            x.agg = DISTINCT;
        } else {
            throw new IllegalArgumentException(where + ": threshold without count, sum or distinct");
        }
        if (a.has("field"))
            x.aggField = path(a.get("field").asText());
        for (String c : new String[] { ">=", ">", "<=", "<", "==" }) {
            if (a.has(c)) {
                x.cmp = c;
                x.limit = a.get(c).asDouble();
                x.limitMicro = Math.round(x.limit * 1e6);
            }
        }
        return x;
    }

    private List<Cond> conds(JsonNode arr, String where) {
        List<Cond> out = new ArrayList<>();
        if (arr == null)
            return out;
        for (JsonNode c : arr)
            out.add(cond(c, where));
        return out;
    }

    private Cond cond(JsonNode c, String where) {
        Cond x = new Cond();
        if (c.has("any")) {
            x.any = conds(c.get("any"), where);
            return x;
        }
        x.field = path(c.get("field").asText());
        boolean ci = c.has("flags") && c.get("flags").asText().contains("i");
        int flags = ci ? Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE : 0;
        if (c.has("regex") || c.has("not_regex")) {
            x.negate = c.has("not_regex");
            x.regex = Pattern.compile(c.get(x.negate ? "not_regex" : "regex").asText(), flags);
        } else if (c.has("in_list") || c.has("not_in_list")) {
            x.negate = c.has("not_in_list");
            String name = c.get(x.negate ? "not_in_list" : "in_list").asText();
            x.list = lists.get(name);
            if (x.list == null)
                throw new IllegalArgumentException(where + ": no watchlist " + name);
        } else if (c.has("op")) {
            x.op = c.get("op").asText();
            JsonNode v = c.get("value");
            if (v.isNumber())
                x.num = v.doubleValue();
            else
                x.str = v.asText();
        } else {
            throw new IllegalArgumentException(where + ": a condition the peer does not know: " + c);
        }
        return x;
    }
}
