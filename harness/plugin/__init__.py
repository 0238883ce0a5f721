"""pytest plugin entry point (pytest11: mayday_hil). Options and fixtures land with issue 3."""
