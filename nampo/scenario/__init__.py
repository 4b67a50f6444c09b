"""The scenario engine: renders a simulated Sentinel-2 archive of a site with its ground
truth (docs/scenario.md). A client of the library; production code never imports it."""
