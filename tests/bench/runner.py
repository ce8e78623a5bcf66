"""The test loop of tests/bench/*.py: runs every test_* function of a
module in definition order, prints ok/FAIL with the traceback, and ends with
"N passed, N failed".  Standard library only, like the tests."""
import traceback


def run(namespace):
    tests = [(k, v) for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
            passed += 1
            print(f"ok   {name}", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {name}", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
