"""The cxrules command as a user sees it: exact output and exit codes."""
from pathlib import Path
import textwrap

from click.testing import CliRunner

from cxrules.cli import cli

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "examples" / "rules"
RULES = ROOT / "rules"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


TIER = """\
decision: tier
hit: first
inputs:
  spend: {type: number, columns: [Spend]}
outputs:
  tier: {type: text}
rules:
  - [">= 5000", VIP]
  - ["-", Regular]
examples:
  - {spend: 6000, tier: VIP}
  - {spend: 10, tier: VIP}
"""


def test_test_passes_on_the_shared_examples():
    r = run("test", SHARED)
    assert r.exit_code == 0, r.output
    assert r.output == "19 passed, 0 failed\n"


def test_test_passes_on_the_bundled_rules():
    r = run("test", RULES)
    assert r.exit_code == 0, r.output
    assert r.output.endswith(" passed, 0 failed\n")


def test_failing_example_shows_expected_got_and_row(tmp_path):
    p = write(tmp_path, "tier.yaml", TIER)
    r = run("test", p)
    assert r.exit_code == 1
    lines = r.output.splitlines()
    assert lines[0].endswith("tier.yaml:12: tier example 2 (spend=10)")
    assert lines[0].startswith("FAIL ")
    assert lines[1] == "  tier: expected VIP, got Regular"
    assert lines[2] == "  rule row that fired: row 2"
    assert lines[-1] == "1 passed, 1 failed"


def test_test_refuses_rules_with_errors(tmp_path):
    p = write(tmp_path, "tier.yaml", TIER.replace("hit: first", "hit: frist"))
    r = run("test", p)
    assert r.exit_code == 1
    assert "unknown hit policy 'frist' (did you mean 'first'?)" in r.output
    assert "Error: the rules in" in r.output and "have errors; fix them first (cxrules check" in r.output
    assert "Traceback" not in r.output


def test_test_unknown_decision_is_a_usage_error():
    r = run("test", SHARED, "-d", "tire")
    assert r.exit_code == 2
    assert "no decision named 'tire'" in r.output


def test_explain_marks_matching_cells_and_fired_row():
    r = run("explain", "tier", "recency=45", "frequency=3", "monetary=3000", "--rules", SHARED)
    assert r.exit_code == 0, r.output
    out = r.output.splitlines()
    assert out[0] == "Customer tier (tier, hit policy first)"
    assert out[1] == "  inputs: recency=45, frequency=3, monetary=3000"
    assert out[2] == "     row 1: recency < 30: no  frequency >= 5: no  monetary >= 5000: no  -> tier=VIP"
    assert out[3] == "     row 2: recency < 30: no  frequency [2..4]: yes  monetary [2000..5000): yes  -> tier=Potential"
    assert out[6] == "  => row 5: recency -: yes  frequency -: yes  monetary -: yes  -> tier=Regular"
    assert out[7] == "  result: tier=Regular"


def test_explain_chains_through_decisions_and_derives_inputs():
    r = run("explain", "contact", "last_purchase=2026-11-20", "frequency=1", "monetary=100",
            "first_purchase=2026-11-20", "last_contact=2026-11-21", "--rules", SHARED, "--as-of", "2026-11-23 10:00")
    assert r.exit_code == 0, r.output
    assert "  result: tier=New\n" in r.output
    assert "  inputs: tier=New, tenure=3\n" in r.output
    assert "  result: every=1d, channel=SMS, next_contact=2026-11-22\n" in r.output


def test_explain_rejects_unknown_names():
    r = run("explain", "tier", "recncy=4", "--rules", SHARED)
    assert r.exit_code == 2
    assert "'tier' reads no input or field 'recncy'; did you mean 'recency'?" in r.output
    r = run("explain", "tire", "--rules", SHARED)
    assert r.exit_code == 2 and "no decision named 'tire'; did you mean 'tier'?" in r.output
    r = run("explain", "tier", "recency", "--rules", SHARED)
    assert r.exit_code == 2 and "'recency' is not NAME=VALUE" in r.output


def test_explain_bad_value_is_a_row_problem_not_a_crash():
    r = run("explain", "tier", "recency=soon", "--rules", SHARED)
    assert r.exit_code == 0
    assert "problem: 'soon' is not a number" in r.output


def test_decisions_lists_sources_and_columns():
    r = run("decisions", "--rules", SHARED)
    assert r.exit_code == 0
    assert "  in   recency (number) <- days_since(last_purchase)\n" in r.output
    assert "  in   tier (text) <- decision tier\n" in r.output
    assert "  out  next_contact (datetime) -> Next contact, 下次回访\n" in r.output


def test_every_command_has_help():
    for name, cmd in cli.commands.items():
        assert cmd.help, name
        r = run(name, "--help")
        assert r.exit_code == 0 and "Usage:" in r.output
