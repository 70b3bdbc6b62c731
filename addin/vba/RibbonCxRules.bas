Attribute VB_Name = "RibbonCxRules"
' Callbacks of the CX Rules ribbon tab (addin/customUI.xml).
Option Explicit

Sub CxRecalculate(control As IRibbonControl)
    CxRun "recalculate"
End Sub

Sub CxFlagOverdue(control As IRibbonControl)
    CxRun "flag_overdue"
End Sub

Sub CxCheckRules(control As IRibbonControl)
    CxRun "check_rules"
End Sub

Sub CxReloadRules(control As IRibbonControl)
    CxRun "reload_rules"
End Sub

Sub CxPreviewRuleChange(control As IRibbonControl)
    CxRun "preview_rule_change"
End Sub

Sub CxImportFunctions(control As IRibbonControl)
    If Not CxNeedWorkbook Then Exit Sub
    ImportPythonUDFsToAddin
    CxRegisterFunctions
End Sub

Sub CxRestartPython(control As IRibbonControl)
    If Not CxNeedWorkbook Then Exit Sub
    KillPy
End Sub
