"""What a user of an installed cxrules notices: the wheel carries the rules and runs from any
folder, one version everywhere, `cxrules init`, a clear message when the engine cannot load,
`cxrules doctor`, and the offline installer's settings file."""
from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

import cxrules
from cxrules import doctor, rulesets
from cxrules.cli import cli
from cxrules.evaluation import Evaluator
from cxrules.recalc import recalc
from cxrules.samples import write_sample

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"
AS_OF = dt.datetime(2026, 11, 23, 10, 0)
NOT_COPIED = shutil.ignore_patterns(".git", ".venv*", "dist", "build", "*.egg-info", "__pycache__", ".hypothesis",
                                    ".pytest_cache", "*.recalc.xlsx")


def run_cxrules(*args, cwd, pythonpath, env=None):
    env = dict(os.environ, **(env or {}), PYTHONPATH=os.pathsep.join(map(str, pythonpath)))
    env.pop("CXRULES_RULES", None)
    return subprocess.run([sys.executable, "-m", "cxrules", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------ the built package
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """sdist, then the wheel from the sdist (python -m build), of a copy of this working tree."""
    pytest.importorskip("build", reason="pip install build (in the dev extra) to build the package")
    tmp = tmp_path_factory.mktemp("package")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=NOT_COPIED)
    p = subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp / "dist"), str(src)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    wheel = next((tmp / "dist").glob("cxrules-*.whl"))
    unpacked = tmp / "unpacked"
    zipfile.ZipFile(wheel).extractall(unpacked)
    return {"wheel": wheel, "sdist": next((tmp / "dist").glob("cxrules-*.tar.gz")), "unpacked": unpacked}


def test_the_wheel_carries_the_rules_the_license_and_the_one_version(built):
    names = zipfile.ZipFile(built["wheel"]).namelist()
    shipped = {n.rsplit("/", 1)[1]: n for n in names if n.startswith("cxrules/bundled_rules/")}
    assert sorted(shipped) == sorted(p.name for p in RULES.glob("*.yaml"))
    for name, member in shipped.items():
        assert zipfile.ZipFile(built["wheel"]).read(member) == (RULES / name).read_bytes()
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)
    assert built["wheel"].name.startswith(f"cxrules-{cxrules.__version__}-")
    metadata = zipfile.ZipFile(built["wheel"]).read(f"cxrules-{cxrules.__version__}.dist-info/METADATA").decode()
    assert f"\nVersion: {cxrules.__version__}\n" in metadata
    assert "cxrules/__main__.py" in names


def test_the_sdist_carries_rules_docs_addin_workbooks_tests_and_the_engine_patch(built):
    names = {n.split("/", 1)[1] for n in tarfile.open(built["sdist"]).getnames() if "/" in n}
    for needed in ["LICENSE", "README.md", "rules/tier.yaml", "docs/install.md", "addin/cxrules.xlam", "workbooks/sample_en.xlsx",
                   "tests/test_package.py", "vendor/durable-rules/durable-rules-2.0.28.patch", "vendor/durable-rules/build.py",
                   "bundle/install.py", "bundle/install.cmd", ".github/workflows/release.yml"]:
        assert needed in names, needed
    assert not any("/dist/" in n or n.endswith(".whl") for n in names)


def test_the_unpacked_wheel_runs_from_an_empty_folder_with_its_own_rules(built, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    site = built["unpacked"]
    r = run_cxrules("--version", cwd=empty, pythonpath=[site])
    assert r.stdout.strip() == f"cxrules, version {cxrules.__version__}"
    r = run_cxrules("check", "--json", cwd=empty, pythonpath=[site])
    assert r.returncode == 0, r.stdout + r.stderr
    assert Path(re.search(r'"rules": "([^"]+)"', r.stdout).group(1)).resolve() == (site / "cxrules" / "bundled_rules").resolve()
    r = run_cxrules("init", cwd=empty, pythonpath=[site])
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (empty / "rules").iterdir()) == sorted(p.name for p in RULES.glob("*.yaml"))


# ------------------------------------------------------------------ one version
def test_version_option_shows_the_package_version():
    r = CliRunner().invoke(cli, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"cxrules, version {cxrules.__version__}"


def test_setup_cfg_reads_the_version_from_the_package():
    assert "version = attr: cxrules.__version__" in (ROOT / "setup.cfg").read_text()


def _workbook_xml(path: Path) -> str:
    return zipfile.ZipFile(path).read("xl/workbook.xml").decode()


def _set_workbook_xml(path: Path, text: str) -> None:
    with zipfile.ZipFile(path) as z:
        parts = {i: z.read(i.filename) for i in z.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in parts.items():
            z.writestr(info, text.encode() if info.filename == "xl/workbook.xml" else data)


def test_every_written_workbook_records_the_version_once_and_a_rerun_replaces_an_older_one(tmp_path):
    book = write_sample(tmp_path / "book.xlsx", n_customers=100, n_cases=40)
    ev = Evaluator(rulesets.load_or_raise(RULES))
    recalc(book, ev, AS_OF)
    names = re.findall(r'<definedName name="_cxrules_version"( hidden="1")?>([^<]*)</definedName>', _workbook_xml(book))
    assert names == [(' hidden="1"', f'"{cxrules.__version__}"')]
    summary = [list(r) for r in openpyxl.load_workbook(book)["CX summary"].iter_rows(values_only=True)]
    assert ["cxrules", cxrules.__version__] in [r[:2] for r in summary]

    _set_workbook_xml(book, _workbook_xml(book).replace(f'"{cxrules.__version__}"', '"0.0.1"'))
    recalc(book, ev, AS_OF)
    xml = _workbook_xml(book)
    assert xml.count("_cxrules_version") == 1 and f'"{cxrules.__version__}"' in xml and '"0.0.1"' not in xml


# ------------------------------------------------------------------ cxrules init
def test_init_copies_the_bundled_rules_and_then_they_are_the_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CXRULES_RULES", raising=False)
    r = CliRunner().invoke(cli, ["init"])
    assert r.exit_code == 0, r.output
    assert f"wrote {len(list(RULES.glob('*.yaml')))} rule files into rules" in r.output
    for src in RULES.glob("*.yaml"):
        assert (tmp_path / "rules" / src.name).read_bytes() == src.read_bytes()
    assert rulesets.default_rules_origin() == (Path("rules"), "./rules in the current folder")
    assert CliRunner().invoke(cli, ["check"]).exit_code == 0


def test_init_refuses_an_existing_folder_and_force_replaces_only_the_bundled_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    CliRunner().invoke(cli, ["init", "mine"])
    edited = tmp_path / "mine" / "tier.yaml"
    edited.write_text("# my edit\n")
    (tmp_path / "mine" / "extra.yaml").write_text("# my own table\n")

    r = CliRunner().invoke(cli, ["init", "mine"])
    assert r.exit_code == 1
    assert "mine already exists and is not empty; nothing was written" in r.output and "--force" in r.output
    assert edited.read_text() == "# my edit\n"

    r = CliRunner().invoke(cli, ["init", "mine", "--force"])
    assert r.exit_code == 0, r.output
    assert edited.read_bytes() == (RULES / "tier.yaml").read_bytes()
    assert (tmp_path / "mine" / "extra.yaml").read_text() == "# my own table\n"


def test_init_into_an_empty_folder_works_and_into_a_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert CliRunner().invoke(cli, ["init", "empty"]).exit_code == 0
    (tmp_path / "afile").write_text("x")
    r = CliRunner().invoke(cli, ["init", "afile"])
    assert r.exit_code == 1 and "is a file, not a folder" in r.output


# ------------------------------------------------------------------ an engine that cannot load
FAKE_ENGINES = {
    "undefined symbol": 'raise ImportError("/x/durable_rules_engine.cpython-313-x86_64-linux-gnu.so: undefined symbol: PyEval_CallObject")',
    "not installed": 'raise ModuleNotFoundError("No module named \'durable_rules_engine\'", name="durable_rules_engine")',
}


@pytest.fixture(params=list(FAKE_ENGINES))
def broken_engine(request, tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "durable_rules_engine.py").write_text(FAKE_ENGINES[request.param] + "\n")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "workbooks" / "sample_en.xlsx", work)
    return request.param, fake, work


def test_a_broken_engine_gives_one_line_naming_the_fix_in_every_command_that_needs_it(broken_engine):
    kind, fake, work = broken_engine
    before = (work / "sample_en.xlsx").read_bytes()
    for args in (["test"], ["explain", "tier", "recency=10"], ["recalc", "sample_en.xlsx", "--silent"]):
        r = run_cxrules(*args, cwd=work, pythonpath=[fake, ROOT])
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr + r.stdout
        line = r.stderr.strip()
        assert "\n" not in line and line.startswith("Error: "), line
        assert ("does not work on Python" if kind == "undefined symbol" else "is not installed") in line
        assert "pip install --force-reinstall --no-deps --only-binary durable-rules" in line and "docs/install.md" in line
    assert (work / "sample_en.xlsx").read_bytes() == before
    r = run_cxrules("check", cwd=work, pythonpath=[fake, ROOT])  # needs no engine
    assert r.returncode == 0, r.stderr


def test_doctor_with_a_broken_engine_says_what_to_do_and_exits_1(broken_engine):
    _, fake, work = broken_engine
    r = run_cxrules("doctor", cwd=work, pythonpath=[fake, ROOT])
    assert r.returncode == 1
    assert re.search(r"^PROBLEM\s+rule engine\s", r.stdout, re.M)
    assert "what to do: " in r.stdout and "1 problem found" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


# ------------------------------------------------------------------ cxrules doctor
def test_doctor_all_well_exits_0(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CXRULES_RULES", raising=False)
    r = CliRunner().invoke(cli, ["doctor"])
    assert r.exit_code == 0, r.output
    assert r.output.rstrip().endswith("All is well.")
    for topic in ("cxrules", "Python", "rule engine", "xlwings", "rules"):
        assert re.search(rf"^(ok|--)\s+{topic}\s", r.output, re.M), topic
    assert "loads and runs a test rule" in r.output and "the rules bundled with cxrules" in r.output


def test_doctor_reports_rules_with_errors_and_a_missing_rules_folder(tmp_path, monkeypatch):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "tier.yaml").write_text("decision: tier\nhit: sometimes\n")
    r = CliRunner().invoke(cli, ["doctor", "--rules", str(bad)])
    assert r.exit_code == 1
    assert re.search(r"^PROBLEM\s+rules\s+.*given on the command line.*[1-9]\d* errors", r.output, re.M), r.output
    assert f"what to do: cxrules check {bad}" in r.output

    monkeypatch.setenv("CXRULES_RULES", str(tmp_path / "gone"))
    r = CliRunner().invoke(cli, ["doctor", "--json"])
    assert r.exit_code == 1
    assert '"ok": false' in r.output and "no such file or folder" in r.output and "CXRULES_RULES" in r.output


def _addin(tmp_path: Path, interpreter: str | None) -> tuple[Path, Path]:
    appdata, home = tmp_path / "appdata", tmp_path / "home"
    (appdata / "Microsoft" / "Excel" / "XLSTART").mkdir(parents=True)
    shutil.copy(ROOT / "addin" / "cxrules.xlam", appdata / "Microsoft" / "Excel" / "XLSTART")
    if interpreter:
        (home / ".cxrules").mkdir(parents=True)
        (home / ".cxrules" / "cxrules.conf").write_text(f'"CXRULES_RULES","{RULES}"\r\n"Interpreter_Win","{interpreter}"\r\n')
    return appdata, home


def by_topic(checks):
    return {c.topic: c for c in checks}


def test_doctor_on_windows_without_the_addin_notes_it_and_fails_only_with_excel(tmp_path):
    checks = by_topic(doctor.run(windows=True, appdata=tmp_path / "appdata", home=tmp_path / "home"))
    assert checks["Excel add-in"].ok and "not installed" in checks["Excel add-in"].found
    checks = by_topic(doctor.run(windows=True, excel=True, appdata=tmp_path / "appdata", home=tmp_path / "home"))
    assert not checks["Excel add-in"].ok and "install.cmd" in checks["Excel add-in"].fix


def test_doctor_on_windows_checks_the_interpreter_the_addin_points_at(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    appdata, home = _addin(tmp_path, str(tmp_path / "venv" / "Scripts" / "pythonw.exe"))
    checks = by_topic(doctor.run(windows=True, appdata=appdata, home=home))
    assert "installed" in checks["Excel add-in"].found
    bad = checks["add-in Python"]
    assert not bad.ok and "does not exist" in bad.found and "install.cmd" in bad.fix

    appdata, home = _addin(tmp_path / "2", sys.executable)
    good = by_topic(doctor.run(windows=True, appdata=appdata, home=home))["add-in Python"]
    assert good.ok, good.found
    assert good.found.endswith(f"cxrules {cxrules.__version__}") and "this Python" in good.found


# ------------------------------------------------------------------ the offline installer's settings
def _installer():
    spec = importlib.util.spec_from_file_location("bundle_install", ROOT / "bundle" / "install.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_installer_writes_the_addin_settings_keeping_the_others_and_doctor_reads_them(tmp_path):
    install = _installer()
    conf = tmp_path / ".cxrules" / "cxrules.conf"
    conf.parent.mkdir()
    conf.write_bytes(b'"Show Console","True"\r\n"interpreter_win","C:\\old\\pythonw.exe"\r\n')
    install.write_settings(conf, {"Interpreter_Win": "C:\\cx\\venv\\Scripts\\pythonw.exe", "CXRULES_RULES": "\\\\server\\cx\\rules"})
    assert conf.read_bytes() == (b'"Show Console","True"\r\n"Interpreter_Win","C:\\cx\\venv\\Scripts\\pythonw.exe"\r\n'
                                 b'"CXRULES_RULES","\\\\server\\cx\\rules"\r\n')
    settings = doctor.read_conf(conf)
    assert settings["interpreter_win"] == "C:\\cx\\venv\\Scripts\\pythonw.exe" and settings["show console"] == "True"


def test_installer_refuses_a_python_the_bundle_has_no_wheels_for_in_one_sentence(monkeypatch, capsys):
    install = _installer()
    monkeypatch.setattr(install, "SUPPORTED", ((3, 0), (3, 1)))  # as if this Python were too new
    assert install.main(["--no-addin"]) == 1
    out = capsys.readouterr().out
    assert "This bundle has wheels for Python 3.10 to 3.13; this is Python %d.%d" % sys.version_info[:2] in out
    assert "\n" not in out.strip()


def test_doctor_expects_the_xlwings_the_addin_was_built_with_and_setup_cfg_pins():
    vba = (ROOT / "addin" / "vba" / "xlwings.bas").read_text(encoding="utf-8", errors="replace")
    built_with = re.search(r'Public Const XLWINGS_VERSION As String = "([^"]+)"', vba).group(1)
    assert doctor.ADDIN_XLWINGS == built_with
    assert f"xlwings=={built_with}" in (ROOT / "setup.cfg").read_text()
