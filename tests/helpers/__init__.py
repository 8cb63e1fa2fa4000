"""Test helpers (launching the app in a subprocess)."""
