"""Settings of whoever runs the tests stay out of them."""
import pytest


@pytest.fixture(autouse=True)
def no_personal_addin_settings(monkeypatch, tmp_path_factory):
    # the add-in's settings file (%USERPROFILE%\.cxrules\cxrules.conf) names a rules folder
    # that cxrules.excel would use before $CXRULES_RULES
    monkeypatch.setenv("USERPROFILE", str(tmp_path_factory.getbasetemp() / "no-profile"))
