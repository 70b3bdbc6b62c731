"""Smoke test of a durable-rules build: the C engine loads, runs a rule, calls back into Python
(the calls the patch changed), and the stock host imports. Prints one line; exit 1 on failure.

    python vendor/durable-rules/smoke.py
"""
import json
import sys

try:
    import durable_rules_engine as engine

    calls = []
    h = engine.create_ruleset("smoke", json.dumps({"r": {"all": [{"m": {"x": 1}}]}}))
    engine.set_get_idle_state_callback(h, lambda name: calls.append(name) or 0)
    engine.assert_event(h, json.dumps({"id": 1, "x": 1}))
    action = engine.start_action(h)
    assert action and '"r"' in action[1], f"no action for a matching event: {action!r}"
    assert calls == ["smoke"], f"the idle-state callback was not called: {calls!r}"
    import durable.lang  # noqa: F401 - the stock host
except Exception as e:  # noqa: BLE001
    print(f"durable-rules smoke test FAILED on Python {sys.version.split()[0]}: {type(e).__name__}: {e}")
    sys.exit(1)
print(f"durable-rules smoke test ok on Python {sys.version.split()[0]} ({engine.__file__})")
