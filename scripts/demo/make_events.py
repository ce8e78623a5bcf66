#!/usr/bin/env python3
"""Generate the fraudwatch demo traffic and the alerts it should produce.

    python3 scripts/demo/make_events.py

writes, next to this script:

  events.jsonl         one day (2025-12-01, UTC) of calls, SMS and transfers
                       between 200 synthetic subscribers, in time order, with
                       planted fraud cases and three malformed lines near the
                       end;
  expected-rules.txt   the alerts `fraudwatch replay --rules rules
                       scripts/demo/events.jsonl` must print, one line each:
                       RULE_ID SUBJECT EVENT_ID.

The output is deterministic (fixed seed, no clock, no environment): running
the script again gives byte-identical files.

How the file is built
---------------------
Background traffic is kept clear of every shipped rule on purpose:
  * calls last at least 30 s (R101 counts calls < 15 s, R102 calls < 30 s);
  * no caller uses a virtual-operator (170/171/162/165/167) or 00 prefix,
    and no number or account is on a watchlist;
  * SMS texts are everyday Chinese without trigger words or links;
  * transfers are below 500 yuan, between subscribers, and never made by a
    subscriber who plays a victim in a planted case.
Each planted case (functions case_*) adds its events and says, by
construction, which event each rule must fire on.  The expected alerts are
derived from the SPEC semantics by hand (see the comments in each case),
not by running a rule engine.

All numbers and accounts are synthetic: subscribers are 1xx2025nnnn with
accounts BBBB20250000nnnn; the planted actors' numbers and accounts are
written out in each case (runs of zeros, 555, 666, 777, 888).
"""

import json
import os
import random

SEED = 20251201
T0 = 1764547200000          # 2025-12-01T00:00:00Z in Unix ms
DAY_MS = 86400 * 1000
N_SUBSCRIBERS = 200
N_EVENTS = 3000             # valid events: planted cases + background

HERE = os.path.dirname(os.path.abspath(__file__))

rng = random.Random(SEED)


def at(hh, mm, ss=0, ms=0):
    """Event time on the demo day, in Unix ms."""
    return T0 + ((hh * 60 + mm) * 60 + ss) * 1000 + ms


# --------------------------------------------------------------------------
# Subscribers
# --------------------------------------------------------------------------

PREFIXES = ["138", "139", "136", "137", "150", "151", "152", "158", "159",
            "182", "183", "186", "187", "188", "130", "131", "132", "155",
            "156", "189"]
BANK_BINS = ["6217", "6222", "6228", "6225"]
REGIONS = ["北京", "上海", "广东", "浙江", "江苏", "四川", "湖北", "福建",
           "山东", "河南"]


class Subscriber:
    def __init__(self, i):
        self.phone = PREFIXES[i % len(PREFIXES)] + "2025" + "%04d" % (i + 1)
        self.account = BANK_BINS[i % len(BANK_BINS)] + "20250000" + "%04d" % (i + 1)
        self.region = REGIONS[(i * 7) % len(REGIONS)]


SUBS = [Subscriber(i) for i in range(N_SUBSCRIBERS)]

# Subscribers with a role in a planted case are picked up front, without
# replacement, so that no two cases share a victim.
_pool = list(range(N_SUBSCRIBERS))
rng.shuffle(_pool)


def pick(n=1):
    chosen = [SUBS[_pool.pop()] for _ in range(n)]
    return chosen if n > 1 else chosen[0]


# Victims never make a background transfer (a background transfer could
# otherwise complete one of their sequences).
VICTIMS = set()


def victim(n=1):
    v = pick(n)
    for s in (v if n > 1 else [v]):
        VICTIMS.add(s.phone)
    return v


# --------------------------------------------------------------------------
# Event constructors
# --------------------------------------------------------------------------

EVENTS = []      # dicts; "_id" filled in after sorting
EXPECTED = []    # (rule_id, subject, event dict, note)


def call(ts, caller, callee, duration_s, caller_region, callee_region):
    ev = {"type": "call", "ts": ts, "caller": caller, "callee": callee,
          "duration_s": duration_s, "caller_region": caller_region,
          "callee_region": callee_region}
    EVENTS.append(ev)
    return ev


def sms(ts, sender, recipient, text):
    ev = {"type": "sms", "ts": ts, "sender": sender, "recipient": recipient,
          "text": text}
    EVENTS.append(ev)
    return ev


def transfer(ts, payer, payee_account, amount, channel="mobile_bank"):
    ev = {"type": "transfer", "ts": ts, "payer_account": payer.account,
          "payer_phone": payer.phone, "payee_account": payee_account,
          "amount": amount, "channel": channel}
    EVENTS.append(ev)
    return ev


def expect(rule_id, subject, ev, note):
    EXPECTED.append((rule_id, subject, ev, note))


# --------------------------------------------------------------------------
# Planted cases
# --------------------------------------------------------------------------

def case_robocall_burst():
    """R101: 45 calls of 2-12 s, one every 12 s, to 20 numbers (each dialled
    twice or more, so R102's 25 distinct callees is never reached).  Call 40
    is the first with count >= 40 in (t-600s, t]; calls 41-45 fall within
    the 600 s suppression that follows."""
    robo = "18400009001"
    callees = pick(20)
    for k in range(45):
        ev = call(at(1, 0) + k * 12000, robo, callees[k % 20].phone,
                  2 + k % 11, "广东", callees[k % 20].region)
        if k + 1 == 40:
            expect("R101", robo, ev, "robocall burst: 40th short call in 10 min")


def case_fan_out():
    """R102: 30 calls of 15-28 s (too long for R101), one every 20 s, each to
    a different number.  Call 25 is the first with 25 distinct callees in
    (t-900s, t]; calls 26-30 are suppressed for 900 s."""
    fan = "18400009002"
    callees = pick(30)
    for k in range(30):
        ev = call(at(2, 0) + k * 20000, fan, callees[k].phone, 15 + k % 14,
                  "福建", callees[k].region)
        if k + 1 == 25:
            expect("R102", fan, ev, "fan-out: 25th distinct callee in 15 min")


def case_virtual_operator():
    """R103 (suppress_s 3600, subject caller): 17055509003 calls at 03:00
    (fires), 03:20 (suppressed) and 04:30 (fires again, 90 min later);
    16255509004 calls once at 05:00 (fires)."""
    virt, virt2 = "17055509003", "16255509004"
    a, b, c, d = pick(4)
    ev = call(at(3, 0), virt, a.phone, 95, "未知", a.region)
    expect("R103", virt, ev, "virtual-operator caller, first call")
    call(at(3, 20), virt, b.phone, 40, "未知", b.region)        # suppressed
    ev = call(at(4, 30), virt, c.phone, 63, "未知", c.region)
    expect("R103", virt, ev, "virtual-operator caller, again after the 1 h suppression")
    ev = call(at(5, 0), virt2, d.phone, 210, "未知", d.region)
    expect("R103", virt2, ev, "second virtual-operator caller")


def case_overseas_call():
    """R104: a Cambodian (+855) number calls a subscriber at 06:00 (fires).
    At 06:30 a +86 number written with 00 calls: China itself, no alert.
    The callee starts an R403 chain that never goes on (no link SMS)."""
    ovs = "0085590009005"
    a, b = victim(2)
    ev = call(at(6, 0, 0, 250), ovs, a.phone, 180, "境外", a.region)
    expect("R104", ovs, ev, "overseas caller (+855)")
    call(at(6, 30), "0086" + SUBS[0].phone, b.phone, 75, "北京", b.region)  # no alert


def case_reported_number_call():
    """R105 (subject callee, no suppression): reported number 13300000901
    calls the same subscriber at 07:00 and 07:05; both calls alert.  The
    victim transfers nothing, so R401 never completes."""
    fraud = "13300000901"
    v = victim()
    ev = call(at(7, 0), fraud, v.phone, 300, "江西", v.region)
    expect("R105", v.phone, ev, "call from reported number")
    ev = call(at(7, 5), fraud, v.phone, 140, "江西", v.region)
    expect("R105", v.phone, ev, "call from reported number again (suppress_s 0)")


IMPERSONATION_1 = ("【XX市公安局】您的身份信息涉嫌洗钱案件，请于今日内联系办案民警"
                   "配合调查，否则将冻结您名下银行账户。")
IMPERSONATION_2 = ("【最高检察院】您涉嫌一起跨境洗钱案，已被列为通缉对象，请立即将"
                   "名下资金转入安全账户接受资金清查。")


def case_impersonation_sms():
    """R201 (subject recipient): police impersonation text at 08:00."""
    v = victim()
    ev = sms(at(8, 0), "10690009006", v.phone, IMPERSONATION_1)
    expect("R201", v.phone, ev, "police impersonation SMS")


def case_prize_link_sms():
    """R202 (subject recipient): a prize text with an http:// link (09:00)
    and a lost-parcel claim with a bare domain link (09:40) both alert; a
    genuine refund notice without a link (09:30) does not."""
    a, b, c = victim(3)
    ev = sms(at(9, 0), "10690009007", a.phone,
             "【积分商城】恭喜您中奖！您的积分可兑换手机一部，请于24小时内登录"
             " http://jf-prize.top/r/8821 领奖，逾期作废。")
    expect("R202", a.phone, ev, "prize SMS with http link")
    sms(at(9, 30), "10690001234", b.phone,
        "【购物平台】您的订单退款已原路退回，预计1-3个工作日到账。")  # no link: no alert
    ev = sms(at(9, 40), "10690009008", c.phone,
             "您好，您的快递丢失，我司将为您办理理赔，请访问 kd-lipei.cn/claim 填写信息。")
    expect("R202", c.phone, ev, "lost-parcel claim SMS with bare domain link")


def case_task_scam_sms():
    """R203 (subject sender, suppress_s 3600): one sender recruits four
    people at 10:00, 10:10, 10:20 and 11:05; the first and the last (65 min
    after the first alert) alert."""
    task = "17155509009"
    a, b, c, d = victim(4)
    ev = sms(at(10, 0), task, a.phone,
             "【招聘】在家兼职，动动手指点赞就有佣金，日结200-500元，加微信了解。")
    expect("R203", task, ev, "task-scam recruitment SMS")
    sms(at(10, 10), task, b.phone, "诚招刷单员，先垫付后返利，一单一结，名额有限。")
    sms(at(10, 20), task, c.phone, "宝妈兼职，每天两小时日结工资，点赞关注即可。")
    ev = sms(at(11, 5), task, d.phone, "诚招刷单员，先垫付后返利，一单一结，名额有限。")
    expect("R203", task, ev, "task-scam SMS again after the 1 h suppression")


def case_fraud_sender_sms():
    """R204 (subject recipient): an SMS from listed number 16700000111."""
    v = victim()
    ev = sms(at(11, 30), "16700000111", v.phone,
             "您好，我是小区物业的工作人员，麻烦加一下我的微信，有事跟您说。")
    expect("R204", v.phone, ev, "SMS from reported number")


def case_mule_fan_in():
    """R301: 12 different people pay account 6230000088880001 between 12:00
    and 12:33 (one every 3 min).  The 10th payment (12:27) is the first with
    10 distinct payers in (t-3600s, t]; the 11th and 12th are suppressed."""
    mule = "6230000088880001"
    payers = victim(12)
    for k, p in enumerate(payers):
        ev = transfer(at(12, 3 * k), p, mule, 800 + 150 * k,
                      ["mobile_bank", "online", "third_party"][k % 3])
        if k + 1 == 10:
            expect("R301", mule, ev, "mule fan-in: 10th distinct payer in 1 h")


def case_large_inflow():
    """R302: four payments into 6228480066660001 of 120000.10, 130000.20,
    149999.90 and 99999.80 yuan.  Their exact total is 500000.00 (the sum is
    kept in micro-units; naive binary floating point gives 499999.99999...),
    so the 4th payment (17:30) fires.  A 5th (18:30) is suppressed."""
    acct = "6228480066660001"
    payers = victim(5)
    amounts = [120000.10, 130000.20, 149999.90, 99999.80, 30000]
    times = [at(13, 0), at(14, 30), at(16, 0), at(17, 30), at(18, 30)]
    for k in range(5):
        ev = transfer(times[k], payers[k], acct, amounts[k], "counter")
        if k == 3:
            expect("R302", acct, ev, "large inflow: exactly 500000.00 in 24 h")


def case_escalating_payments():
    """R303 (key payer_account|payee_account): one victim pays the same
    account 100 (below 500, not counted), 600, 1500, 3000, 8000 and 20000.
    The 8000 payment is the 4th counted one; 20000 is suppressed (24 h)."""
    v = victim()
    acct = "6222020077770001"
    plan = [(at(14, 10), 100), (at(14, 25), 600), (at(15, 10), 1500),
            (at(16, 10), 3000), (at(17, 40), 8000), (at(18, 45), 20000)]
    for ts, amount in plan:
        ev = transfer(ts, v, acct, amount, "third_party")
        if amount == 8000:
            expect("R303", v.account + "|" + acct, ev,
                   "escalating payments: 4th payment >= 500 in 24 h")


def case_transfer_to_mule():
    """R304 (subject payer_phone): a payment to listed account 6222000000009901."""
    v = victim()
    ev = transfer(at(19, 0), v, "6222000000009901", 5000, "online")
    expect("R304", v.phone, ev, "transfer to listed mule account")


def case_call_then_transfer():
    """R401 (within 1800 s).  Listed number 17000000101 (a 170 number, so R103
    fires on its first call, then is suppressed) calls victim A at 20:00 and
    victim B at 20:05; each call fires R105.  A sends 20000 at 20:12 (R401
    fires).  B sends 5000 at 20:35:00.000, exactly 1800 s after the call:
    the window is (t-W, t], the call is expired, no R401."""
    fraud = "17000000101"
    a, b = victim(2)
    ev = call(at(20, 0), fraud, a.phone, 420, "未知", a.region)
    expect("R103", fraud, ev, "virtual-operator caller (also listed)")
    expect("R105", a.phone, ev, "call from reported number")
    ev = call(at(20, 5), fraud, b.phone, 260, "未知", b.region)
    expect("R105", b.phone, ev, "call from reported number")
    ev = transfer(at(20, 12), a, "6228480055550001", 20000, "mobile_bank")
    expect("R401", a.phone, ev, "reported-number call, then transfer 12 min later")
    transfer(at(20, 35), b, "6228480055550002", 5000, "mobile_bank")  # no R401


def case_sms_then_transfer():
    """R402 (within 3600 s): impersonation SMS at 21:00 (R201), then the victim
    moves 50000 to a 'safe account' that is a listed mule at 21:40: R402 and
    R304 both fire on the transfer."""
    v = victim()
    ev = sms(at(21, 0), "10690009010", v.phone, IMPERSONATION_2)
    expect("R201", v.phone, ev, "procuratorate impersonation SMS")
    ev = transfer(at(21, 40), v, "6228480000009999016", 50000, "mobile_bank")
    expect("R402", v.phone, ev, "impersonation SMS, then transfer 40 min later")
    expect("R304", v.phone, ev, "the 'safe account' is a listed mule")


def case_overseas_link_transfer():
    """R403 (within 7200 s): a Philippine (+63) number calls at 22:00 (R104),
    a fake customs SMS with an https link follows at 22:20 (no R202: no
    refund/prize word), the victim pays 2800 at 23:10: R403 fires."""
    ovs = "00639170009011"
    v = victim()
    ev = call(at(22, 0), ovs, v.phone, 600, "境外", v.region)
    expect("R104", ovs, ev, "overseas caller (+63)")
    sms(at(22, 20), "10690009012", v.phone,
        "【海关总署】您有一个国际包裹被扣留，请尽快登录 "
        "https://customs-check.xyz/p/2291 处理。")
    ev = transfer(at(23, 10), v, "6217000044440001", 2800, "online")
    expect("R403", v.phone, ev, "overseas call, link SMS, transfer within 2 h")


CASES = [case_robocall_burst, case_fan_out, case_virtual_operator,
         case_overseas_call, case_reported_number_call, case_impersonation_sms,
         case_prize_link_sms, case_task_scam_sms, case_fraud_sender_sms,
         case_mule_fan_in, case_large_inflow, case_escalating_payments,
         case_transfer_to_mule, case_call_then_transfer,
         case_sms_then_transfer, case_overseas_link_transfer]


# --------------------------------------------------------------------------
# Background traffic
# --------------------------------------------------------------------------

PERSONAL_TEXTS = [
    "晚上一起吃饭吗？", "我到楼下了，你下来吧。", "明天的会议改到下午三点。",
    "生日快乐！", "收到，谢谢。", "周末回家吗？妈妈做了红烧肉。",
    "快递我帮你拿了，放在门卫那里。", "路上堵车，晚十分钟到。",
    "孩子的家长会是周五下午。", "好的，明天见。", "电影票买好了，七点半的场。",
    "记得带伞，今天有雨。", "文件已经发你邮箱了，看一下。", "我在开会，稍后回电。",
    "到家了吗？", "下周二的高铁票订好了。",
]
SERVICE_SENDERS = ["10086", "10010", "95588", "95533", "95555", "12306"]


def service_text(sender, sub):
    if sender in ("10086", "10010"):
        return "【运营商】尊敬的客户，您本月账单已生成，话费余额%d.%02d元。" % (
            rng.randint(5, 300), rng.randint(0, 99))
    if sender == "12306":
        return "【铁路客服】您已购买12月%d日G%d次列车车票，请按时乘车。" % (
            rng.randint(2, 28), rng.randint(100, 9999))
    if rng.random() < 0.5:
        return "【银行】您的验证码为%06d，5分钟内有效，请勿告诉他人。" % rng.randint(0, 999999)
    return "【银行】您尾号%s的卡于12月01日消费人民币%d.%02d元。" % (
        sub.account[-4:], rng.randint(3, 480), rng.randint(0, 99))


def background(n, taken_ts):
    payers = [s for s in SUBS if s.phone not in VICTIMS]
    for _ in range(n):
        ts = T0 + rng.randrange(DAY_MS)
        while ts in taken_ts:
            ts += 1
        taken_ts.add(ts)
        r = rng.random()
        if r < 0.55:
            a, b = rng.sample(SUBS, 2)
            dur = min(3600, 30 + int(rng.expovariate(1 / 150)))
            call(ts, a.phone, b.phone, dur, a.region, b.region)
        elif r < 0.85:
            b = rng.choice(SUBS)
            if rng.random() < 0.6:
                a = rng.choice([s for s in SUBS if s is not b])
                sms(ts, a.phone, b.phone, rng.choice(PERSONAL_TEXTS))
            else:
                sender = rng.choice(SERVICE_SENDERS)
                sms(ts, sender, b.phone, service_text(sender, b))
        else:
            a = rng.choice(payers)
            b = rng.choice([s for s in SUBS if s is not a])
            amount = round(rng.uniform(5, 480), 2)
            transfer(ts, a, b.account, amount,
                     rng.choice(["mobile_bank", "online", "atm", "third_party"]))


# --------------------------------------------------------------------------
# Malformed lines (reported on stderr by replay, never processed)
# --------------------------------------------------------------------------

def malformed_lines(first_id):
    base = at(23, 50)
    return [
        # not JSON: the line is cut off
        '{"event_id":"demo-%06d","type":"call","ts":%d,"caller":"%s","callee":'
        % (first_id, base, SUBS[1].phone),
        # no ts
        json.dumps({"event_id": "demo-%06d" % (first_id + 1), "type": "sms",
                    "sender": SUBS[2].phone, "recipient": SUBS[3].phone,
                    "text": "好的，明天见。"}, ensure_ascii=False,
                   separators=(",", ":")),
        # ts is a string, not an integer
        json.dumps({"event_id": "demo-%06d" % (first_id + 2), "type": "transfer",
                    "ts": str(base + 120000), "payer_account": SUBS[4].account,
                    "payer_phone": SUBS[4].phone, "payee_account": SUBS[5].account,
                    "amount": 66.6, "channel": "online"},
                   ensure_ascii=False, separators=(",", ":")),
    ]


# --------------------------------------------------------------------------

def main():
    for case in CASES:
        case()
    planted = len(EVENTS)
    background(N_EVENTS - planted, {e["ts"] for e in EVENTS})
    assert len({e["ts"] for e in EVENTS}) == len(EVENTS), "timestamps must be unique"

    EVENTS.sort(key=lambda e: e["ts"])

    # Ids follow file order.  The malformed lines go in after the last event
    # before 23:50 and take the next three ids, to show that replay reports
    # them and carries on with the events after them.
    cut = sum(1 for e in EVENTS if e["ts"] < at(23, 50))
    bad = malformed_lines(cut + 1)
    final, n = [], 0
    for i, e in enumerate(EVENTS):
        if i == cut:
            final.extend(bad)
            n += len(bad)
        n += 1
        e["_id"] = "demo-%06d" % n
        out = {"event_id": e["_id"]}
        out.update((k, v) for k, v in e.items() if k != "_id")
        final.append(json.dumps(out, ensure_ascii=False, separators=(",", ":")))

    with open(os.path.join(HERE, "events.jsonl"), "w", encoding="utf-8") as f:
        f.write("\n".join(final) + "\n")

    EXPECTED.sort(key=lambda x: (x[2]["ts"], x[0]))
    with open(os.path.join(HERE, "expected-rules.txt"), "w", encoding="utf-8") as f:
        f.write("# Alerts expected from:\n")
        f.write("#   fraudwatch replay --rules rules scripts/demo/events.jsonl\n")
        f.write("# Generated by scripts/demo/make_events.py (each derived by hand from\n")
        f.write("# the planted case, see the case_* functions there).  One alert a line,\n")
        f.write("# in event order:  RULE_ID  SUBJECT  EVENT_ID  # planted case\n")
        f.write("# No other alert may appear: background traffic triggers no rule.\n")
        f.write("# The 3 malformed lines (%s .. %s) must be reported on stderr.\n"
                % ("demo-%06d" % (cut + 1), "demo-%06d" % (cut + 3)))
        for rule_id, subject, ev, note in EXPECTED:
            f.write("%s %s %s  # %s\n" % (rule_id, subject, ev["_id"], note))

    print("events: %d valid (%d planted, %d background) + %d malformed; "
          "expected alerts: %d" % (len(EVENTS), planted, len(EVENTS) - planted,
                                   len(bad), len(EXPECTED)))


if __name__ == "__main__":
    main()
