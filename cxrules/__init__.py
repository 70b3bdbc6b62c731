"""cxrules: customer-experience rules as YAML decision tables, for Excel workbooks."""

__version__ = "0.1.0"  # the one version: setup.cfg reads it, `cxrules --version` shows it, workbooks record it
