Attribute VB_Name = "CxRules"
' Runs the macros of cxrules.excel. The rules folder and the header mapping are read by
' Python at every call and button press, from the workbook and the add-in's settings.
Option Explicit

Public Function CxNeedWorkbook() As Boolean
    ' The ribbon is there before any workbook is open; RunPython and GetConfig need one
    CxNeedWorkbook = Not ActiveWorkbook Is Nothing
    If Not CxNeedWorkbook Then MsgBox "Open a workbook first.", vbInformation, "CX Rules"
End Function

Public Sub CxRun(macroName As String)
    If Not CxNeedWorkbook Then Exit Sub
    RunPython "import cxrules.excel; cxrules.excel." & macroName & "()"
End Sub

' The same macros for Alt+F8 and for buttons on a sheet
Public Sub CxRecalculateWorkbook()
    CxRun "recalculate"
End Sub

Public Sub CxFlagOverdueRows()
    CxRun "flag_overdue"
End Sub

Public Sub CxCheckRuleFiles()
    CxRun "check_rules"
End Sub

Public Sub CxPreviewRuleChangeOnWorkbook()
    CxRun "preview_rule_change"
End Sub

Public Sub CxReloadRuleFiles()
    CxRun "reload_rules"
End Sub
