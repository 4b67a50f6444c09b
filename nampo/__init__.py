"""nampo: watch strategic facilities from space.

The library, package by stage of the data flow: ``io`` (catalogs, scenes, cubes, the
store), ``products`` (what a unit computes), ``run`` (units, plan, schedule, execution),
``analysis`` (change dating, events, activity, before/after change), ``report``. The
simulator (``scenario``) and its scoring (``evaluation``) are clients of the library.
"""
