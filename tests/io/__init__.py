"""Tests of the io package: catalogs, scenes, cube loader, COGs, importer, store."""
