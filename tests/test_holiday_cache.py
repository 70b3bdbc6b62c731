"""Public holidays kept on disk between runs (cxrules.holiday_cache): the same days as the
holidays package gives, never an error, and a warm cache spares a run importing it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cxrules import holiday_cache
from cxrules.calendars import _country_year

ROOT = Path(__file__).resolve().parents[1]
YEARS = [("CN", None, 2024), ("CN", None, 2026), ("CN", None, 2027), ("HK", None, 2026), ("DE", "BY", 2026), ("US", "CA", 2025)]


def _fresh(code, subdiv, year):
    import holidays

    h = holidays.country_holidays(code, subdiv=subdiv, years=year)
    return frozenset(h.keys()), frozenset(d for d in h.weekend_workdays if d.year == year)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CXRULES_CACHE_DIR", str(tmp_path / "cache"))
    holiday_cache._loaded.clear()
    _country_year.cache_clear()
    yield tmp_path / "cache"
    holiday_cache._loaded.clear()
    _country_year.cache_clear()


@pytest.mark.parametrize("code,subdiv,year", YEARS)
def test_a_year_read_back_is_the_year_computed(folder, code, subdiv, year):
    first = _country_year(code, subdiv, year)  # computed, then kept
    assert first == _fresh(code, subdiv, year)
    holiday_cache._loaded.clear()
    _country_year.cache_clear()
    assert holiday_cache.get(code, subdiv, year) == first  # from the file
    assert _country_year(code, subdiv, year) == first
    if code == "CN" and year == 2026:
        assert first[1], "China's make-up working days (调休) are kept too"


@pytest.mark.parametrize("damage", [b"", b"{not json", b"[1, 2]", b'{"CN||2026": "x"}', b'{"CN||2026": [["2026-13-01"], []]}',
                                    b'{"CN||2026": [[1], []]}'])
def test_a_damaged_file_is_computed_afresh_and_rewritten(folder, damage):
    path = holiday_cache._file()
    folder.mkdir(parents=True)
    path.write_bytes(damage)
    assert _country_year("CN", None, 2026) == _fresh("CN", None, 2026)
    off, makeup = json.loads(path.read_bytes())["CN||2026"]
    assert len(off) == len(_fresh("CN", None, 2026)[0]) and makeup


def test_a_folder_that_cannot_be_written_is_not_used(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CXRULES_CACHE_DIR", str(blocker / "cache"))
    holiday_cache._loaded.clear()
    _country_year.cache_clear()
    assert _country_year("CN", None, 2026) == _fresh("CN", None, 2026)
    assert blocker.read_text() == "not a folder"
    _country_year.cache_clear()


def test_an_empty_setting_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("CXRULES_CACHE_DIR", "")
    monkeypatch.chdir(tmp_path)
    _country_year.cache_clear()
    assert holiday_cache.cache_dir() is None
    assert _country_year("CN", None, 2026) == _fresh("CN", None, 2026)
    assert list(tmp_path.iterdir()) == []
    _country_year.cache_clear()


def test_another_version_of_holidays_has_its_own_file(folder, monkeypatch):
    _country_year("CN", None, 2026)
    before = holiday_cache._file()
    monkeypatch.setattr(holiday_cache, "_version", lambda: "999.0")
    holiday_cache._loaded.clear()
    assert holiday_cache._file() != before and holiday_cache.get("CN", None, 2026) is None


def test_a_warm_cache_spares_a_run_the_holidays_package(folder):
    """A business-hours due date over China's holidays, in two fresh processes."""
    code = ("import sys, datetime as dt; from cxrules import rulesets; "
            "cal = rulesets.load_or_raise(sys.argv[1]).calendars['business']; "
            "from cxrules.values import parse_duration; "
            "print(cal.add(dt.datetime(2026, 9, 30, 17, 0), parse_duration('8h')), 'holidays' in sys.modules)")
    env = dict(os.environ, CXRULES_CACHE_DIR=str(folder), PYTHONPATH=str(ROOT))
    runs = [subprocess.run([sys.executable, "-c", code, str(ROOT / "rules")], capture_output=True, text=True, env=env, check=True).stdout.split()
            for _ in range(2)]
    assert runs[0][:2] == runs[1][:2]  # the same due date, after the National Day week
    assert runs[0][0] >= "2026-10-08"
    assert runs[0][-1] == "True" and runs[1][-1] == "False"


@pytest.mark.parametrize("value", ["CN", "de-by", "DE-XX", "ZZ", "US-CA", "HK"])
def test_country_codes_and_regions_read_back_check_the_same(folder, value):
    from cxrules import calendars

    def check():
        calendars._countries.cache_clear()
        holiday_cache._loaded.clear()
        problems: list = []
        got = calendars._parse_holidays("business", value, problems)
        return got, [(p.key, p.message, p.suggestion) for p in problems]

    cold = check()
    assert json.loads(holiday_cache._file().read_bytes())["codes"]  # kept
    assert check() == cold
    if value == "DE-XX":
        assert "is not a region of DE" in cold[1][0][1]
    calendars._countries.cache_clear()
