"""Dose audit: protocol mapping, reference data (DRLs, k-factors), per-study dose indices
(effective-dose estimate, SSDE and water-equivalent diameter, DRL ratios) and the audit tables.

Pure logic: data files are read once into frozen objects (`references`, `mapping`), and every
function after that is a function of DoseReports and those objects, so the writer (at store time),
`doseflow audit --remap` (over stored studies) and the audit report compute the same values.
"""
