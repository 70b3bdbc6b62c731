@echo off
rem Installs cxrules from this folder, offline: a venv, the CX Rules add-in for Excel and its
rem Python setting (INSTALL.md). Close Excel first. Options are passed on to install.py:
rem   --target DIR   --rules FOLDER   --all-users   --no-addin
setlocal
set "HERE=%~dp0"
set "PY="
for %%V in (3.13 3.12 3.11 3.10) do (
  if not defined PY py -%%V -c "" >nul 2>&1 && set "PY=py -%%V"
)
if not defined PY python -c "import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 13))" >nul 2>&1 && set "PY=python"
if not defined PY (
  echo No Python 3.10 to 3.13 was found. Install one ^(python.org, or your software centre^), then run this again.
  exit /b 1
)
%PY% "%HERE%install.py" %*
exit /b %ERRORLEVEL%
