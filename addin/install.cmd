@echo off
rem Installs cxrules from this clone (with xlwings) into the Python on PATH and the CX Rules add-in into Excel.
rem Office PCs without a compiler: use the offline bundle instead (docs\install.md).
rem Close Excel first. Run from a Command Prompt:  addin\install.cmd
setlocal
set HERE=%~dp0
rem durable-rules from its PyPI source with cxrules' patch (needs the C++ Build Tools; docs\install.md)
python "%HERE%..\vendor\durable-rules\build.py" || goto :failed
rem the add-in calls the xlwings DLL of exactly the version it was built with (addin\build.py)
python -m pip install --find-links "%HERE%..\vendor\durable-rules\dist" -e "%HERE%..[excel]" "xlwings==0.37.8" || goto :failed
xlwings addin install --file "%HERE%cxrules.xlam" || goto :failed
echo.
echo Done. Start Excel: the CX Rules tab is on the ribbon. See docs\excel.md.
exit /b 0
:failed
echo.
echo Installation failed; see the message above and docs\excel.md (Troubleshooting).
exit /b 1
