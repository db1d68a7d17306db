"""Tests of the sans-I/O models (`twin.model`), driven in memory; a package so file names stay local."""
