"""JSON message catalogs, one per locale; a package so they ship as package data."""
