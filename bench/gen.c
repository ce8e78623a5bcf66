/* bench/gen.c — deterministic generator of telecom and bank traffic for
 * fraudwatch benchmarks and detection reports.
 *
 * What it does
 *   Writes N events as JSONL (SPEC §1 standard fields) for a synthetic
 *   population of subscribers: ordinary calls, SMS and transfers, plus planted
 *   fraud scenarios, each built to trip one or more of the shipped rules
 *   (the rule files in rules/).  With --truth it also writes one JSON line per planted
 *   scenario naming the rules that must fire and the alert subject they must
 *   report, so a report tool can compute recall per scenario and precision
 *   over all alerts by matching (rule_id, subject).
 *
 * Why it is shaped so
 *   - Determinism.  Four xoshiro256** streams (population, scenario plan,
 *     background, lateness), each seeded from --seed through splitmix64.
 *     Same seed and options give byte-identical output; changing one knob
 *     (say --late-frac) does not reshuffle the others.  No rand(), no clock.
 *   - Honest precision.  Ordinary traffic stays clear of every rule by
 *     construction, not by luck:
 *       * calls: each subscriber may place at most 6 calls shorter than 30 s
 *         in any 900 s (a "busy" courier-like caller: 20, half of R101's 40
 *         and below R102's 25) — a call that would break the cap is made
 *         longer instead;
 *       * transfers go to a fixed set of 6 contacts laid out as a circulant
 *         graph, so every account has exactly 6 possible payers (R301 needs
 *         10); at most 3 transfers >= 500 yuan per payer per 24 h (R303
 *         needs 4 to the same payee); amounts capped at 20 000 (R302 needs
 *         500 000 in a day: 6 payers x 3 x 20 000 < 500 000);
 *       * no virtual-operator caller, no overseas caller, no listed number,
 *         no trigger word in any ordinary SMS.
 *     Near misses are kept on purpose: busy callers at half the burst
 *     threshold, refund SMS without a link, bill SMS with a link, "0086"
 *     roaming callers, calls *to* overseas numbers, 3 repeated payments,
 *     9-payer collections, 480 000-yuan inflows.
 *   - Isolated victims.  Sequence rules (R401-R403) key on the person; an
 *     ordinary transfer by someone who just got a planted call would fire
 *     them by accident.  So the population is split: background traffic only
 *     ever touches the first part; every planted victim (and near-miss actor)
 *     is taken, once, from a reserved part that ordinary traffic never
 *     touches.  Planted scenarios therefore trip exactly the rules written in
 *     the truth file, and nothing else does.
 *   - Lateness.  Only background events are emitted late (held back 1-120 s
 *     of event time in a small heap); planted events stay in time order so
 *     every scenario stays inside its rule's window.  A late background
 *     event can only lower a window aggregate (SPEC §2 semantics), so the
 *     caps above hold under lateness too.
 *   - Speed.  Lines are formatted by hand into a fixed line buffer and a
 *     1 MiB output buffer; late lines live in a pool of fixed slots.  No
 *     per-event allocation.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ID_LEN      18          /* "e" + 16 hex digits + NUL */
#define NUM_CAP     24          /* phone numbers and account numbers */
#define LINE_CAP    4096        /* one rendered event */
#define TEXT_CAP    512         /* one expanded SMS text */
#define SLOT_SIZE   1024        /* one late event waiting in the pool */
#define N_CONTACTS  6
#define RING_ORD    6           /* short calls per 900 s, ordinary caller */
#define RING_BUSY   20          /* short calls per 900 s, busy caller */
#define RING_BIG    3           /* transfers >= 500 yuan per 24 h per payer */
#define TRUTH_IDS   128
#define PLAN_ID_BASE (UINT64_C(1) << 40)
#define F_VIRTUAL   1u

static const double PI = 3.14159265358979323846;

/* ------------------------------------------------------------------ */
/* errors and memory                                                   */

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

static _Noreturn void die(const char *fmt, ...) PRINTF_LIKE(1, 2);

static _Noreturn void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die("out of memory (%zu bytes)", n);
    return q;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

/* ------------------------------------------------------------------ */
/* PRNG: splitmix64 for seeding, xoshiro256** for the streams           */

typedef struct {
    uint64_t s[4];
} rng_t;

static uint64_t mix64(uint64_t z)   /* splitmix64 finalizer: a bijection */
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x)
{
    *x += UINT64_C(0x9e3779b97f4a7c15);
    return mix64(*x);
}

static void rng_seed(rng_t *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * UINT64_C(0xd1b54a32d192ed03));
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n), unbiased (rejection of the short last interval). */
static uint64_t rng_below(rng_t *r, uint64_t n)
{
    uint64_t threshold = (0 - n) % n;
    uint64_t x;
    do
        x = rng_next(r);
    while (x < threshold);
    return x % n;
}

static int64_t rng_range(rng_t *r, int64_t lo, int64_t hi)   /* inclusive */
{
    return lo + (int64_t)rng_below(r, (uint64_t)(hi - lo) + 1);
}

static double rng_unit(rng_t *r)   /* [0, 1) */
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static int rng_chance(rng_t *r, double p)
{
    return rng_unit(r) < p;
}

static double rng_normal(rng_t *r)   /* Box-Muller, one value per call */
{
    double u1 = 1.0 - rng_unit(r);   /* (0, 1] */
    double u2 = rng_unit(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
}

static double rng_lognormal(rng_t *r, double median, double sigma)
{
    return median * exp(sigma * rng_normal(r));
}

static double rng_exp(rng_t *r, double mean)
{
    return -mean * log1p(-rng_unit(r));
}

static double clampd(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ------------------------------------------------------------------ */
/* buffered output                                                     */

typedef struct {
    FILE *f;
    const char *name;
    char *buf;
    size_t len, cap;
} out_t;

static void out_open(out_t *o, FILE *f, const char *name)
{
    o->f = f;
    o->name = name;
    o->cap = 1 << 20;
    o->len = 0;
    o->buf = xrealloc(NULL, o->cap);
}

static void out_flush(out_t *o)
{
    if (o->len && fwrite(o->buf, 1, o->len, o->f) != o->len)
        die("write %s: %s", o->name, strerror(errno));
    o->len = 0;
}

static void out_write(out_t *o, const char *p, size_t n)
{
    if (o->len + n > o->cap)
        out_flush(o);
    if (n > o->cap) {
        if (fwrite(p, 1, n, o->f) != n)
            die("write %s: %s", o->name, strerror(errno));
        return;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void out_puts(out_t *o, const char *s)
{
    out_write(o, s, strlen(s));
}

static void out_close(out_t *o)
{
    out_flush(o);
    if (fflush(o->f) != 0 || ferror(o->f))
        die("write %s: %s", o->name, strerror(errno));
    if (o->f != stdout && fclose(o->f) != 0)
        die("close %s: %s", o->name, strerror(errno));
    free(o->buf);
    o->buf = NULL;
}

/* ------------------------------------------------------------------ */
/* one JSON line, built by hand                                        */

typedef struct {
    char b[LINE_CAP];
    size_t n;
} line_t;

static void lb_raw(line_t *l, const char *s, size_t n)
{
    if (l->n + n >= LINE_CAP)
        die("internal: event line longer than %d bytes", LINE_CAP);
    memcpy(l->b + l->n, s, n);
    l->n += n;
}

#define LB_LIT(l, s) lb_raw((l), (s), sizeof(s) - 1)

static void lb_jstr(line_t *l, const char *s)   /* quoted, escaped */
{
    static const char hex[] = "0123456789abcdef";
    LB_LIT(l, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            lb_raw(l, esc, 2);
        } else if (*p < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            lb_raw(l, esc, 6);
        } else {
            lb_raw(l, (const char *)p, 1);
        }
    }
    LB_LIT(l, "\"");
}

static void lb_u64(line_t *l, uint64_t v)
{
    char tmp[24];
    int i = (int)sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    lb_raw(l, tmp + i, sizeof tmp - (size_t)i);
}

static void lb_i64(line_t *l, int64_t v)
{
    if (v < 0) {
        LB_LIT(l, "-");
        lb_u64(l, (uint64_t)0 - (uint64_t)v);
    } else {
        lb_u64(l, (uint64_t)v);
    }
}

/* Yuan amount from cents: "1234", "1234.5" or "1234.56". */
static void lb_cents(line_t *l, int64_t cents)
{
    lb_i64(l, cents / 100);
    int c = (int)(cents % 100);
    if (c) {
        char frac[3] = {'.', (char)('0' + c / 10), (char)('0' + c % 10)};
        lb_raw(l, frac, c % 10 ? 3 : 2);
    }
}

/* ------------------------------------------------------------------ */
/* set of strings already in use (numbers, accounts): hashes only      */

typedef struct {
    uint64_t *slot;
    size_t cap, count;
} strset_t;

static uint64_t hash_str(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603);
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= UINT64_C(1099511628211);
    }
    h = mix64(h);
    return h ? h : 1;
}

static void strset_put_hash(strset_t *s, uint64_t h)
{
    size_t i = (size_t)h & (s->cap - 1);
    while (s->slot[i])
        i = (i + 1) & (s->cap - 1);
    s->slot[i] = h;
    s->count++;
}

/* Adds str; returns 1 if it was new, 0 if already present. */
static int strset_add(strset_t *s, const char *str)
{
    uint64_t h = hash_str(str);
    if (2 * (s->count + 1) > s->cap) {
        uint64_t *old = s->slot;
        size_t oldcap = s->cap;
        s->cap = oldcap ? oldcap * 2 : 1024;
        s->slot = xcalloc(s->cap, sizeof *s->slot);
        s->count = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i])
                strset_put_hash(s, old[i]);
        free(old);
    }
    for (size_t i = (size_t)h & (s->cap - 1); s->slot[i]; i = (i + 1) & (s->cap - 1))
        if (s->slot[i] == h)
            return 0;
    strset_put_hash(s, h);
    return 1;
}

/* ------------------------------------------------------------------ */
/* watchlists                                                          */

typedef struct {
    char **v;
    size_t n, cap;
} strlist_t;

static void read_list(const char *dir, const char *name, strlist_t *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot read watchlist %s: %s (pass --lists DIR, a directory "
            "holding fraud_numbers.list and mule_accounts.list)", path, strerror(errno));
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) != -1) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *b = line, *e = line + strlen(line);
        while (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n')
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
            e--;
        if (e == b)
            continue;
        if ((size_t)(e - b) >= NUM_CAP)
            die("%s: value too long: %.*s", path, (int)(e - b), b);
        *e = '\0';
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 64;
            out->v = xrealloc(out->v, out->cap * sizeof *out->v);
        }
        out->v[out->n] = xrealloc(NULL, (size_t)(e - b) + 1);
        memcpy(out->v[out->n], b, (size_t)(e - b) + 1);
        out->n++;
    }
    if (ferror(f))
        die("read %s: %s", path, strerror(errno));
    free(line);
    fclose(f);
}

/* ------------------------------------------------------------------ */
/* static tables                                                       */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const MOBILE_PREFIX[] = {
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
    "145", "147", "150", "151", "152", "153", "155", "156", "157", "158",
    "159", "166", "173", "175", "176", "177", "178", "180", "181", "182",
    "183", "184", "185", "186", "187", "188", "189", "191", "198", "199",
};
static const char *const VIRTUAL_PREFIX[] = {"170", "171", "162", "165", "167"};

static const struct country {
    const char *cc;
    int local_len;
    const char *name;
} COUNTRY[] = {
    {"855", 9, "柬埔寨"}, {"95", 9, "缅甸"}, {"63", 10, "菲律宾"},
    {"60", 9, "马来西亚"}, {"66", 9, "泰国"}, {"84", 9, "越南"},
    {"1", 10, "美国"}, {"44", 10, "英国"}, {"81", 10, "日本"},
    {"82", 10, "韩国"}, {"852", 8, "中国香港"}, {"853", 8, "中国澳门"},
    {"886", 9, "中国台湾"}, {"971", 9, "阿联酋"}, {"856", 9, "老挝"},
};

static const char *const CITY[] = {
    "北京", "上海", "广州", "深圳", "杭州", "南京", "苏州", "成都", "重庆", "武汉",
    "西安", "天津", "长沙", "郑州", "青岛", "济南", "沈阳", "大连", "哈尔滨", "长春",
    "福州", "厦门", "合肥", "南昌", "南宁", "昆明", "贵阳", "太原", "石家庄", "兰州",
    "乌鲁木齐", "呼和浩特", "海口", "宁波", "东莞", "佛山",
};

static const struct bank {
    const char *bin;
    int len;
} BANK[] = {
    {"622202", 19}, {"621226", 19}, {"622848", 19}, {"621700", 19},
    {"622700", 19}, {"621483", 16}, {"622588", 16}, {"622609", 17},
    {"621661", 19}, {"622262", 19}, {"622155", 16}, {"623058", 19},
};

static const char *const BANK_NAME[] = {"工商银行", "建设银行", "农业银行", "中国银行", "招商银行", "交通银行"};
static const char *const SHOP[] = {"优品生活馆", "星辰数码", "悦家家居", "鲜果时光", "潮流服饰", "母婴之家"};
static const char *const NAME[] = {"小明", "小红", "王磊", "李娜", "张伟", "刘洋", "陈静", "杨帆", "赵敏", "周杰"};

static const char *const SERVICE_SENDER[] = {
    "95588", "95533", "95599", "95555", "95566", "10086", "10010", "10000",
    "95338", "95311", "12306", "1069012345", "10690000888", "106575261",
};

static const struct weighted {
    const char *v;
    int w;
} CHANNEL_BG[] = {
    {"mobile_bank", 55}, {"third_party", 25}, {"online", 12}, {"atm", 5}, {"counter", 3},
}, CHANNEL_FRAUD[] = {
    {"mobile_bank", 50}, {"third_party", 20}, {"online", 20}, {"atm", 5}, {"counter", 5},
};

/* Ordinary SMS.  None contains a trigger of R201/R202/R203; a few are near
 * misses on purpose (refund without link, link without prize words, "公安机关"
 * without "公安局", "兼职" without "日结"). */
static const char *const SMS_PERSONAL[] = {
    "妈，我今天加班，晚点回家，饭菜留一点就行",
    "明天上午{TIME}在三楼会议室开周例会，请准时参加",
    "会议改到下午{TIME}，地点不变，材料我已经打印好了",
    "周末回家吃饭吗？你爸买了鱼",
    "我到楼下了，你下来吧",
    "孩子的家长会定在周五下午，你有空去吗",
    "晚上一起吃火锅？{TIME}老地方见",
    "报告我已经发你邮箱了，麻烦看一下",
    "生日快乐！祝你天天开心，{NAME}",
    "记得带伞，今天下午有雨",
    "你寄的东西收到了，谢谢",
    "下周出差三天，家里的事你多费心",
    "项目评审推迟到下周二，材料再完善一下",
    "房租我已经转给房东了，这个月{AMT}元",
    "周末兼职的事我们下周再聊",
    "爸，体检报告出来了，一切正常，别担心",
    "今晚的会议纪要我整理好了，明早发群里",
    "{NAME}，明天{TIME}高铁站接你",
};

static const char *const SMS_SERVICE[] = {
    "【顺丰速运】您的快递{PKG}已到达小区驿站，请凭取件码{CODE4}于今日{TIME}前领取",
    "【中通快递】您的包裹{PKG}正在派送中，快递员电话{PHONE}",
    "【京东】您的订单已签收，感谢您的支持",
    "【{BANK}】您尾号{TAIL}的账户{MD}{TIME}支出人民币{AMT}元",
    "【支付宝】验证码{CODE}，您正在进行身份验证，切勿告知他人",
    "【微信支付】验证码{CODE}，5分钟内有效",
    "您的验证码为{CODE}，公安机关提醒：任何索要验证码的都是诈骗",
    "【中国移动】您本月话费账单已生成，共计{AMT}元，详情请登录 https://www.10086.cn 查询",
    "【中国联通】尊敬的客户，您的流量已使用80%，详情 http://u.10010.cn/",
    "【淘宝】您申请的退款已原路退回，预计1-3个工作日到账",
    "【平安保险】您的车险将于下月到期，请及时续保",
    "【国家电网】您的电费账单{AMT}元已出账，请按时缴纳",
    "【12306】您的车票已出票，{MD}{TIME}开，请携带身份证乘车",
    "【美团】您的外卖已送达，祝您用餐愉快",
    "【滴滴出行】您的行程已结束，本次车费{AMT}元",
};

/* Planted texts.  Each contains a literal trigger of its rule and none of
 * the other SMS rules' triggers. */
static const char *const SMS_POLICE[] = {   /* R201 */
    "【{CITY}市公安局】您的身份证涉嫌一起洗钱案件，请立即配合调查，联系专案民警{PHONE}",
    "您名下银行卡涉嫌洗钱，已被列入资金清查名单，请将资金转入安全账户核查",
    "【检察院通知】您涉嫌非法集资，通缉令已下发，请于今日内联系办案人员{PHONE}",
    "您的账户因涉案即将被冻结，请配合调查并将资金转入指定安全账户",
};
static const char *const SMS_PRIZE[] = {    /* R202: word + link */
    "【{SHOP}】您购买的商品存在质量问题，可办理双倍退款，请点击 http://tk-{RND}.top/ 办理",
    "恭喜您在周年庆活动中中奖，奖品为手机一部，领奖请登录 www.{RND}-prize.cc 填写信息",
    "您的积分即将清零，积分兑换现金请访问 http://jf{RND}.xyz/ 操作",
    "【快递理赔】您的快递丢失，我司将为您理赔{AMT}元，请点击 https://kd-{RND}.cn/ 办理",
};
static const char *const SMS_TASK[] = {     /* R203 */
    "招聘网络兼职，在家刷单，一单一结，日赚300-500元，加QQ{QQ}",
    "点赞关注即可返利，每单佣金5元，详情加微信{WX}",
    "诚招兼职打字员，日结工资，需先垫付押金{AMT}元",
    "高额返利任务，完成三单即可提现，名额有限，加微信{WX}",
};
static const char *const SMS_ACQUAINTANCE[] = {   /* R204: no trigger words */
    "我是你领导，明天上午来我办公室一趟",
    "猜猜我是谁？我换新号码了，存一下",
    "你好，我是{NAME}的老师，孩子在学校有点事，方便回个电话吗",
    "老同学，好久不见，最近手头有点紧，方便说话吗",
};
static const char *const SMS_LINK[] = {     /* R403 step 2: link, no R201/R202 words */
    "【ETC服务】您的ETC认证已失效，请登录 http://etc-{RND}.top/ 重新认证，逾期将停用",
    "您的医保卡需要年审，请点击 https://yb{RND}.cn/ 完成认证",
    "【{BANK}】您的手机银行证书已过期，请登录 http://{RND}-bank.xyz/ 更新",
    "您的包裹地址有误无法派送，请访问 www.{RND}-express.com 修改地址",
};

/* ------------------------------------------------------------------ */
/* scenarios                                                           */

enum kind {
    SC_ROBOCALL, SC_FANOUT, SC_VIRTUAL, SC_OVERSEAS, SC_REPORTED_CALL,
    SC_REPORTED_CALL_TRANSFER, SC_POLICE_SMS, SC_POLICE_SMS_TRANSFER,
    SC_PRIZE_LINK, SC_TASK_SCAM, SC_REPORTED_SMS, SC_MULE_FANIN,
    SC_LARGE_INFLOW, SC_ESCALATING, SC_MULE_TRANSFER, SC_OVERSEAS_LINK,
    NM_REPEAT, NM_COLLECTOR, NM_LARGE,
    KIND_COUNT
};

static const struct kind_info {
    const char *name;
    double per_million;   /* planted per 10^6 events at --fraud-rate 1 */
    int max_victims;      /* reserved subscribers one instance may take */
    int fraud;            /* 1: scaled by --fraud-rate, in the truth file */
} KIND[KIND_COUNT] = {
    [SC_ROBOCALL]               = {"robocall_burst", 6, 0, 1},
    [SC_FANOUT]                 = {"short_call_fanout", 6, 0, 1},
    [SC_VIRTUAL]                = {"virtual_operator_call", 30, 0, 1},
    [SC_OVERSEAS]               = {"overseas_call", 30, 3, 1},
    [SC_REPORTED_CALL]          = {"reported_number_call", 30, 1, 1},
    [SC_REPORTED_CALL_TRANSFER] = {"reported_call_then_transfer", 15, 1, 1},
    [SC_POLICE_SMS]             = {"police_sms", 15, 1, 1},
    [SC_POLICE_SMS_TRANSFER]    = {"police_sms_then_transfer", 15, 1, 1},
    [SC_PRIZE_LINK]             = {"prize_link_sms", 30, 0, 1},
    [SC_TASK_SCAM]              = {"task_scam_sms", 15, 0, 1},
    [SC_REPORTED_SMS]           = {"reported_number_sms", 20, 0, 1},
    [SC_MULE_FANIN]             = {"mule_fan_in", 6, 16, 1},
    [SC_LARGE_INFLOW]           = {"large_inflow", 6, 6, 1},
    [SC_ESCALATING]             = {"escalating_payments", 10, 1, 1},
    [SC_MULE_TRANSFER]          = {"mule_account_transfer", 20, 1, 1},
    [SC_OVERSEAS_LINK]          = {"overseas_call_link_transfer", 12, 1, 1},
    [NM_REPEAT]                 = {"near_miss_repeat_payments", 15, 1, 0},
    [NM_COLLECTOR]              = {"near_miss_collection", 8, 9, 0},
    [NM_LARGE]                  = {"near_miss_large_inflow", 8, 3, 0},
};

typedef struct {
    int64_t ts;
    uint64_t seq;
    uint32_t off, len;
} plan_ev_t;

typedef struct {
    int64_t release;
    uint64_t seq;
    uint32_t slot, len;
} pend_t;

typedef struct {
    char id[TRUTH_IDS][ID_LEN];
    size_t n;
} idlist_t;

/* ------------------------------------------------------------------ */
/* generator state                                                     */

typedef struct {
    /* options */
    uint64_t events, seed;
    int64_t t0;
    double rate, late_frac, fraud_rate;
    uint32_t subscribers;
    const char *truth_path, *lists_dir, *out_path;
    int quiet;

    /* derived */
    int64_t span_ms;
    uint64_t id_key;
    rng_t r_pop, r_plan, r_bg, r_late;

    /* population: [0, n_bg) background, [n_bg, n_sub) reserved victims */
    uint32_t n_sub, n_bg, n_busy, n_heavy, n_medium, next_victim;
    char (*phone)[NUM_CAP];
    char (*acct)[NUM_CAP];
    uint8_t *city, *flags;
    uint32_t contact_off[N_CONTACTS];
    double mass_heavy, mass_medium, mass_total;
    strset_t used;
    strlist_t fraud, mule;
    uint32_t *mule_order;
    size_t mule_uses;

    /* caps that keep ordinary traffic clear of the rules */
    int64_t *ring_short, *ring_busy, *ring_big;
    uint8_t *ring_short_pos, *ring_busy_pos, *ring_big_pos;

    /* planted events, rendered, sorted by (ts, seq) before the merge */
    plan_ev_t *plan;
    size_t n_plan, cap_plan;
    char *arena;
    size_t arena_len, arena_cap;
    uint64_t plan_ids;

    /* late background events */
    pend_t *heap;
    size_t n_heap, cap_heap;
    char *slots;
    uint32_t *free_slot;
    size_t n_free, n_slots;

    out_t out, truth;
    int have_truth;

    /* statistics */
    uint64_t n_call, n_sms, n_transfer, n_late, truth_lines;
    uint32_t count[KIND_COUNT];
} gen_t;

/* ------------------------------------------------------------------ */
/* numbers, accounts, ids                                              */

static void digits(rng_t *r, char *out, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = (char)('0' + rng_below(r, 10));
}

static void make_mobile(rng_t *r, char out[NUM_CAP], const char *const *prefix, size_t np)
{
    memcpy(out, prefix[rng_below(r, np)], 3);
    digits(r, out + 3, 8);
    out[11] = '\0';
}

static int make_overseas(rng_t *r, char out[NUM_CAP])
{
    int c = (int)rng_below(r, COUNT(COUNTRY));
    size_t cl = strlen(COUNTRY[c].cc);
    out[0] = out[1] = '0';
    memcpy(out + 2, COUNTRY[c].cc, cl);
    digits(r, out + 2 + cl, COUNTRY[c].local_len);
    out[2 + cl + (size_t)COUNTRY[c].local_len] = '\0';
    return c;
}

static void make_account(rng_t *r, char out[NUM_CAP])
{
    const struct bank *b = &BANK[rng_below(r, COUNT(BANK))];
    size_t bl = strlen(b->bin);
    memcpy(out, b->bin, bl);
    digits(r, out + bl, b->len - (int)bl);
    out[b->len] = '\0';
}

static void fresh_mobile(gen_t *g, char out[NUM_CAP])
{
    do
        make_mobile(&g->r_plan, out, MOBILE_PREFIX, COUNT(MOBILE_PREFIX));
    while (!strset_add(&g->used, out));
}

static void fresh_virtual(gen_t *g, char out[NUM_CAP])
{
    do
        make_mobile(&g->r_plan, out, VIRTUAL_PREFIX, COUNT(VIRTUAL_PREFIX));
    while (!strset_add(&g->used, out));
}

static int fresh_overseas(gen_t *g, char out[NUM_CAP])
{
    int c;
    do
        c = make_overseas(&g->r_plan, out);
    while (!strset_add(&g->used, out));
    return c;
}

static void fresh_account(gen_t *g, rng_t *r, char out[NUM_CAP])
{
    do
        make_account(r, out);
    while (!strset_add(&g->used, out));
}

/* The shipped R103 pattern: ^(170|171|162|165|167)\d{8}$ */
static int is_virtual(const char *s)
{
    if (strlen(s) != 11 || strspn(s, "0123456789") != 11)
        return 0;
    for (size_t i = 0; i < COUNT(VIRTUAL_PREFIX); i++)
        if (memcmp(s, VIRTUAL_PREFIX[i], 3) == 0)
            return 1;
    return 0;
}

/* The shipped R104/R403 caller pattern: ^00(?!86) */
static int is_overseas(const char *s)
{
    return s[0] == '0' && s[1] == '0' && !(s[2] == '8' && s[3] == '6');
}

static const char *region_of(gen_t *g, const char *number)
{
    if (number[0] == '0' && number[1] == '0') {
        size_t best = 0;
        const char *name = "境外";
        for (size_t i = 0; i < COUNT(COUNTRY); i++) {
            size_t cl = strlen(COUNTRY[i].cc);
            if (cl > best && strncmp(number + 2, COUNTRY[i].cc, cl) == 0) {
                best = cl;
                name = COUNTRY[i].name;
            }
        }
        return name;
    }
    return CITY[rng_below(&g->r_plan, COUNT(CITY))];
}

/* Unique, random-looking: a bijection of the counter. */
static void make_id(const gen_t *g, uint64_t counter, char out[ID_LEN])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t v = mix64(counter ^ g->id_key);
    out[0] = 'e';
    for (int i = 0; i < 16; i++)
        out[1 + i] = hex[(v >> (60 - 4 * i)) & 15];
    out[17] = '\0';
}

static const char *pick_weighted(rng_t *r, const struct weighted *w, size_t n)
{
    int total = 0;
    for (size_t i = 0; i < n; i++)
        total += w[i].w;
    int x = (int)rng_below(r, (uint64_t)total);
    for (size_t i = 0; i < n; i++) {
        if (x < w[i].w)
            return w[i].v;
        x -= w[i].w;
    }
    return w[n - 1].v;
}

/* ------------------------------------------------------------------ */
/* SMS text templates                                                  */

static void expand(rng_t *r, const char *tpl, char out[TEXT_CAP])
{
    size_t n = 0;
    char tmp[64];
    while (*tpl) {
        const char *ins = NULL;
        size_t skip = 0;
        if (*tpl == '{') {
            const char *end = strchr(tpl, '}');
            if (!end)
                die("internal: bad template");
            size_t kl = (size_t)(end - tpl - 1);
            const char *k = tpl + 1;
            skip = kl + 2;
            ins = tmp;
#define KEY(s) (kl == sizeof(s) - 1 && memcmp(k, s, kl) == 0)
            if (KEY("CODE")) {
                digits(r, tmp, 6);
                tmp[6] = '\0';
            } else if (KEY("CODE4") || KEY("TAIL")) {
                digits(r, tmp, 4);
                tmp[4] = '\0';
            } else if (KEY("TIME")) {
                snprintf(tmp, sizeof tmp, "%02d:%02d", (int)rng_range(r, 8, 21),
                         (int)rng_below(r, 4) * 15);
            } else if (KEY("MD")) {
                snprintf(tmp, sizeof tmp, "%d月%d日", (int)rng_range(r, 1, 12),
                         (int)rng_range(r, 1, 28));
            } else if (KEY("AMT")) {
                double a = clampd(rng_lognormal(r, 150, 1.0), 1, 9999);
                snprintf(tmp, sizeof tmp, "%.2f", a);
            } else if (KEY("PKG")) {
                tmp[0] = 'S';
                tmp[1] = 'F';
                digits(r, tmp + 2, 12);
                tmp[14] = '\0';
            } else if (KEY("PHONE")) {
                make_mobile(r, tmp, MOBILE_PREFIX, COUNT(MOBILE_PREFIX));
            } else if (KEY("QQ")) {
                digits(r, tmp, 9);
                tmp[0] = (char)('1' + rng_below(r, 9));
                tmp[9] = '\0';
            } else if (KEY("WX") || KEY("RND")) {
                static const char an[] = "abcdefghijklmnopqrstuvwxyz0123456789";
                int len = (int)rng_range(r, 4, 6), o = 0;
                if (KEY("WX")) {
                    tmp[o++] = 'w';
                    tmp[o++] = 'x';
                }
                for (int i = 0; i < len; i++)
                    tmp[o++] = an[rng_below(r, sizeof an - 1)];
                tmp[o] = '\0';
            } else if (KEY("NAME")) {
                ins = NAME[rng_below(r, COUNT(NAME))];
            } else if (KEY("CITY")) {
                ins = CITY[rng_below(r, COUNT(CITY))];
            } else if (KEY("SHOP")) {
                ins = SHOP[rng_below(r, COUNT(SHOP))];
            } else if (KEY("BANK")) {
                ins = BANK_NAME[rng_below(r, COUNT(BANK_NAME))];
            } else {
                die("internal: unknown template key {%.*s}", (int)kl, k);
            }
#undef KEY
        } else {
            /* copy literal text up to the next placeholder */
            const char *next = strchr(tpl, '{');
            size_t ll = next ? (size_t)(next - tpl) : strlen(tpl);
            if (n + ll >= TEXT_CAP)
                die("internal: SMS text too long");
            memcpy(out + n, tpl, ll);
            n += ll;
            tpl += ll;
            continue;
        }
        size_t il = strlen(ins);
        if (n + il >= TEXT_CAP)
            die("internal: SMS text too long");
        memcpy(out + n, ins, il);
        n += il;
        tpl += skip;
    }
    out[n] = '\0';
}

/* ------------------------------------------------------------------ */
/* rendering                                                           */

static void render_call(line_t *l, const char *id, int64_t ts, const char *caller,
                        const char *callee, int64_t dur, const char *creg, const char *cereg)
{
    l->n = 0;
    LB_LIT(l, "{\"event_id\":");
    lb_jstr(l, id);
    LB_LIT(l, ",\"type\":\"call\",\"ts\":");
    lb_i64(l, ts);
    LB_LIT(l, ",\"caller\":");
    lb_jstr(l, caller);
    LB_LIT(l, ",\"callee\":");
    lb_jstr(l, callee);
    LB_LIT(l, ",\"duration_s\":");
    lb_i64(l, dur);
    LB_LIT(l, ",\"caller_region\":");
    lb_jstr(l, creg);
    LB_LIT(l, ",\"callee_region\":");
    lb_jstr(l, cereg);
    LB_LIT(l, "}\n");
}

static void render_sms(line_t *l, const char *id, int64_t ts, const char *sender,
                       const char *recipient, const char *text)
{
    l->n = 0;
    LB_LIT(l, "{\"event_id\":");
    lb_jstr(l, id);
    LB_LIT(l, ",\"type\":\"sms\",\"ts\":");
    lb_i64(l, ts);
    LB_LIT(l, ",\"sender\":");
    lb_jstr(l, sender);
    LB_LIT(l, ",\"recipient\":");
    lb_jstr(l, recipient);
    LB_LIT(l, ",\"text\":");
    lb_jstr(l, text);
    LB_LIT(l, "}\n");
}

static void render_transfer(line_t *l, const char *id, int64_t ts, const char *payer_acct,
                            const char *payer_phone, const char *payee_acct, int64_t cents,
                            const char *channel)
{
    l->n = 0;
    LB_LIT(l, "{\"event_id\":");
    lb_jstr(l, id);
    LB_LIT(l, ",\"type\":\"transfer\",\"ts\":");
    lb_i64(l, ts);
    LB_LIT(l, ",\"payer_account\":");
    lb_jstr(l, payer_acct);
    LB_LIT(l, ",\"payer_phone\":");
    lb_jstr(l, payer_phone);
    LB_LIT(l, ",\"payee_account\":");
    lb_jstr(l, payee_acct);
    LB_LIT(l, ",\"amount\":");
    lb_cents(l, cents);
    LB_LIT(l, ",\"channel\":");
    lb_jstr(l, channel);
    LB_LIT(l, "}\n");
}

/* ------------------------------------------------------------------ */
/* planting: events into the plan, scenarios into the truth file       */

static void plan_push(gen_t *g, int64_t ts, const line_t *l)
{
    if (g->arena_len + l->n > g->arena_cap) {
        g->arena_cap = (g->arena_cap + l->n) * 2;
        g->arena = xrealloc(g->arena, g->arena_cap);
    }
    if (g->n_plan == g->cap_plan) {
        g->cap_plan = g->cap_plan ? g->cap_plan * 2 : 1024;
        g->plan = xrealloc(g->plan, g->cap_plan * sizeof *g->plan);
    }
    memcpy(g->arena + g->arena_len, l->b, l->n);
    g->plan[g->n_plan] = (plan_ev_t){ts, g->n_plan, (uint32_t)g->arena_len, (uint32_t)l->n};
    g->arena_len += l->n;
    g->n_plan++;
}

static char *idl_next(idlist_t *ids)
{
    if (!ids) {
        static char scratch[ID_LEN];
        return scratch;
    }
    if (ids->n >= TRUTH_IDS)
        die("internal: scenario with more than %d events", TRUTH_IDS);
    return ids->id[ids->n++];
}

static void plan_call(gen_t *g, idlist_t *ids, int64_t ts, const char *caller, const char *callee,
                      int64_t dur, const char *creg, const char *cereg)
{
    line_t l;
    char *id = idl_next(ids);
    make_id(g, PLAN_ID_BASE + g->plan_ids++, id);
    render_call(&l, id, ts, caller, callee, dur, creg, cereg);
    plan_push(g, ts, &l);
}

static void plan_sms(gen_t *g, idlist_t *ids, int64_t ts, const char *sender,
                     const char *recipient, const char *const *tpl, size_t ntpl)
{
    line_t l;
    char text[TEXT_CAP];
    char *id = idl_next(ids);
    make_id(g, PLAN_ID_BASE + g->plan_ids++, id);
    expand(&g->r_plan, tpl[rng_below(&g->r_plan, ntpl)], text);
    render_sms(&l, id, ts, sender, recipient, text);
    plan_push(g, ts, &l);
}

static void plan_transfer(gen_t *g, idlist_t *ids, int64_t ts, uint32_t payer,
                          const char *payee_acct, int64_t cents)
{
    line_t l;
    char *id = idl_next(ids);
    make_id(g, PLAN_ID_BASE + g->plan_ids++, id);
    render_transfer(&l, id, ts, g->acct[payer], g->phone[payer], payee_acct, cents,
                    pick_weighted(&g->r_plan, CHANNEL_FRAUD, COUNT(CHANNEL_FRAUD)));
    plan_push(g, ts, &l);
}

static void out_jstr(out_t *o, const char *s)
{
    line_t l;
    l.n = 0;
    lb_jstr(&l, s);
    out_write(o, l.b, l.n);
}

/* rules: comma-separated rule ids ("R105,R401"). */
static void truth(gen_t *g, enum kind k, const char *rules, const char *subject,
                  const idlist_t *ids, int incidental)
{
    if (!g->have_truth)
        return;
    out_t *o = &g->truth;
    out_puts(o, "{\"scenario\":");
    out_jstr(o, KIND[k].name);
    out_puts(o, ",\"rules\":[");
    for (const char *p = rules; *p;) {
        size_t n = strcspn(p, ",");
        out_puts(o, p == rules ? "\"" : ",\"");
        out_write(o, p, n);
        out_puts(o, "\"");
        p += n + (p[n] == ',');
    }
    out_puts(o, "],\"subject\":");
    out_jstr(o, subject);
    out_puts(o, ",\"event_ids\":[");
    for (size_t i = 0; i < ids->n; i++) {
        out_puts(o, i ? ",\"" : "\"");
        out_write(o, ids->id[i], ID_LEN - 1);
        out_puts(o, "\"");
    }
    out_puts(o, incidental ? "],\"incidental\":true}\n" : "]}\n");
    g->truth_lines++;
}

/* A listed caller that is also virtual or overseas trips R103/R104 on the
 * caller as a side effect: say so in the truth file. */
static void truth_caller_side(gen_t *g, enum kind k, const char *caller, const char *call_id)
{
    static idlist_t one;
    one.n = 1;
    memcpy(one.id[0], call_id, ID_LEN);
    if (is_virtual(caller))
        truth(g, k, "R103", caller, &one, 1);
    else if (is_overseas(caller))
        truth(g, k, "R104", caller, &one, 1);
}

/* Scenarios are compressed to fit 40 % of the stream's event-time span;
 * compressing only shortens gaps, so every rule window still holds. */
static double fit(const gen_t *g, int64_t natural_ms)
{
    double room = 0.4 * (double)g->span_ms;
    return (double)natural_ms > room && natural_ms > 0 ? room / (double)natural_ms : 1.0;
}

static int64_t place(gen_t *g, int64_t len_ms)
{
    int64_t room = g->span_ms - len_ms;
    return g->t0 + (room > 0 ? rng_range(&g->r_plan, 0, room) : 0);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static uint32_t take_victim(gen_t *g)
{
    if (g->next_victim >= g->n_sub)
        die("internal: reserved victim pool exhausted");
    return g->next_victim++;
}

static uint32_t any_bg(gen_t *g, rng_t *r)
{
    return (uint32_t)rng_below(r, g->n_bg);
}

/* n distinct background subscribers */
static void distinct_bg(gen_t *g, uint32_t *out, int n)
{
    for (int i = 0; i < n; i++) {
        int dup;
        do {
            out[i] = any_bg(g, &g->r_plan);
            dup = 0;
            for (int j = 0; j < i; j++)
                dup |= out[j] == out[i];
        } while (dup);
    }
}

static int64_t yuan(double y)
{
    return (int64_t)llround(y * 100.0);
}

/* A call that is neither short nor suspicious by itself. */
static int64_t normal_duration(rng_t *r)
{
    return (int64_t)clampd(30 + rng_lognormal(r, 60, 0.9), 30, 3600);
}

/* Calls: robocall burst and short-call fan-out. */
static void sc_short_calls(gen_t *g, enum kind k)
{
    rng_t *r = &g->r_plan;
    int burst = k == SC_ROBOCALL;
    int n = burst ? (int)rng_range(r, 40, 80) : (int)rng_range(r, 25, 34);
    int64_t nat = burst ? rng_range(r, 120000, 540000) : rng_range(r, 200000, 840000);
    double f = fit(g, nat);
    int64_t len = (int64_t)((double)nat * f);
    int64_t t = place(g, len), off[80];
    uint32_t callee[80];
    char caller[NUM_CAP];
    static idlist_t ids;

    fresh_mobile(g, caller);
    const char *creg = CITY[rng_below(r, COUNT(CITY))];
    for (int i = 0; i < n; i++)
        off[i] = rng_range(r, 0, len);
    qsort(off, (size_t)n, sizeof off[0], cmp_i64);
    distinct_bg(g, callee, n);
    ids.n = 0;
    for (int i = 0; i < n; i++) {
        /* R101 counts calls < 15 s; the fan-out stays mostly 15-29 s */
        int64_t dur = burst ? rng_range(r, 0, 14) : rng_range(r, 5, 29);
        plan_call(g, &ids, t + off[i], caller, g->phone[callee[i]], dur, creg,
                  CITY[g->city[callee[i]]]);
    }
    /* a burst of 40+ short calls to distinct people is also a fan-out */
    truth(g, k, burst ? "R101,R102" : "R102", caller, &ids, 0);
}

/* Calls from a virtual-operator or an overseas number. */
static void sc_odd_caller(gen_t *g, enum kind k)
{
    rng_t *r = &g->r_plan;
    char caller[NUM_CAP];
    const char *creg;
    static idlist_t ids;
    int n = (int)rng_range(r, 1, 3);
    int64_t nat = rng_range(r, 0, 600000);
    int64_t len = (int64_t)((double)nat * fit(g, nat));
    int64_t t = place(g, len), off[3];

    if (k == SC_VIRTUAL) {
        fresh_virtual(g, caller);
        creg = CITY[rng_below(r, COUNT(CITY))];
    } else {
        creg = COUNTRY[fresh_overseas(g, caller)].name;
    }
    for (int i = 0; i < n; i++)
        off[i] = i == 0 ? 0 : rng_range(r, 0, len);
    qsort(off, (size_t)n, sizeof off[0], cmp_i64);
    ids.n = 0;
    for (int i = 0; i < n; i++) {
        /* an overseas call keys R403 on the callee: only isolated victims */
        uint32_t callee = k == SC_OVERSEAS ? take_victim(g) : any_bg(g, r);
        plan_call(g, &ids, t + off[i], caller, g->phone[callee], normal_duration(r), creg,
                  CITY[g->city[callee]]);
    }
    truth(g, k, k == SC_VIRTUAL ? "R103" : "R104", caller, &ids, 0);
}

/* Call from a reported number (R105), optionally followed by a transfer:
 * >= 1000 within 30 min (R401), or a small one (a near miss of R401). */
static void sc_reported_call(gen_t *g, enum kind k)
{
    rng_t *r = &g->r_plan;
    static idlist_t ids;
    const char *caller = g->fraud.v[rng_below(r, g->fraud.n)];
    uint32_t v = take_victim(g);
    int with_transfer = k == SC_REPORTED_CALL_TRANSFER;
    int small = !with_transfer && rng_chance(r, 0.3);
    int64_t gap = with_transfer ? rng_range(r, 60000, 1680000) : rng_range(r, 120000, 1500000);
    double f = fit(g, gap);
    int64_t len = (int64_t)((double)gap * f);
    int64_t t = place(g, len);
    char payee[NUM_CAP];

    ids.n = 0;
    plan_call(g, &ids, t, caller, g->phone[v],
              (int64_t)clampd(rng_lognormal(r, 300, 0.6), 60, 1800), region_of(g, caller),
              CITY[g->city[v]]);
    if (with_transfer || small) {
        fresh_account(g, r, payee);
        int64_t cents = with_transfer ? yuan(clampd(rng_lognormal(r, 8000, 0.9), 1000, 50000))
                                      : rng_range(r, 5000, 99999);
        plan_transfer(g, &ids, t + len, v, payee, cents);
    }
    truth(g, k, with_transfer ? "R105,R401" : "R105", g->phone[v], &ids, 0);
    truth_caller_side(g, k, caller, ids.id[0]);
}

/* Police-impersonation SMS (R201), optionally followed by a transfer:
 * >= 1000 within 1 h (R402), or a small one (a near miss of R402). */
static void sc_police(gen_t *g, enum kind k)
{
    rng_t *r = &g->r_plan;
    static idlist_t ids;
    char sender[NUM_CAP], payee[NUM_CAP];
    uint32_t v = take_victim(g);
    int with_transfer = k == SC_POLICE_SMS_TRANSFER;
    int small = !with_transfer && rng_chance(r, 0.3);
    int64_t gap = rng_range(r, 120000, 3300000);
    int64_t len = (int64_t)((double)gap * fit(g, gap));
    int64_t t = place(g, len);

    fresh_mobile(g, sender);
    ids.n = 0;
    plan_sms(g, &ids, t, sender, g->phone[v], SMS_POLICE, COUNT(SMS_POLICE));
    if (with_transfer || small) {
        fresh_account(g, r, payee);
        int64_t cents = with_transfer ? yuan(clampd(rng_lognormal(r, 20000, 0.9), 1000, 200000))
                                      : rng_range(r, 5000, 99999);
        plan_transfer(g, &ids, t + len, v, payee, cents);
    }
    truth(g, k, with_transfer ? "R201,R402" : "R201", g->phone[v], &ids, 0);
}

/* Single-event SMS scenarios: prize/refund link (R202), SMS from a reported
 * number (R204); and the task-scam sender (R203) writing to 1-5 people. */
static void sc_sms(gen_t *g, enum kind k)
{
    rng_t *r = &g->r_plan;
    static idlist_t ids;
    char sender[NUM_CAP];
    ids.n = 0;
    if (k == SC_TASK_SCAM) {
        int n = (int)rng_range(r, 1, 5);
        uint32_t to[5];
        int64_t nat = rng_range(r, 0, 600000);
        int64_t len = (int64_t)((double)nat * fit(g, nat));
        int64_t t = place(g, len), off[5];
        fresh_mobile(g, sender);
        distinct_bg(g, to, n);
        for (int i = 0; i < n; i++)
            off[i] = rng_range(r, 0, len);
        qsort(off, (size_t)n, sizeof off[0], cmp_i64);
        for (int i = 0; i < n; i++)
            plan_sms(g, &ids, t + off[i], sender, g->phone[to[i]], SMS_TASK, COUNT(SMS_TASK));
        truth(g, k, "R203", sender, &ids, 0);
        return;
    }
    uint32_t to = any_bg(g, r);
    int64_t t = place(g, 0);
    if (k == SC_PRIZE_LINK) {
        fresh_mobile(g, sender);
        plan_sms(g, &ids, t, sender, g->phone[to], SMS_PRIZE, COUNT(SMS_PRIZE));
        truth(g, k, "R202", g->phone[to], &ids, 0);
    } else {
        const char *listed = g->fraud.v[rng_below(r, g->fraud.n)];
        plan_sms(g, &ids, t, listed, g->phone[to], SMS_ACQUAINTANCE, COUNT(SMS_ACQUAINTANCE));
        truth(g, k, "R204", g->phone[to], &ids, 0);
    }
}

/* Many payers into one fresh account: mule fan-in (R301, 10-16 payers within
 * an hour, moderate sums) and its near miss (8-9 payers, small sums). */
static void sc_fan_in(gen_t *g, enum kind k)
{
    rng_t *r = &g->r_plan;
    static idlist_t ids;
    char payee[NUM_CAP];
    int mule = k == SC_MULE_FANIN;
    int n = mule ? (int)rng_range(r, 10, 16) : (int)rng_range(r, 8, 9);
    int64_t nat = rng_range(r, 600000, 3000000);
    int64_t len = (int64_t)((double)nat * fit(g, nat));
    int64_t t = place(g, len), off[16];

    fresh_account(g, r, payee);
    for (int i = 0; i < n; i++)
        off[i] = rng_range(r, 0, len);
    qsort(off, (size_t)n, sizeof off[0], cmp_i64);
    ids.n = 0;
    for (int i = 0; i < n; i++) {
        int64_t cents = mule ? yuan(clampd(rng_lognormal(r, 2000, 0.6), 500, 8000))
                             : rng_range(r, 5000, 48000);
        plan_transfer(g, mule ? &ids : NULL, t + off[i], take_victim(g), payee, cents);
    }
    if (mule)
        truth(g, k, "R301", payee, &ids, 0);
}

/* Large inflow: 2-6 payers, 520k-900k in total within a day (R302); near
 * miss: 1-3 payers, 300k-480k. */
static void sc_large_inflow(gen_t *g, enum kind k)
{
    rng_t *r = &g->r_plan;
    static idlist_t ids;
    char payee[NUM_CAP];
    int real = k == SC_LARGE_INFLOW;
    int n = real ? (int)rng_range(r, 2, 6) : (int)rng_range(r, 1, 3);
    int64_t total = real ? rng_range(r, 52000000, 90000000) : rng_range(r, 30000000, 48000000);
    int64_t nat = rng_range(r, 3600000, 72000000);
    int64_t len = (int64_t)((double)nat * fit(g, nat));
    int64_t t = place(g, len), off[6], w[6], wsum = 0, given = 0;

    fresh_account(g, r, payee);
    for (int i = 0; i < n; i++) {
        off[i] = rng_range(r, 0, len);
        w[i] = rng_range(r, 60, 140);
        wsum += w[i];
    }
    qsort(off, (size_t)n, sizeof off[0], cmp_i64);
    ids.n = 0;
    for (int i = 0; i < n; i++) {
        int64_t cents = i == n - 1 ? total - given : total * w[i] / wsum;
        given += cents;
        plan_transfer(g, real ? &ids : NULL, t + off[i], take_victim(g), payee, cents);
    }
    if (real)
        truth(g, k, "R302", payee, &ids, 0);
}

/* One payer paying one fresh account again and again: 4-6 escalating
 * payments >= 500 in a day (R303); near miss: exactly 3. */
static void sc_repeat_payments(gen_t *g, enum kind k)
{
    rng_t *r = &g->r_plan;
    static idlist_t ids;
    char payee[NUM_CAP], subject[2 * NUM_CAP + 2];
    int real = k == SC_ESCALATING;
    int n = real ? (int)rng_range(r, 4, 6) : 3;
    uint32_t v = take_victim(g);
    int64_t nat = rng_range(r, 3600000, 72000000);
    int64_t len = (int64_t)((double)nat * fit(g, nat));
    int64_t t = place(g, len), off[6];
    double amount = (double)rng_range(r, 500, 2000);

    fresh_account(g, r, payee);
    for (int i = 0; i < n; i++)
        off[i] = rng_range(r, 0, len);
    qsort(off, (size_t)n, sizeof off[0], cmp_i64);
    ids.n = 0;
    for (int i = 0; i < n; i++) {
        plan_transfer(g, real ? &ids : NULL, t + off[i], v, payee, yuan(amount));
        amount = real ? fmin(amount * (1.5 + rng_unit(r)), 50000) : (double)rng_range(r, 500, 3000);
    }
    if (real) {
        snprintf(subject, sizeof subject, "%s|%s", g->acct[v], payee);
        truth(g, k, "R303", subject, &ids, 0);
    }
}

/* Transfer to a listed mule account (R304).  Each listed account receives at
 * most 9 planted transfers of at most 50 000 in the whole stream, so it never
 * reaches R301 (10 payers) or R302 (500 000) as a side effect. */
static int sc_mule_transfer(gen_t *g, enum kind k)
{
    rng_t *r = &g->r_plan;
    static idlist_t ids;
    if (g->mule_uses >= 9 * g->mule.n)
        return 0;
    const char *payee = g->mule.v[g->mule_order[g->mule_uses++ % g->mule.n]];
    uint32_t v = take_victim(g);
    ids.n = 0;
    plan_transfer(g, &ids, place(g, 0), v, payee,
                  yuan(clampd(rng_lognormal(r, 5000, 0.8), 1000, 50000)));
    truth(g, k, "R304", g->phone[v], &ids, 0);
    return 1;
}

/* Overseas call, then a link SMS, then a transfer, within 2 h (R403). */
static void sc_overseas_link(gen_t *g, enum kind k)
{
    rng_t *r = &g->r_plan;
    static idlist_t ids;
    char caller[NUM_CAP], sender[NUM_CAP], payee[NUM_CAP];
    uint32_t v = take_victim(g);
    int64_t gap1 = rng_range(r, 60000, 1200000), gap2 = rng_range(r, 300000, 3600000);
    double f = fit(g, gap1 + gap2);
    int64_t g1 = (int64_t)((double)gap1 * f), g2 = (int64_t)((double)gap2 * f);
    int64_t t = place(g, g1 + g2);
    int c = fresh_overseas(g, caller);

    fresh_mobile(g, sender);
    fresh_account(g, r, payee);
    ids.n = 0;
    plan_call(g, &ids, t, caller, g->phone[v], normal_duration(r), COUNTRY[c].name,
              CITY[g->city[v]]);
    plan_sms(g, &ids, t + g1, sender, g->phone[v], SMS_LINK, COUNT(SMS_LINK));
    plan_transfer(g, &ids, t + g1 + g2, v, payee,
                  yuan(clampd(rng_lognormal(r, 10000, 0.9), 1000, 100000)));
    truth(g, k, "R403", g->phone[v], &ids, 0);
    truth_caller_side(g, k, caller, ids.id[0]);
}

static uint32_t kind_count(const gen_t *g, enum kind k)
{
    double x = KIND[k].per_million * (double)g->events / 1e6;
    if (KIND[k].fraud)
        x *= g->fraud_rate;
    if (x <= 0)
        return 0;
    uint32_t n = (uint32_t)llround(x);
    return n ? n : 1;
}

static void plan_all(gen_t *g)
{
    for (int k = 0; k < KIND_COUNT; k++) {
        uint32_t n = kind_count(g, (enum kind)k);
        if ((k == SC_REPORTED_CALL || k == SC_REPORTED_CALL_TRANSFER || k == SC_REPORTED_SMS) &&
            g->fraud.n == 0) {
            if (n)
                fprintf(stderr, "gen: warning: fraud_numbers list is empty, no %s planted\n",
                        KIND[k].name);
            continue;
        }
        if (k == SC_MULE_TRANSFER && g->mule.n == 0) {
            if (n)
                fprintf(stderr, "gen: warning: mule_accounts list is empty, no %s planted\n",
                        KIND[k].name);
            continue;
        }
        for (uint32_t i = 0; i < n; i++) {
            switch ((enum kind)k) {
            case SC_ROBOCALL:
            case SC_FANOUT:
                sc_short_calls(g, (enum kind)k);
                break;
            case SC_VIRTUAL:
            case SC_OVERSEAS:
                sc_odd_caller(g, (enum kind)k);
                break;
            case SC_REPORTED_CALL:
            case SC_REPORTED_CALL_TRANSFER:
                sc_reported_call(g, (enum kind)k);
                break;
            case SC_POLICE_SMS:
            case SC_POLICE_SMS_TRANSFER:
                sc_police(g, (enum kind)k);
                break;
            case SC_PRIZE_LINK:
            case SC_TASK_SCAM:
            case SC_REPORTED_SMS:
                sc_sms(g, (enum kind)k);
                break;
            case SC_MULE_FANIN:
            case NM_COLLECTOR:
                sc_fan_in(g, (enum kind)k);
                break;
            case SC_LARGE_INFLOW:
            case NM_LARGE:
                sc_large_inflow(g, (enum kind)k);
                break;
            case SC_ESCALATING:
            case NM_REPEAT:
                sc_repeat_payments(g, (enum kind)k);
                break;
            case SC_MULE_TRANSFER:
                if (!sc_mule_transfer(g, (enum kind)k)) {
                    fprintf(stderr, "gen: warning: %zu mule accounts allow only %zu %s "
                            "scenarios (9 each); planted %u of %u\n", g->mule.n,
                            9 * g->mule.n, KIND[k].name, i, n);
                    i = n;
                    continue;
                }
                break;
            case SC_OVERSEAS_LINK:
                sc_overseas_link(g, (enum kind)k);
                break;
            case KIND_COUNT:
                break;
            }
            g->count[k]++;
        }
    }
}

/* ------------------------------------------------------------------ */
/* population                                                          */

static void build_population(gen_t *g)
{
    rng_t *r = &g->r_pop;
    uint64_t need = 16;
    for (int k = 0; k < KIND_COUNT; k++)
        need += (uint64_t)kind_count(g, (enum kind)k) * (uint64_t)KIND[k].max_victims;
    uint64_t reserved = g->subscribers / 20 > need ? g->subscribers / 20 : need;
    if (reserved > g->subscribers / 2)
        die("the planted scenarios need %" PRIu64 " isolated victims, more than half of "
            "--subscribers %u: lower --fraud-rate or raise --subscribers", need, g->subscribers);

    g->n_sub = g->subscribers;
    g->n_bg = g->n_sub - (uint32_t)reserved;
    g->next_victim = g->n_bg;
    g->n_busy = g->n_bg * 3 / 1000 ? g->n_bg * 3 / 1000 : 1;
    g->n_heavy = g->n_bg * 5 / 100;
    g->n_medium = g->n_bg * 25 / 100;
    uint32_t n_light = g->n_bg - g->n_busy - g->n_heavy - g->n_medium;
    g->mass_heavy = 8.0 * g->n_heavy;
    g->mass_medium = g->mass_heavy + 3.0 * g->n_medium;
    g->mass_total = g->mass_medium + 1.0 * n_light;

    g->phone = xcalloc(g->n_sub, sizeof *g->phone);
    g->acct = xcalloc(g->n_sub, sizeof *g->acct);
    g->city = xcalloc(g->n_sub, 1);
    g->flags = xcalloc(g->n_sub, 1);
    for (uint32_t i = 0; i < g->n_sub; i++) {
        /* 1 % virtual-operator subscribers among ordinary ones; they never
         * place a call in background traffic (R103 would fire) */
        int virt = i >= g->n_busy && i < g->n_bg && rng_chance(r, 0.01);
        do
            if (virt)
                make_mobile(r, g->phone[i], VIRTUAL_PREFIX, COUNT(VIRTUAL_PREFIX));
            else
                make_mobile(r, g->phone[i], MOBILE_PREFIX, COUNT(MOBILE_PREFIX));
        while (!strset_add(&g->used, g->phone[i]));
        g->flags[i] = virt ? F_VIRTUAL : 0;
        fresh_account(g, r, g->acct[i]);
        g->city[i] = (uint8_t)rng_below(r, COUNT(CITY));
    }
    /* circulant contact graph: i's contacts are i + off[k] (mod n_bg), so
     * every background account has exactly N_CONTACTS possible payers */
    for (int k = 0; k < N_CONTACTS; k++) {
        int dup;
        do {
            g->contact_off[k] = 1 + (uint32_t)rng_below(r, g->n_bg - 1);
            dup = 0;
            for (int j = 0; j < k; j++)
                dup |= g->contact_off[j] == g->contact_off[k];
        } while (dup);
    }

    g->ring_short = xcalloc((size_t)g->n_bg * RING_ORD, sizeof *g->ring_short);
    g->ring_short_pos = xcalloc(g->n_bg, 1);
    g->ring_busy = xcalloc((size_t)g->n_busy * RING_BUSY, sizeof *g->ring_busy);
    g->ring_busy_pos = xcalloc(g->n_busy, 1);
    g->ring_big = xcalloc((size_t)g->n_bg * RING_BIG, sizeof *g->ring_big);
    g->ring_big_pos = xcalloc(g->n_bg, 1);
    for (size_t i = 0; i < (size_t)g->n_bg * RING_ORD; i++)
        g->ring_short[i] = INT64_MIN / 2;
    for (size_t i = 0; i < (size_t)g->n_busy * RING_BUSY; i++)
        g->ring_busy[i] = INT64_MIN / 2;
    for (size_t i = 0; i < (size_t)g->n_bg * RING_BIG; i++)
        g->ring_big[i] = INT64_MIN / 2;

    g->mule_order = xcalloc(g->mule.n, sizeof *g->mule_order);
    for (uint32_t i = 0; i < g->mule.n; i++)
        g->mule_order[i] = i;
    for (size_t i = g->mule.n; i > 1; i--) {
        size_t j = (size_t)rng_below(r, i);
        uint32_t tmp = g->mule_order[i - 1];
        g->mule_order[i - 1] = g->mule_order[j];
        g->mule_order[j] = tmp;
    }
}

/* ------------------------------------------------------------------ */
/* caps on ordinary behaviour                                          */

/* A ring of the last K timestamps: room for one more in (ts - W, ts]? */
static int ring_has_room(const int64_t *ring, const uint8_t *pos, int64_t ts, int64_t w)
{
    return ring[*pos] <= ts - w;
}

static void ring_put(int64_t *ring, uint8_t *pos, int k, int64_t ts)
{
    ring[*pos] = ts;
    *pos = (uint8_t)((*pos + 1) % k);
}

static int short_call_ok(gen_t *g, uint32_t s, int64_t ts, int record)
{
    int busy = s < g->n_busy;
    int64_t *ring = busy ? g->ring_busy + (size_t)s * RING_BUSY : g->ring_short + (size_t)s * RING_ORD;
    uint8_t *pos = busy ? g->ring_busy_pos + s : g->ring_short_pos + s;
    if (!ring_has_room(ring, pos, ts, 900000))
        return 0;
    if (record)
        ring_put(ring, pos, busy ? RING_BUSY : RING_ORD, ts);
    return 1;
}

/* ------------------------------------------------------------------ */
/* background traffic                                                  */

static uint32_t pick_source(gen_t *g, rng_t *r)
{
    if (rng_chance(r, 0.03))
        return (uint32_t)rng_below(r, g->n_busy);
    double u = rng_unit(r) * g->mass_total;
    uint32_t base = g->n_busy;
    if (u < g->mass_heavy && g->n_heavy)
        return base + (uint32_t)rng_below(r, g->n_heavy);
    base += g->n_heavy;
    if (u < g->mass_medium && g->n_medium)
        return base + (uint32_t)rng_below(r, g->n_medium);
    base += g->n_medium;
    return base + (uint32_t)rng_below(r, g->n_bg - base);
}

static uint32_t contact_of(const gen_t *g, uint32_t s, rng_t *r)
{
    return (uint32_t)(((uint64_t)s + g->contact_off[rng_below(r, N_CONTACTS)]) % g->n_bg);
}

static void bg_event(gen_t *g, int64_t ts, uint64_t counter, line_t *l)
{
    rng_t *r = &g->r_bg;
    char id[ID_LEN], text[TEXT_CAP];
    uint32_t s = pick_source(g, r);
    int busy = s < g->n_busy;
    double u = rng_unit(r);
    enum { CALL, SMS, TRANSFER } type = busy ? (u < 0.9 ? CALL : SMS)
                                             : (u < 0.50 ? CALL : u < 0.87 ? SMS : TRANSFER);
    if (type == CALL && (g->flags[s] & F_VIRTUAL))
        type = SMS;
    make_id(g, counter, id);

    if (type == CALL) {
        char callee_buf[NUM_CAP], caller_buf[NUM_CAP + 4];
        const char *callee, *cereg, *caller = g->phone[s];
        double c = rng_unit(r);
        if (busy || (c >= 0.84 && c < 0.97)) {
            uint32_t o;
            do
                o = any_bg(g, r);
            while (o == s);
            callee = g->phone[o];
            cereg = CITY[g->city[o]];
        } else if (c < 0.84) {
            uint32_t o = contact_of(g, s, r);
            callee = g->phone[o];
            cereg = CITY[g->city[o]];
        } else {
            /* calling abroad: a near miss, the rules look at the caller */
            cereg = COUNTRY[make_overseas(r, callee_buf)].name;
            callee = callee_buf;
        }
        int64_t dur;
        if (busy)
            dur = (int64_t)clampd(rng_lognormal(r, 25, 0.8), 0, 3600);
        else if (rng_chance(r, 0.06))
            dur = rng_range(r, 0, 14);   /* missed or cut short */
        else
            dur = (int64_t)clampd(rng_lognormal(r, 95, 0.9), 1, 7200);
        if (dur < 30 && !short_call_ok(g, s, ts, 1))
            dur = normal_duration(r);
        if (!busy && rng_chance(r, 0.003)) {
            /* roaming caller shown with China's own code: a near miss of ^00(?!86) */
            memcpy(caller_buf, "0086", 4);
            memcpy(caller_buf + 4, g->phone[s], strlen(g->phone[s]) + 1);
            caller = caller_buf;
        }
        const char *creg = rng_chance(r, 0.05) ? CITY[rng_below(r, COUNT(CITY))] : CITY[g->city[s]];
        render_call(l, id, ts, caller, callee, dur, creg, cereg);
        g->n_call++;
    } else if (type == SMS) {
        if (busy || rng_chance(r, 0.62)) {
            uint32_t o = busy || rng_chance(r, 0.15) ? any_bg(g, r) : contact_of(g, s, r);
            expand(r, SMS_PERSONAL[rng_below(r, COUNT(SMS_PERSONAL))], text);
            render_sms(l, id, ts, g->phone[s], g->phone[o], text);
        } else {
            expand(r, SMS_SERVICE[rng_below(r, COUNT(SMS_SERVICE))], text);
            render_sms(l, id, ts, SERVICE_SENDER[rng_below(r, COUNT(SERVICE_SENDER))],
                       g->phone[s], text);
        }
        g->n_sms++;
    } else {
        uint32_t o = contact_of(g, s, r);
        int64_t cents = yuan(clampd(rng_lognormal(r, 200, 1.3), 1, 20000));
        int64_t *ring = g->ring_big + (size_t)s * RING_BIG;
        if (cents >= 50000) {
            if (ring_has_room(ring, g->ring_big_pos + s, ts, 86400000))
                ring_put(ring, g->ring_big_pos + s, RING_BIG, ts);
            else
                cents = rng_range(r, 100, 49999);
        }
        render_transfer(l, id, ts, g->acct[s], g->phone[s], g->acct[o], cents,
                        pick_weighted(r, CHANNEL_BG, COUNT(CHANNEL_BG)));
        g->n_transfer++;
    }
}

/* ------------------------------------------------------------------ */
/* late events: a min-heap on release time over a pool of line slots   */

static int pend_less(const pend_t *a, const pend_t *b)
{
    return a->release < b->release || (a->release == b->release && a->seq < b->seq);
}

static void pend_push(gen_t *g, int64_t release, uint64_t seq, const line_t *l)
{
    if (l->n > SLOT_SIZE)
        die("internal: late event longer than %d bytes", SLOT_SIZE);
    if (!g->n_free) {
        size_t old = g->n_slots;
        g->n_slots = old ? old * 2 : 4096;
        g->slots = xrealloc(g->slots, g->n_slots * SLOT_SIZE);
        g->free_slot = xrealloc(g->free_slot, g->n_slots * sizeof *g->free_slot);
        for (size_t i = g->n_slots; i > old; i--)
            g->free_slot[g->n_free++] = (uint32_t)(i - 1);
    }
    uint32_t slot = g->free_slot[--g->n_free];
    memcpy(g->slots + (size_t)slot * SLOT_SIZE, l->b, l->n);
    if (g->n_heap == g->cap_heap) {
        g->cap_heap = g->cap_heap ? g->cap_heap * 2 : 4096;
        g->heap = xrealloc(g->heap, g->cap_heap * sizeof *g->heap);
    }
    size_t i = g->n_heap++;
    pend_t e = {release, seq, slot, (uint32_t)l->n};
    while (i && pend_less(&e, &g->heap[(i - 1) / 2])) {
        g->heap[i] = g->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    g->heap[i] = e;
}

static void pend_flush(gen_t *g, int64_t upto)
{
    while (g->n_heap && g->heap[0].release <= upto) {
        pend_t top = g->heap[0];
        out_write(&g->out, g->slots + (size_t)top.slot * SLOT_SIZE, top.len);
        g->free_slot[g->n_free++] = top.slot;
        pend_t last = g->heap[--g->n_heap];
        size_t i = 0;
        for (;;) {
            size_t c = 2 * i + 1;
            if (c >= g->n_heap)
                break;
            if (c + 1 < g->n_heap && pend_less(&g->heap[c + 1], &g->heap[c]))
                c++;
            if (!pend_less(&g->heap[c], &last))
                break;
            g->heap[i] = g->heap[c];
            i = c;
        }
        if (g->n_heap)
            g->heap[i] = last;
    }
}

static int cmp_plan(const void *a, const void *b)
{
    const plan_ev_t *x = a, *y = b;
    if (x->ts != y->ts)
        return (x->ts > y->ts) - (x->ts < y->ts);
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static void emit_plan(gen_t *g, size_t i)
{
    pend_flush(g, g->plan[i].ts);
    out_write(&g->out, g->arena + g->plan[i].off, g->plan[i].len);
}

static void run(gen_t *g)
{
    uint64_t n_bg_events = g->events - g->n_plan;
    double gap = (double)g->span_ms / (double)(n_bg_events ? n_bg_events : 1);
    double t = 0;
    size_t pi = 0;
    line_t l;

    qsort(g->plan, g->n_plan, sizeof *g->plan, cmp_plan);
    for (uint64_t i = 0; i < n_bg_events; i++) {
        t += rng_exp(&g->r_bg, gap);
        int64_t ts = g->t0 + (int64_t)t;
        while (pi < g->n_plan && g->plan[pi].ts <= ts)
            emit_plan(g, pi++);
        pend_flush(g, ts);
        bg_event(g, ts, i, &l);
        if (g->late_frac > 0 && rng_chance(&g->r_late, g->late_frac)) {
            pend_push(g, ts + rng_range(&g->r_late, 1000, 120000), i, &l);
            g->n_late++;
        } else {
            out_write(&g->out, l.b, l.n);
        }
    }
    while (pi < g->n_plan)
        emit_plan(g, pi++);
    pend_flush(g, INT64_MAX);
}

/* ------------------------------------------------------------------ */
/* command line                                                        */

static void usage(FILE *f)
{
    fputs(
        "usage: gen [options] > events.jsonl\n"
        "\n"
        "Deterministic fraudwatch traffic: ordinary calls, SMS and transfers of a\n"
        "synthetic subscriber population, with planted fraud scenarios that trip the\n"
        "shipped rules.  Same seed and options give byte-identical output.\n"
        "\n"
        "  --events N        total events written, planted ones included (default 1700000)\n"
        "  --seed S          seed of every random choice (default 1)\n"
        "  --start-ts MS     event time of the stream's start, epoch ms (default 1764547200000)\n"
        "  --rate EPS        average events per second of event time (default 2000);\n"
        "                    the stream spans events/rate seconds\n"
        "  --late-frac F     fraction of ordinary events emitted late, held back 1-120 s of\n"
        "                    event time behind their neighbours (default 0.01); planted\n"
        "                    events are never late\n"
        "  --fraud-rate R    multiplies every planted scenario count (default 1; 0 = none).\n"
        "                    At 1, about 260 scenarios per million events\n"
        "  --subscribers N   population size (default 200000); 5 % (or more, if the\n"
        "                    scenarios need it) is reserved for planted victims\n"
        "  --lists DIR       directory with fraud_numbers.list and mule_accounts.list, the\n"
        "                    watchlists the planted scenarios draw from (default rules)\n"
        "  --truth FILE      write the ground truth: one JSON line per planted scenario,\n"
        "                    {\"scenario\",\"rules\",\"subject\",\"event_ids\"}; side-effect alerts\n"
        "                    (a listed caller that is also virtual/overseas) get their own\n"
        "                    line marked \"incidental\":true\n"
        "  -o, --output FILE write events to FILE instead of stdout\n"
        "  -q, --quiet       no summary on stderr\n"
        "  -h, --help        this text\n",
        f);
}

static uint64_t parse_u64(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        die("%s: not a non-negative integer: '%s'", opt, s);
    return (uint64_t)v;
}

static double parse_double(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        die("%s: not a number: '%s'", opt, s);
    return v;
}

static void parse_args(gen_t *g, int argc, char **argv)
{
    enum { O_EVENTS = 256, O_SEED, O_START, O_RATE, O_LATE, O_FRAUD, O_TRUTH, O_LISTS, O_SUBS };
    static const struct option opts[] = {
        {"events", required_argument, NULL, O_EVENTS},
        {"seed", required_argument, NULL, O_SEED},
        {"start-ts", required_argument, NULL, O_START},
        {"rate", required_argument, NULL, O_RATE},
        {"late-frac", required_argument, NULL, O_LATE},
        {"fraud-rate", required_argument, NULL, O_FRAUD},
        {"truth", required_argument, NULL, O_TRUTH},
        {"lists", required_argument, NULL, O_LISTS},
        {"subscribers", required_argument, NULL, O_SUBS},
        {"output", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    g->events = 1700000;
    g->seed = 1;
    g->t0 = INT64_C(1764547200000);
    g->rate = 2000;
    g->late_frac = 0.01;
    g->fraud_rate = 1;
    g->subscribers = 200000;
    g->lists_dir = "rules";
    int c;
    while ((c = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
        switch (c) {
        case O_EVENTS: g->events = parse_u64("--events", optarg); break;
        case O_SEED: g->seed = parse_u64("--seed", optarg); break;
        case O_START: g->t0 = (int64_t)parse_u64("--start-ts", optarg); break;
        case O_RATE: g->rate = parse_double("--rate", optarg); break;
        case O_LATE: g->late_frac = parse_double("--late-frac", optarg); break;
        case O_FRAUD: g->fraud_rate = parse_double("--fraud-rate", optarg); break;
        case O_TRUTH: g->truth_path = optarg; break;
        case O_LISTS: g->lists_dir = optarg; break;
        case O_SUBS: {
            uint64_t n = parse_u64("--subscribers", optarg);
            if (n < 1000 || n > 50000000)
                die("--subscribers: must be between 1000 and 50000000");
            g->subscribers = (uint32_t)n;
            break;
        }
        case 'o': g->out_path = optarg; break;
        case 'q': g->quiet = 1; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc)
        die("unexpected argument '%s' (see --help)", argv[optind]);
    if (g->events < 1)
        die("--events: must be at least 1");
    if (!(g->rate > 0))
        die("--rate: must be positive");
    if (!(g->late_frac >= 0 && g->late_frac <= 1))
        die("--late-frac: must be between 0 and 1");
    if (!(g->fraud_rate >= 0))
        die("--fraud-rate: must not be negative");
    g->span_ms = (int64_t)llround((double)g->events * 1000.0 / g->rate);
    if (g->span_ms < 1)
        g->span_ms = 1;
}

int main(int argc, char **argv)
{
    static gen_t gen;
    gen_t *g = &gen;
    struct timespec t_start, t_end;
    clock_gettime(CLOCK_MONOTONIC, &t_start);

    parse_args(g, argc, argv);
    rng_seed(&g->r_pop, g->seed, 1);
    rng_seed(&g->r_plan, g->seed, 2);
    rng_seed(&g->r_bg, g->seed, 3);
    rng_seed(&g->r_late, g->seed, 4);
    g->id_key = mix64(g->seed ^ UINT64_C(0x6a09e667f3bcc909));

    read_list(g->lists_dir, "fraud_numbers.list", &g->fraud);
    read_list(g->lists_dir, "mule_accounts.list", &g->mule);
    for (size_t i = 0; i < g->fraud.n; i++)
        strset_add(&g->used, g->fraud.v[i]);
    for (size_t i = 0; i < g->mule.n; i++)
        strset_add(&g->used, g->mule.v[i]);
    for (size_t i = 0; i < COUNT(SERVICE_SENDER); i++)
        if (!strset_add(&g->used, SERVICE_SENDER[i]))
            die("service number %s is on a watchlist; ordinary SMS would trip R204",
                SERVICE_SENDER[i]);

    build_population(g);

    if (g->truth_path) {
        FILE *tf = fopen(g->truth_path, "w");
        if (!tf)
            die("cannot write %s: %s", g->truth_path, strerror(errno));
        out_open(&g->truth, tf, g->truth_path);
        g->have_truth = 1;
    }
    plan_all(g);
    if (g->n_plan > g->events / 2)
        die("%zu planted events do not fit in --events %" PRIu64 " (at most half may be "
            "planted): raise --events or lower --fraud-rate", g->n_plan, g->events);

    FILE *of = stdout;
    if (g->out_path && !(of = fopen(g->out_path, "w")))
        die("cannot write %s: %s", g->out_path, strerror(errno));
    out_open(&g->out, of, g->out_path ? g->out_path : "stdout");
    run(g);
    out_close(&g->out);
    if (g->have_truth)
        out_close(&g->truth);

    clock_gettime(CLOCK_MONOTONIC, &t_end);
    if (!g->quiet) {
        double secs = (double)(t_end.tv_sec - t_start.tv_sec) +
                      (double)(t_end.tv_nsec - t_start.tv_nsec) / 1e9;
        uint32_t scenarios = 0;
        for (int k = 0; k < KIND_COUNT; k++)
            scenarios += KIND[k].fraud ? g->count[k] : 0;
        fprintf(stderr,
                "gen: %" PRIu64 " events (%" PRIu64 " ordinary: %" PRIu64 " calls, %" PRIu64
                " sms, %" PRIu64 " transfers, %" PRIu64 " late; %zu planted) over %.0f s of "
                "event time, %u subscribers (%u reserved), in %.2f s\n",
                g->events, g->events - g->n_plan, g->n_call, g->n_sms, g->n_transfer, g->n_late,
                g->n_plan, (double)g->span_ms / 1000.0, g->n_sub, g->n_sub - g->n_bg, secs);
        fprintf(stderr, "gen: %u fraud scenarios (%" PRIu64 " truth lines):", scenarios,
                g->truth_lines);
        for (int k = 0; k < KIND_COUNT; k++)
            fprintf(stderr, "%s %s %u", k ? "," : "", KIND[k].name, g->count[k]);
        fputc('\n', stderr);
    }
    return 0;
}
