#!/usr/bin/env python3
"""The console's page in a real browser (Debian's chromium, headless, driven
by chromium-driver through python3-selenium): log in as an officer, see an
alert produced to Kafka appear in the queue without reloading, open it,
assign, log a call attempt, mark contacted, close as dissuaded with an
amount, see the stats page change; another unit's officer does not see it
(and gets 403 asking for it); HTML in an event field, the description and a
note shows as text.  Screenshots go to the build directory's
console-screenshots/ (FW_CONSOLE_SHOTS to choose; docs/console-queue.png
and docs/console-stats.png in the README come from this test).

usage: test_console_browser.py FRAUDWATCH SOURCE_ROOT
Exit 77 (skipped) without a broker, chromium, chromedriver or selenium."""
import os
import shutil
import sys
import tempfile
import time
import traceback

if __name__ == "__main__":
    try:
        import selenium  # noqa: F401
    except ImportError:
        # Debian's python3-selenium lives with the system Python.
        if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != "/usr/bin/python3" \
                and not os.environ.get("FW_REEXEC"):
            os.environ["FW_REEXEC"] = "1"
            os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import console_env as ce  # noqa: E402
import fwtest  # noqa: E402

XSS_FIELD = '"><img src=x onerror=alert(1)>'
XSS_DESC = "<script>alert('desc')</script>"
XSS_NOTE = '<script>alert("note")</script>"><img src=x onerror=alert(2)>'


def driver(tmp):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    o.binary_location = shutil.which("chromium")
    for f in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run",
              "--disable-dev-shm-usage", f"--user-data-dir={tmp}/chrome-profile",
              "--window-size=1366,768", "--lang=zh-CN"]:
        o.add_argument(f)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=o)


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    if not os.environ.get("FW_KAFKA_PORT"):
        print("FW_KAFKA_PORT not set: no broker, browser test skipped")
        return 77
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        print("chromium / chromedriver not installed (scripts/deps.sh): skipped")
        return 77
    try:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select, WebDriverWait
    except ImportError:
        print("python3-selenium not installed (scripts/deps.sh): skipped")
        return 77
    fw, root = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    shots = os.environ.get("FW_CONSOLE_SHOTS") or os.path.join(os.path.dirname(fw),
                                                                 "console-screenshots")
    os.makedirs(shots, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="fw-console-browser-")
    kafka = fwtest.Kafka.from_env()
    topic = f"console-browser-{os.getpid()}"
    kafka.topic(topic, partitions=1)
    redis = ce.RedisAOF(tmp)
    ce.load_routes(fw, redis.url, tmp)
    pw = {u: ce.add_user(fw, redis.url, u, "officer", unit) for u, unit in
          [("offa", "station-a"), ("offb", "station-b")]}
    r = ce.rng(3)
    # a backlog: some alerts of each unit, one with HTML in a field
    backlog = [ce.make_alert(i, r, ts0=ce.TS0 - (i % 6) * 86_400_000) for i in range(60)]
    backlog[0].update(subject="13800000042", severity="critical", description=XSS_DESC,
                      fields={"callee": "13800000042", "caller": XSS_FIELD})
    ce.produce(kafka.addr, topic, backlog)
    con = ce.Console(fw, root, tmp, redis.url, kafka.addr, topic)
    ce.wait_for(lambda: redis.cli("ZCARD", "fw:con:idx:all") == "60", 60)
    d = driver(tmp)
    d.set_script_timeout(30)
    wait = WebDriverWait(d, 30)
    failed = []

    def click(css):
        """Clicks the element, again if a live update re-rendered it meanwhile."""
        from selenium.common.exceptions import StaleElementReferenceException
        for _ in range(10):
            try:
                d.find_element(By.CSS_SELECTOR, css).click()
                return
            except StaleElementReferenceException:
                time.sleep(0.2)
        d.find_element(By.CSS_SELECTOR, css).click()

    def check(cond, what):
        if not cond:
            failed.append(what)
            print("FAIL", what, flush=True)
        else:
            print("ok  ", what, flush=True)

    try:
        d.get(con.base + "/")
        check(d.find_element(By.ID, "title").text == "反诈预警中心", "Chinese by default")
        d.find_element(By.ID, "login-user").send_keys("offa")
        d.find_element(By.ID, "login-pass").send_keys(pw["offa"])
        d.find_element(By.ID, "login-btn").click()
        wait.until(lambda x: len(x.find_elements(By.CSS_SELECTOR, "#rows tr")) > 0)
        rows = d.find_elements(By.CSS_SELECTOR, "#rows tr")
        want_a = sum(1 for a in backlog if ce.unit_of(a) == "station-a")
        check(len(rows) == want_a, f"officer sees own unit's {want_a} alerts ({len(rows)})")
        wait.until(lambda x: "●" in x.find_element(By.ID, "live").text)

        # a new alert produced to Kafka appears without reloading
        live = ce.make_alert(1000, r, subject="13800009999", severity="critical",
                             fields={"callee": "13800009999", "caller": "17099990000",
                                     "amount": 52000, "payee_account": "6222999988887777"})
        live["description"] = "Call from a known fraud number, then a transfer"
        live["action"] = "Phone the victim now; stop the transfer"
        live["evidence"] = {"steps": [
            {"event_id": "call-1", "ts": live["detected_ts"] - 60000,
             "fields": {"caller": "17099990000", "callee": "13800009999"}},
            {"event_id": "tr-1", "ts": live["detected_ts"],
             "fields": {"amount": 52000, "payee_account": "6222999988887777"}}]}
        other = ce.make_alert(1001, r, subject="13910000000", fields={"callee": "13910000000"})
        d.execute_script("window.__marker = 1")
        ce.produce(kafka.addr, topic, [other, live])
        sel = f'#rows tr[data-id="{live["alert_id"]}"]'
        wait.until(lambda x: x.find_elements(By.CSS_SELECTOR, sel))
        check(d.execute_script("return window.__marker") == 1, "appeared live, page not reloaded")
        check(not d.find_elements(By.CSS_SELECTOR, f'#rows tr[data-id="{other["alert_id"]}"]'),
              "another unit's live alert not shown")
        check("crit" in d.execute_script(
            "return document.querySelector(arguments[0]).className", sel),
              "critical alert stands out")

        # XSS: the backlog alert with HTML in a field and the description
        click(f'#rows tr[data-id="{backlog[0]["alert_id"]}"]')
        wait.until(lambda x: x.find_elements(By.ID, "detail-fields"))
        fields_text = d.find_element(By.ID, "detail-fields").text
        check(XSS_FIELD in fields_text, "field HTML shown as text")
        check(XSS_DESC in d.find_element(By.ID, "detail-description").text,
              "description HTML shown as text")
        check(not d.find_elements(By.CSS_SELECTOR, "#detail img, #detail script"),
              "no element made from alert text")

        # open the live alert, work it to closed
        click(sel)
        wait.until(lambda x: live["action"] in x.find_element(By.ID, "detail").text)
        d.save_screenshot(os.path.join(shots, "console-queue.png"))

        def state_is(s):
            wait.until(lambda x: (x.execute_script(
                "const n = document.getElementById('detail-state'); return n ? n.className : ''")
                or "").endswith("st-" + s))
        click("#btn-assign-me")
        state_is("assigned")
        time.sleep(0.5)
        Select(d.find_element(By.ID, "att-result")).select_by_value("no_answer")
        click("#btn-attempt")
        wait.until(lambda x: len(x.find_elements(By.CSS_SELECTOR, "#detail-history li")) == 3)
        click("#btn-contacted")
        state_is("contacted")
        time.sleep(0.5)     # the view re-renders after each change
        Select(d.find_element(By.ID, "close-outcome")).select_by_value("dissuaded")
        d.find_element(By.ID, "close-amount").send_keys("52000")
        d.find_element(By.ID, "close-note").send_keys(XSS_NOTE)
        click("#btn-close")
        state_is("closed")
        hist = d.execute_script("return document.getElementById('detail-history').innerText")
        check(XSS_NOTE.replace("\n", "") in hist.replace("\n", ""), "note HTML shown as text")
        check(not d.find_elements(By.CSS_SELECTOR, "#detail img, #detail script"),
              "no element made from the note")
        check(redis.cli("HGET", f"fw:con:alert:{live['alert_id']}", "outcome") == "dissuaded",
              "outcome stored")
        check(redis.cli("HGET", f"fw:con:alert:{live['alert_id']}", "amount") == "52000.00",
              "amount stored")

        # stats page shows it
        d.find_element(By.ID, "nav-stats").click()
        wait.until(lambda x: "52,000" in x.find_element(By.ID, "st-protected").text)
        check(True, "stats show the amount protected")
        check(len(d.find_elements(By.CSS_SELECTOR, "#c-day svg rect")) > 0, "per-day plot drawn")
        d.save_screenshot(os.path.join(shots, "console-stats.png"))
        d.find_element(By.ID, "lang").click()
        check(d.find_element(By.ID, "title").text == "Anti-fraud centre", "English switch")
        d.find_element(By.ID, "nav-queue").click()
        d.set_window_size(390, 844)
        time.sleep(0.5)
        d.save_screenshot(os.path.join(shots, "console-phone.png"))
        check(d.execute_script("return document.documentElement.scrollWidth") <= 400,
              "no sideways scrolling on a phone")
        d.set_window_size(1366, 768)

        # the other unit's officer
        d.find_element(By.ID, "logout").click()
        wait.until(lambda x: x.find_element(By.ID, "login-user").is_displayed())
        d.find_element(By.ID, "login-user").clear()
        d.find_element(By.ID, "login-user").send_keys("offb")
        d.find_element(By.ID, "login-pass").send_keys(pw["offb"])
        d.find_element(By.ID, "login-btn").click()
        wait.until(lambda x: x.execute_script(
            "const r = document.querySelectorAll('#rows tr'); return r.length > 0 && "
            "document.getElementById('who').textContent.startsWith('offb')"))
        units = d.execute_script("return [...document.querySelectorAll('#rows tr td:nth-child(5)')]"
                                 ".map(n => n.textContent)")
        check(units and set(units) == {"station-b"}, f"offb's queue holds station-b only ({set(units)})")
        check(not d.find_elements(By.CSS_SELECTOR, sel), "other unit's officer does not see it")
        status = d.execute_async_script(
            "const done = arguments[arguments.length - 1]; "
            "fetch('/api/alerts/' + arguments[0]).then(r => done(r.status));",
            live["alert_id"])
        check(status == 403, f"other unit's officer gets 403 ({status})")
    except Exception:
        traceback.print_exc()
        failed.append("exception")
        try:
            d.save_screenshot(os.path.join(shots, "console-failure.png"))
        except Exception:
            pass
    finally:
        d.quit()
        con.stop()
        redis.stop()
        if failed:
            print(con.log()[-3000:])
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"screenshots in {shots}")
    print(f"{0 if failed else 1} passed, {1 if failed else 0} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
