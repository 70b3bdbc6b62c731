Attribute VB_Name = "CxRules"
' Runs the macros of cxrules.excel, and hands the add-in's settings to Python.
Option Explicit

#If Mac Then
#ElseIf VBA7 Then
    Private Declare PtrSafe Function SetEnvironmentVariableW Lib "kernel32" (ByVal lpName As LongPtr, ByVal lpValue As LongPtr) As Long
#Else
    Private Declare Function SetEnvironmentVariableW Lib "kernel32" (ByVal lpName As Long, ByVal lpValue As Long) As Long
#End If

Public Sub CxApplySettings()
    ' Python (RunPython and the function server) inherits Excel's environment, so the
    ' CXRULES_RULES setting (workbook or add-in cxrules.conf sheet, or a cxrules.conf
    ' file) becomes the environment variable cxrules reads.
    Dim folder As String
    folder = GetConfig("CXRULES_RULES", "")
    #If Not Mac Then
    If folder <> "" Then SetEnvironmentVariableW StrPtr("CXRULES_RULES"), StrPtr(folder)
    #End If
End Sub

Public Sub CxRun(macroName As String)
    CxApplySettings
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

Public Sub CxReloadRuleFiles()
    CxRun "reload_rules"
End Sub
