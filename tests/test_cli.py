"""The cxrules command as a user sees it: exact output and exit codes."""
import json
from pathlib import Path
import textwrap

from click.testing import CliRunner

from cxrules.cli import cli

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "tests" / "examples" / "rules"
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


def test_check_clean_rules_exit_0():
    r = run("check", RULES)
    assert r.exit_code == 0, r.output
    assert r.output == "0 errors, 0 warnings in 10 files (11 decisions, 5 journeys)\n"


def test_check_shared_examples_warn_but_pass():
    r = run("check", SHARED)
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[-1] == "0 errors, 1 warning in 7 files (6 decisions)"
    assert "escalation.yaml:2, table 'escalation', column 'severity': warning: no row matches when severity is blank" in lines[0]


def test_check_reports_every_problem_with_location_and_exits_1(tmp_path):
    write(tmp_path, "a.yaml", """\
        decision: tier
        hit: unique
        inputs:
          spend: {type: number}
          kind:  {type: text, allowed: [Shop, Online]}
        outputs:
          tier: {type: text, allowed: [VIP, Regular]}
        rules:
          - [">= 5000", "-",    VIP]
          - [">= 1000", Shpo,   Regular]
          - ["< 0",     Online, Gold]
        """)
    write(tmp_path, "b.yaml", """\
        decision: offer
        hit: first
        inputs:
          tier: {decision: tire}
        outputs:
          offer: {type: text}
        rules:
          - ["-", Coupon]
        """)
    r = run("check", tmp_path)
    assert r.exit_code == 1
    out = r.output
    assert "b.yaml:4, table 'offer', column 'tier': error: input 'tier' reads decision 'tire', which no rule file defines (did you mean 'tier'?)" in out
    assert out.splitlines()[-1].startswith("1 error, 0 warnings in 2 files")
    # with the name fixed, the meaning-level checks run and report every problem at once
    write(tmp_path, "b.yaml", (tmp_path / "b.yaml").read_text().replace("tire", "tier"))
    r = run("check", tmp_path)
    assert r.exit_code == 1
    out = r.output
    assert "a.yaml:10, table 'tier', row 2, column 'kind': error: 'Shpo' is not an allowed kind (did you mean 'Shop'?)" in out
    assert "a.yaml:11, table 'tier', row 3, column 'tier': error: 'Gold' is not an allowed tier" in out
    # row 2 can never match (its kind is not allowed), so spend 0..5000 falls through
    assert "a.yaml:1, table 'tier': warning: no row matches spend in [0..5000); e.g. spend=500, kind=Shop (add rows for these inputs)" in out
    assert out.splitlines()[-1] == "2 errors, 4 warnings in 2 files (2 decisions)"
    write(tmp_path, "a.yaml", (tmp_path / "a.yaml").read_text().replace("Shpo", "Shop"))
    out = run("check", tmp_path).output
    assert "a.yaml:10, table 'tier', row 2: error: rows 1 and 2 both match spend=5000, kind=Shop" in out


def test_check_json(tmp_path):
    write(tmp_path, "t.yaml", TIER.replace("hit: first", "hit: frist"))
    r = run("check", tmp_path / "t.yaml", "--json")
    assert r.exit_code == 1
    data = json.loads(r.output)
    assert data["errors"] == 1 and data["warnings"] == 0
    p = data["problems"][0]
    assert p["line"] == 2 and p["code"] == "hit" and p["table"] == "tier"
    assert p["message"] == "unknown hit policy 'frist'" and p["suggestion"] == "did you mean 'first'?"


def test_check_missing_folder_is_an_error_not_a_traceback(tmp_path):
    r = run("check", tmp_path / "nope")
    assert r.exit_code == 1
    assert "no such file or folder" in r.output and "Traceback" not in r.output


def test_check_an_empty_table_says_what_to_add(tmp_path):
    p = write(tmp_path, "x.yaml", "decision: x\n")
    r = run("check", p)
    assert r.exit_code == 1
    lines = r.output.splitlines()
    assert lines[0].endswith("x.yaml:1, table 'x': error: the table has no inputs (add inputs: with what the table looks at, e.g. spend: {type: number, columns: [Spend 12m]})")
    assert lines[1].endswith("x.yaml:1, table 'x': error: the table has no outputs (add outputs: with what the table decides, e.g. tier: {type: text})")
    assert lines[-1] == "3 errors, 0 warnings in 1 file (1 decision)"


def test_every_command_takes_rules_the_same_way(tmp_path):
    assert run("check", "--rules", RULES).exit_code == 0
    r = run("test", "--rules", SHARED)
    assert r.exit_code == 0 and r.output.strip().endswith("19 passed, 0 failed")
    r = run("test", RULES, "--rules", SHARED)
    assert r.exit_code == 2 and f"the rules are given twice ({RULES} and --rules {SHARED}); give one" in r.output
    for cmd in ("check", "test", "explain", "decisions", "recalc", "map"):
        assert "--rules" in run(cmd, "--help").output, cmd


def test_explain_reads_typed_values_as_typed_and_never_ranks_one_row():
    r = run("explain", "tier", "recency=45", "frequency=3", "monetary=3000", "--rules", RULES)
    assert r.exit_code == 0
    assert "stored as text" not in r.output
    assert "spend_rank=(blank)" in r.output and "result: tier=Regular" in r.output
    assert ("note: spend_rank is a percentile over a sheet's rows, so one row has none; "
            "give it (e.g. spend_rank=85) to see the rows that test it") in r.output
    r = run("explain", "tier", "recency=45", "frequency=3", "monetary=3000", "spend_rank=85", "--rules", RULES)
    assert "result: tier=High value, reason=Top 20 % by spend" in r.output and "note:" not in r.output
    r = run("explain", "tier", "recency=45", "frequency=x", "monetary=3000", "spend_rank=85", "--rules", RULES)
    assert "problem: 'x' is not a number" in r.output


def test_check_warns_of_a_value_spelled_once_and_differently_elsewhere(tmp_path):
    write(tmp_path, "route.yaml", """\
        decision: route
        hit: first
        inputs:
          kind: {type: text, columns: [Case type]}
        outputs:
          desk: {type: text}
        rules:
          - [Complaint, Complaints desk]
          - [Complant, Escalations]
          - ["-", Service desk]
        ---
        decision: tag
        hit: first
        inputs:
          kind: {type: text, columns: [Case type]}
        outputs:
          tag: {type: text}
        rules:
          - [Complaint, c]
          - ["-", other]
        """)
    r = run("check", tmp_path)
    assert r.exit_code == 0
    assert (f"{tmp_path / 'route.yaml'}:9, table 'route', row 2, column 'kind': warning: 'Complant' is written only here "
            "for kind; elsewhere it is 'Complaint' (did you mean 'Complaint'? Or list the values in allowed: to have them checked)") in r.output
    assert r.output.count("written only here") == 1
