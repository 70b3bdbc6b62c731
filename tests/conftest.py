"""Settings of whoever runs the tests stay out of them."""
import pytest


@pytest.fixture(autouse=True)
def no_personal_addin_settings(monkeypatch, tmp_path_factory):
    # the add-in's settings file (%USERPROFILE%\.cxrules\cxrules.conf) names a rules folder
    # that cxrules.excel would use before $CXRULES_RULES
    monkeypatch.setenv("USERPROFILE", str(tmp_path_factory.getbasetemp() / "no-profile"))
    # public holidays kept between runs (holiday_cache) go to the session's folder, not the user's
    monkeypatch.setenv("CXRULES_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def spark():
    """One local Spark with 2 workers for the whole test session; skipped only without Java."""
    import os
    import shutil
    import sys

    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java, and there is none here (.ci/run installs openjdk-17-jre-headless)")
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (SparkSession.builder.master("local[2]").appName("cxrules-tests")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "4").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
