"""Input and output: STAC catalogs, scenes in one internal form, the cube loader, GDAL
settings, COGs and STAC items, the importer, and the Zarr store."""
